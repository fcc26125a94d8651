"""Running kea-dhcp4: one supervised process per instance.

Per instance, a directory ``<state_dir>/<instance>/`` holds:

* ``kea-dhcp4.json``: the configuration in force (written only after
  ``kea-dhcp4 -t`` accepted it; a rejected one is kept as ``rejected.json``);
* ``leases4.csv`` (+ ``.1``/``.2`` while LFC runs): the memfile lease database;
* ``run/``: ``KEA_PIDFILE_DIR`` and ``KEA_LOCKFILE_DIR``, private to the instance;
* ``kea.sock``: the control socket; ``kea.log``: Kea's output.

Applying a change to a running instance goes through the control socket
(``config-set`` with the whole new configuration): Kea swaps the configuration
in place and reopens the memfile database from its file, so no lease is lost
(tests/system/test_dhcp_service.py measures it). A crashed process is restarted
with exponential backoff; `status` says running/dead/off with the reason.

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
import signal
import time
from pathlib import Path
from typing import Any

from metalplane.lifetimes import die_with_parent
from metalplane.logs import open_log
from metalplane.supervised import Wrap, prefix_wrap  # noqa: F401 - prefix_wrap is re-exported
from metalplane.supervised import write_atomic as _write_atomic

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


def _kea_errors(output: str) -> str:
    """The meaningful lines of kea-dhcp4's complaint."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    picked = [ln for ln in lines if " ERROR " in ln or ln.startswith("Error") or " FATAL " in ln]
    return "\n".join(picked or lines[-5:]) or "(no output)"


async def control(socket_path: str | Path, command: str, arguments: dict[str, Any] | None = None,
                  timeout: float = 10.0) -> dict[str, Any]:
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
                if isinstance(answer, list):      # commands sent to several services answer a list
                    answer = answer[0]
                return answer
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    return await asyncio.wait_for(talk(), timeout)


class KeaProcess:
    """One kea-dhcp4 instance: config check, start, live reconfiguration, supervision."""

    def __init__(self, name: str, directory: str | Path, *, wrap: Wrap | None = None,
                 kea_bin: str = "kea-dhcp4", restart_backoff: tuple[float, float] | None = (1.0, 30.0),
                 ready_timeout: float = 15.0):
        self.name = name
        self.dir = Path(directory)
        self.wrap: Wrap = wrap or (lambda cmd: cmd)
        self.kea_bin = kea_bin
        self.restart_backoff = restart_backoff
        self.ready_timeout = ready_timeout
        self.config_path = self.dir / "kea-dhcp4.json"
        self.lease_file = self.dir / "leases4.csv"
        self.socket_path = self.dir / "kea.sock"
        self.run_dir = self.dir / "run"
        self.log_path = self.dir / "kea.log"
        if len(str(self.socket_path)) > MAX_UNIX_PATH:
            raise ValueError(f"control socket path too long for a unix socket: {self.socket_path}")
        self.config: dict[str, Any] | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self.pid: int | None = None
        self.restarts = 0
        self.last_exit: int | None = None
        self.last_error = ""
        self.started_at = 0.0
        self.ha_state: str | None = None        # filled by the service's poller
        self._wanted = False
        self._supervisor: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        self._restart_now = asyncio.Event()
        self._generation = 0                    # processes spawned so far

    # ------------------------------------------------------------------ status

    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def status(self) -> tuple[str, str]:
        if not self._wanted:
            return "off", f"{self.name}: stopped"
        if self.running():
            # ha.dhcp_peers.kea_ha_state reads the HA state back from this text (the controller page)
            extra = f", HA {self.ha_state}" if self.ha_state else ""
            return "running", f"{self.name}: pid {self.pid}{extra}, restarts {self.restarts}"
        if self.last_exit is None:
            why = "not started"
        elif self.last_exit < 0:
            why = f"killed by signal {-self.last_exit}"
        else:
            why = f"exited with status {self.last_exit}"
        if self.last_error:
            why += f": {self.last_error}"
        return "dead", f"{self.name}: {why}; restarts {self.restarts}"

    # ------------------------------------------------------------------ config

    def paths(self) -> tuple[str, str]:
        """(lease file, control socket) to render this instance's config with."""
        return str(self.lease_file), str(self.socket_path)

    async def check(self, config: dict[str, Any]) -> None:
        """``kea-dhcp4 -t``: raise KeaConfigError with Kea's message if it refuses `config`."""
        self.dir.mkdir(parents=True, exist_ok=True)
        candidate = self.dir / "candidate.json"
        candidate.write_text(json.dumps(config, indent=1))
        proc = await asyncio.create_subprocess_exec(
            *self.wrap([self.kea_bin, "-t", str(candidate)]), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, env=self._env(), start_new_session=True)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise
        if proc.returncode != 0:
            os.replace(candidate, self.dir / "rejected.json")
            raise KeaConfigError(_kea_errors(out.decode(errors="replace")), instance=self.name)
        candidate.unlink(missing_ok=True)

    async def apply(self, config: dict[str, Any], *, checked: bool = False) -> str:
        """Make `config` the one in force; returns "unchanged", "started" or "reconfigured".

        Checked with ``kea-dhcp4 -t`` first (unless `checked`); a running Kea gets it
        through ``config-set`` (leases kept), a stopped one is started with it.
        """
        async with self._lock:
            if self.config == config and self._wanted and self.running():
                return "unchanged"
            if not checked:
                await self.check(config)
            previous = self.config_path.read_text() if self.config_path.exists() else None
            _write_atomic(self.config_path, json.dumps(config, indent=1))
            self.config = config
            self._wanted = True
            if self.running():
                try:
                    answer = await control(self.socket_path, "config-set", config, timeout=60)
                except (TimeoutError, OSError, KeaError) as e:
                    answer = {"result": 1, "text": f"control socket: {e}"}
                if answer.get("result") == 0:
                    return "reconfigured"
                if previous is not None:
                    _write_atomic(self.config_path, previous)
                    self.config = json.loads(previous)
                raise KeaConfigError(answer.get("text", str(answer)), instance=self.name)
            generation = self._generation
            if self._supervisor is None or self._supervisor.done():
                self._supervisor = asyncio.create_task(self._supervise(), name=f"kea-{self.name}")
            else:
                self._restart_now.set()     # dead and waiting out a backoff: start now
            await self._wait_ready(generation)
            return "started"

    # ------------------------------------------------------------------ process

    def _env(self) -> dict[str, str]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        return {**os.environ, "KEA_PIDFILE_DIR": str(self.run_dir), "KEA_LOCKFILE_DIR": str(self.run_dir)}

    async def _spawn(self) -> None:
        for stale in self.run_dir.glob("*.pid"):
            stale.unlink(missing_ok=True)
        self.socket_path.unlink(missing_ok=True)
        env = self._env()
        with open_log(self.log_path) as logf:
            logf.write(f"--- {time.strftime('%F %T')} starting kea-dhcp4 {self.name}\n".encode())
            logf.flush()
            self.proc = await asyncio.create_subprocess_exec(
                *self.wrap([self.kea_bin, "-c", str(self.config_path)]), stdin=asyncio.subprocess.DEVNULL,
                stdout=logf, stderr=asyncio.subprocess.STDOUT, env=env, start_new_session=True,
                preexec_fn=die_with_parent)
        self.pid = self.proc.pid
        self._generation += 1
        self.started_at = time.monotonic()
        self.last_error = ""
        log.info("kea-dhcp4 %s started, pid %s", self.name, self.pid)

    async def _wait_ready(self, generation: int) -> None:
        """Until a process newer than `generation` answers on the control socket;
        KeaError if it dies first or never answers."""
        deadline = time.monotonic() + self.ready_timeout
        while True:
            proc = self.proc if self._generation > generation else None
            if proc is not None and proc.returncode is None and self.socket_path.exists():
                try:
                    answer = await control(self.socket_path, "version-get", timeout=2)
                    if answer.get("result") == 0:
                        return
                except (TimeoutError, OSError, KeaError, ValueError):
                    pass
            if proc is not None and proc.returncode is not None and self.restart_backoff is None:
                raise KeaError(f"exited {proc.returncode} at start: {self.tail_log()}", instance=self.name)
            if time.monotonic() > deadline:
                raise KeaError(f"not ready after {self.ready_timeout}s: {self.tail_log()}", instance=self.name)
            await asyncio.sleep(0.05)

    def tail_log(self, lines: int = 3) -> str:
        """Kea's last ERROR/FATAL lines since the last start, if any."""
        try:
            text = self.log_path.read_text(errors="replace")[-50000:]
        except FileNotFoundError:
            return ""
        text = text.rsplit("--- ", 1)[-1]
        picked = [ln.strip() for ln in text.splitlines() if " ERROR " in ln or " FATAL " in ln]
        return " | ".join(picked[-lines:])

    async def _supervise(self) -> None:
        delay = self.restart_backoff[0] if self.restart_backoff else 0.0
        while self._wanted:
            try:
                await self._spawn()
            except OSError as e:
                self.last_error = f"cannot start: {e}"
                self.proc = None
            if self.proc is not None:
                code = await self.proc.wait()
                if not self._wanted:
                    break
                self.last_exit = code
                self.last_error = self.tail_log()
                log.warning("kea-dhcp4 %s (pid %s) exited %s: %s", self.name, self.pid, code, self.last_error)
                if time.monotonic() - self.started_at > 60 and self.restart_backoff:
                    delay = self.restart_backoff[0]
            if self.restart_backoff is None:
                # no automatic restart: wait for an explicit apply()
                self._restart_now.clear()
                await self._restart_now.wait()
                continue
            self._restart_now.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._restart_now.wait(), delay)
            delay = min(delay * 2, self.restart_backoff[1])
            self.restarts += 1

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop Kea (SIGTERM, then SIGKILL) and its supervision."""
        async with self._lock:
            self._wanted = False
            self._restart_now.set()
            proc = self.proc
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), timeout)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    await proc.wait()
            if self._supervisor is not None:
                self._supervisor.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._supervisor
                self._supervisor = None
            self.config = None

    async def command(self, command: str, arguments: dict[str, Any] | None = None,
                      timeout: float = 10.0) -> dict[str, Any]:
        return await control(self.socket_path, command, arguments, timeout)

