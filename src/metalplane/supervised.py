"""One long-running daemon (named, chronyd...) kept alive by the daemon that needs it.

    proc = Supervised("named", ["named", "-g", "-c", conf], log_path=dir / "named.log",
                      wrap=prefix_wrap(["ip", "netns", "exec", NS]), on_change=board_update)
    await proc.start()          # spawned; restarted with backoff whenever it dies
    proc.running(), proc.pid, proc.restarts, proc.death()   # for status reports
    await proc.stop()           # SIGTERM, then SIGKILL of its process group

The process runs in its own session (so its whole group can be killed) and
dies with its supervisor (`dying_with_parent`). Its output is appended to
`log_path`, one ``--- <time> starting`` line before each start, so the lines
since the last start explain its last death (`tail_errors`). `on_change` is
called at once when the process starts or dies: a status board learns of a
death in milliseconds, not at its next poll.

Commands can run in another network namespace through `wrap` (a prefix such
as ``ip netns exec NS``, which execs the command: the PID is the daemon's).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from metalplane.lifetimes import dying_with_parent
from metalplane.logs import open_log

log = logging.getLogger(__name__)

Wrap = Callable[[list[str]], list[str]]


def prefix_wrap(prefix: Sequence[str]) -> Wrap:
    """A `wrap` that puts `prefix` before each command (e.g. ``ip netns exec NS``)."""
    pre = list(prefix)
    return lambda cmd: pre + cmd


def no_wrap(cmd: list[str]) -> list[str]:
    return cmd


def write_atomic(path: Path, text: str, mode: int | None = None) -> None:
    """Replace `path` with `text` in one step (fsynced), so a reader sees the old or the new file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        if mode is not None:
            os.fchmod(f.fileno(), mode)
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


async def run_command(
    cmd: Sequence[str], *, wrap: Wrap = no_wrap, timeout: float = 30.0, env: Mapping[str, str] | None = None
) -> tuple[int, str]:
    """Run a short command (a config check, a control command): (exit status, stdout+stderr).

    On timeout its process group is killed and TimeoutError raised.
    """
    proc = await asyncio.create_subprocess_exec(
        *wrap(list(cmd)),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, **env} if env else None,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


class Supervised:
    """A daemon process that runs in the foreground, restarted with backoff when it dies.

    restart_backoff: (first delay, cap) in seconds, doubling after each quick death
    and reset once the process has lived `young` seconds; None: never restart.
    error_filter: picks the lines of its output that explain a death (default: the last 3).
    prepare: runs before each start (e.g. to remove what a killed process left behind).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        wrap: Wrap | None = None,
        env: Mapping[str, str] | None = None,
        restart_backoff: tuple[float, float] | None = (0.5, 30.0),
        young: float = 60.0,
        error_filter: Callable[[list[str]], list[str]] | None = None,
        on_change: Callable[[], None] | None = None,
        prepare: Callable[[], None] | None = None,
    ):
        self.name = name
        self.argv = list(argv)
        self.log_path = Path(log_path)
        self.wrap: Wrap = wrap or no_wrap
        self.env = dict(env) if env else None
        self.restart_backoff = restart_backoff
        self.young = young
        self.error_filter = error_filter or (lambda lines: lines[-3:])
        self.on_change = on_change
        self.prepare = prepare
        self.proc: asyncio.subprocess.Process | None = None
        self.pid: int | None = None
        self.restarts = 0
        self.starts = 0
        self.last_exit: int | None = None
        self.last_error = ""
        self.started_at = 0.0
        self._wanted = False
        self._task: asyncio.Task | None = None
        self._restart_now = asyncio.Event()
        self._spawned = asyncio.Event()

    # ------------------------------------------------------------------ state

    @property
    def wanted(self) -> bool:
        return self._wanted

    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def death(self) -> str:
        """Why the last process is gone, in words (with its own last error lines)."""
        if self.last_exit is None:
            why = "not started"
        elif self.last_exit < 0:
            try:
                why = f"killed by {signal.Signals(-self.last_exit).name}"
            except ValueError:
                why = f"killed by signal {-self.last_exit}"
        else:
            why = f"exited with status {self.last_exit}"
        return f"{why}: {self.last_error}" if self.last_error else why

    def tail_errors(self) -> str:
        """The lines its output holds since the last start, as picked by `error_filter`."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 65536))
                text = f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""
        text = text.rsplit("\n--- ", 1)[-1]
        lines = [ln.strip() for ln in text.splitlines()[1:] if ln.strip()]
        return " | ".join(self.error_filter(lines))

    # ------------------------------------------------------------------ control

    async def start(self) -> None:
        """Start supervising: returns once a process has been spawned (or failed to spawn)."""
        self._wanted = True
        if self._task is None or self._task.done():
            self._spawned.clear()
            self._task = asyncio.create_task(self._supervise(), name=f"supervise-{self.name}")
            await self._spawned.wait()
        elif not self.running():
            self.restart_now()

    def restart_now(self) -> None:
        """A dead process waiting out its backoff is started at once."""
        self._restart_now.set()

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop the process (SIGTERM, then SIGKILL to its group) and its supervision."""
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
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        self._changed()

    # ------------------------------------------------------------------ internals

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:  # a status callback must not kill supervision
                log.exception("%s: status callback failed", self.name)

    async def _spawn(self) -> None:
        if self.prepare is not None:
            self.prepare()
        with open_log(self.log_path) as logf:
            logf.write(f"\n--- {time.strftime('%F %T')} starting {self.name}\n".encode())
            logf.flush()
            self.proc = await asyncio.create_subprocess_exec(
                *dying_with_parent(self.wrap(list(self.argv))),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=logf,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **self.env} if self.env else None,
            )
        self.pid = self.proc.pid
        self.starts += 1
        self.started_at = time.monotonic()
        log.info("%s started, pid %s", self.name, self.pid)

    async def _supervise(self) -> None:
        delay = self.restart_backoff[0] if self.restart_backoff else 0.0
        try:
            while self._wanted:
                try:
                    await self._spawn()
                except OSError as e:
                    self.proc = None
                    self.last_error = f"cannot start: {e}"
                self._spawned.set()
                self._changed()
                if self.proc is not None:
                    code = await self.proc.wait()
                    if not self._wanted:
                        break
                    self.last_exit = code
                    self.last_error = self.tail_errors()
                    log.warning("%s (pid %s) %s", self.name, self.pid, self.death())
                    self._changed()
                    if time.monotonic() - self.started_at > self.young and self.restart_backoff:
                        delay = self.restart_backoff[0]
                self._restart_now.clear()
                if self.restart_backoff is None:
                    await self._restart_now.wait()  # only an explicit restart_now()/start()
                else:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._restart_now.wait(), delay)
                    delay = min(delay * 2, self.restart_backoff[1])
                if self._wanted:
                    self.restarts += 1
        finally:
            self._spawned.set()
