"""The rack's board of service statuses, reported to the region on change."""

from __future__ import annotations

import asyncio

from metalplane.rpc.messages import ServiceStatus

# rackd: the rack's own health (its supervised tasks); the region combines it with its
# judgement from the rack's connections.
REPORTED = ("rackd", "dhcpd", "dhcpd6", "tftp", "http", "ntp_rack", "dns_rack")


class ServiceBoard:
    def __init__(self) -> None:
        self._status: dict[str, tuple[str, str]] = dict.fromkeys(REPORTED, ("off", "not running on this rack"))
        self._status["rackd"] = ("running", "")
        self.changed = asyncio.Event()
        self.changed.set()

    def set(self, name: str, status: str, info: str = "") -> None:
        if self._status.get(name) != (status, info):
            self._status[name] = (status, info)
            self.changed.set()

    def get(self, name: str) -> tuple[str, str]:
        return self._status[name]

    def snapshot(self) -> list[ServiceStatus]:
        return [ServiceStatus(n, s, i) for n, (s, i) in self._status.items()]
