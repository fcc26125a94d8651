"""Running kea-dhcp4 and kea-dhcp6: one supervised process per instance.

Per instance, a directory ``<state_dir>/<instance>/`` holds:

* ``kea-dhcp4.json`` (``kea-dhcp6.json``): the configuration in force (written only
  after ``kea-dhcpN -t`` accepted it; a rejected one is kept as ``rejected.json``);
* ``leases4.csv`` (``leases6.csv``; + ``.1``/``.2`` while LFC runs): the memfile lease database;
* ``run/``: ``KEA_PIDFILE_DIR`` and ``KEA_LOCKFILE_DIR``, private to the instance;
* ``kea.sock``: the control socket; ``kea.log``: Kea's output.

Applying a change to a running instance goes through the control socket
(``config-set`` with the whole new configuration): Kea swaps the configuration
in place and reopens the memfile database from its file, so no lease is lost
(tests/system/test_dhcp_service.py measures it). The process is a
`metalplane.supervised.Supervised`: a crashed one is restarted with exponential
backoff, and `status` says running/dead/off with the reason.

Commands can run in another network namespace through `wrap` (e.g.
``["ip", "netns", "exec", NS]`` as a prefix): the rack runs in its own
namespace in production, the tests put each rack in one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from metalplane.supervised import Supervised, Wrap, run_command, write_atomic
from metalplane.supervised import prefix_wrap as prefix_wrap  # re-exported

log = logging.getLogger(__name__)

MAX_UNIX_PATH = 107


class KeaError(RuntimeError):
    """Kea refused something; `message` is Kea's own words."""

    def __init__(self, message: str, *, instance: str = ""):
        self.message = message
        self.instance = instance
        super().__init__(f"kea-dhcp4 {instance}: {message}" if instance else message)


class KeaConfigError(KeaError):
    """``kea-dhcp4 -t`` (or config-set) rejected a configuration; it was not loaded."""


def _kea_lines(lines: list[str]) -> list[str]:
    """Kea's lines that say why it refused or died."""
    return [ln for ln in lines if " ERROR " in ln or ln.startswith("Error") or " FATAL " in ln]


def _kea_errors(output: str) -> str:
    """The meaningful lines of kea-dhcpN's complaint."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    return "\n".join(_kea_lines(lines) or lines[-5:]) or "(no output)"


async def control(
    socket_path: str | Path, command: str, arguments: dict[str, Any] | None = None, timeout: float = 10.0
) -> dict[str, Any]:
    """Send one command on a Kea unix control socket; return its answer ({"result": 0, ...})."""
    msg: dict[str, Any] = {"command": command}
    if arguments is not None:
        msg["arguments"] = arguments

    async def talk() -> dict[str, Any]:
        reader, writer = await asyncio.open_unix_connection(str(socket_path), limit=2**26)
        try:
            writer.write(json.dumps(msg).encode())
            await writer.drain()
            buf = b""
            while True:
                chunk = await reader.read(1 << 16)
                if chunk:
                    buf += chunk
                    try:
                        answer = json.loads(buf)
                    except ValueError:
                        continue
                elif not buf:
                    raise KeaError(f"control socket closed without an answer to {command}")
                else:
                    answer = json.loads(buf)
                if isinstance(answer, list):  # commands sent to several services answer a list
                    answer = answer[0]
                return answer
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    return await asyncio.wait_for(talk(), timeout)


class KeaProcess:
    """One kea-dhcp4 (or kea-dhcp6) instance: config check, start, live reconfiguration;
    the process itself is a `Supervised` (restarted with backoff, its death reported at once)."""

    def __init__(
        self,
        name: str,
        directory: str | Path,
        *,
        wrap: Wrap | None = None,
        kea_bin: str | None = None,
        family: int = 4,
        restart_backoff: tuple[float, float] | None = (1.0, 30.0),
        ready_timeout: float = 15.0,
        on_change: Callable[[], None] | None = None,
    ):
        self.name = name
        self.dir = Path(directory)
        self.family = family
        self.wrap: Wrap = wrap or (lambda cmd: cmd)
        self.kea_bin = kea_bin or f"kea-dhcp{family}"
        self.ready_timeout = ready_timeout
        self.config_path = self.dir / f"kea-dhcp{family}.json"
        self.lease_file = self.dir / f"leases{family}.csv"
        self.socket_path = self.dir / "kea.sock"
        self.run_dir = self.dir / "run"
        self.log_path = self.dir / "kea.log"
        if len(str(self.socket_path)) > MAX_UNIX_PATH:
            raise ValueError(f"control socket path too long for a unix socket: {self.socket_path}")
        self.config: dict[str, Any] | None = None
        self.ha_state: str | None = None  # filled by the service's poller
        self.process = Supervised(
            f"kea-dhcp{family} {name}",
            [self.kea_bin, "-c", str(self.config_path)],
            log_path=self.log_path,
            wrap=self.wrap,
            env=self._env(),
            restart_backoff=restart_backoff,
            young=60.0,
            error_filter=_kea_lines,
            on_change=on_change,
            prepare=self._clean,
        )
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ status

    @property
    def pid(self) -> int | None:
        return self.process.pid

    @property
    def restarts(self) -> int:
        return self.process.restarts

    def running(self) -> bool:
        return self.process.running()

    def status(self) -> tuple[str, str]:
        proc = self.process
        if not proc.wanted:
            return "off", f"{self.name}: stopped"
        if proc.running():
            # ha.dhcp_peers.kea_ha_state reads the HA state back from this text (the controller page)
            extra = f", HA {self.ha_state}" if self.ha_state else ""
            return "running", f"{self.name}: pid {proc.pid}{extra}, restarts {proc.restarts}"
        return "dead", f"{self.name}: {proc.death()}; restarts {proc.restarts}"

    # ------------------------------------------------------------------ config

    def paths(self) -> tuple[str, str]:
        """(lease file, control socket) to render this instance's config with."""
        return str(self.lease_file), str(self.socket_path)

    async def check(self, config: dict[str, Any]) -> None:
        """``kea-dhcpN -t``: raise KeaConfigError with Kea's message if it refuses `config`."""
        self.dir.mkdir(parents=True, exist_ok=True)
        candidate = self.dir / "candidate.json"
        candidate.write_text(json.dumps(config, indent=1))
        code, out = await run_command([self.kea_bin, "-t", str(candidate)], wrap=self.wrap, timeout=60, env=self._env())
        if code != 0:
            os.replace(candidate, self.dir / "rejected.json")
            raise KeaConfigError(_kea_errors(out), instance=self.name)
        candidate.unlink(missing_ok=True)

    async def apply(self, config: dict[str, Any], *, checked: bool = False) -> str:
        """Make `config` the one in force; returns "unchanged", "started" or "reconfigured".

        Checked with ``kea-dhcpN -t`` first (unless `checked`); a running Kea gets it
        through ``config-set`` (leases kept), a stopped one is started with it.
        """
        async with self._lock:
            if self.config == config and self.process.wanted and self.running():
                return "unchanged"
            if not checked:
                await self.check(config)
            previous = self.config_path.read_text() if self.config_path.exists() else None
            write_atomic(self.config_path, json.dumps(config, indent=1))
            self.config = config
            if self.running():
                try:
                    answer = await control(self.socket_path, "config-set", config, timeout=60)
                except (TimeoutError, OSError, KeaError) as e:
                    answer = {"result": 1, "text": f"control socket: {e}"}
                if answer.get("result") == 0:
                    return "reconfigured"
                if previous is not None:
                    write_atomic(self.config_path, previous)
                    self.config = json.loads(previous)
                raise KeaConfigError(answer.get("text", str(answer)), instance=self.name)
            before = self.process.starts
            await self.process.start()  # or, dead and waiting out a backoff: start now
            await self._wait_ready(before)
            return "started"

    # ------------------------------------------------------------------ process

    def _env(self) -> dict[str, str]:
        return {"KEA_PIDFILE_DIR": str(self.run_dir), "KEA_LOCKFILE_DIR": str(self.run_dir)}

    def _clean(self) -> None:
        """What a killed Kea leaves behind would stop the next one: its pid file and socket."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.run_dir.glob("*.pid"):
            stale.unlink(missing_ok=True)
        self.socket_path.unlink(missing_ok=True)

    async def _wait_ready(self, before: int) -> None:
        """Until a process started after `before` starts answers on the control socket;
        KeaError if it dies first (and is not restarted) or never answers."""
        proc = self.process
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if proc.starts > before and proc.running() and self.socket_path.exists():
                try:
                    answer = await control(self.socket_path, "version-get", timeout=2)
                    if answer.get("result") == 0:
                        return
                except (TimeoutError, OSError, KeaError, ValueError):
                    pass
            if proc.starts > before and not proc.running() and proc.restart_backoff is None:
                raise KeaError(f"{proc.death()} at start", instance=self.name)
            if time.monotonic() > deadline:
                raise KeaError(f"not ready after {self.ready_timeout}s: {proc.tail_errors()}", instance=self.name)
            await asyncio.sleep(0.05)

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop Kea (SIGTERM, then SIGKILL) and its supervision."""
        async with self._lock:
            await self.process.stop(timeout)
            self.config = None

    async def command(
        self, command: str, arguments: dict[str, Any] | None = None, timeout: float = 10.0
    ) -> dict[str, Any]:
        return await control(self.socket_path, command, arguments, timeout)
