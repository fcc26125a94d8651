"""The rack's board of service statuses, reported to the region on change.

With a `path`, the board is also kept on disk (JSON, rewritten on each change):
what the rack says of itself while no region can hear it, for `metalplane
status` and an operator on the rack.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

from metalplane.rpc.messages import ServiceStatus
from metalplane.supervised import write_atomic

log = logging.getLogger(__name__)

# rackd: the rack's own health (its supervised tasks); the region combines it with its
# judgement from the rack's connections.
REPORTED = ("rackd", "dhcpd", "dhcpd6", "tftp", "http", "ntp_rack", "dns_rack")
BOARD_FILE = "services.json"


class ServiceBoard:
    def __init__(self, path: Path | None = None) -> None:
        self._status: dict[str, tuple[str, str]] = dict.fromkeys(REPORTED, ("off", "not running on this rack"))
        self._status["rackd"] = ("running", "")
        self.path = path
        self.changed = asyncio.Event()
        self.changed.set()
        self._save()

    def set(self, name: str, status: str, info: str = "") -> None:
        if self._status.get(name) != (status, info):
            self._status[name] = (status, info)
            self.changed.set()
            self._save()

    def get(self, name: str) -> tuple[str, str]:
        return self._status[name]

    def snapshot(self) -> list[ServiceStatus]:
        return [ServiceStatus(n, s, i) for n, (s, i) in self._status.items()]

    def _save(self) -> None:
        if self.path is None:
            return
        try:
            write_atomic(
                self.path,
                json.dumps(
                    {
                        "updated": time.time(),
                        "services": {n: {"status": s, "status_info": i} for n, (s, i) in self._status.items()},
                    },
                    indent=1,
                ),
            )
        except OSError as exc:  # a full disk must not stop the statuses reaching the region
            log.debug("cannot write %s: %s", self.path, exc)


def read_board(data_dir: Path) -> dict[str, dict[str, str]]:
    """The statuses a rack last wrote in its data dir ({} when none)."""
    try:
        return dict(json.loads((data_dir / BOARD_FILE).read_text())["services"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}
