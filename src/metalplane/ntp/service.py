"""chronyd as a region or a rack runs it: configured, supervised, and judged by chrony itself.

    ntp = ChronyService(state_dir / "ntp", on_change=board_update)
    await ntp.apply(rack_config(regions=["10.0.0.1"], allow=[ip_network("10.50.0.0/24")]))
    ntp.status()     # ("running" | "degraded" | "dead" | "off", text) for "ntp_rack" / "ntp_region"
    await ntp.stop()

chronyd runs in the foreground and never touches the host's clock
(``chronyd -x -d -u root -f CONF``): it serves the machines and measures its
sources, which is what a rack or region is for; the host's clock is the
operating system's business. Its configuration is checked with
``chronyd -p`` first (a refusal keeps the running chronyd and its last good
configuration, and the status carries chrony's own line); chrony cannot
reload a configuration, so a new one restarts it (machines see one missed
poll; iburst resynchronises in about 2 s). If the new one passes the check
but chronyd still dies with it, the previous one is put back.

Status comes from chrony every `poll_interval` seconds (``chronyc -n -c
tracking`` and ``sources``, judged by `chronyc.judge`); a chronyd that dies is
"dead" at once (the supervisor's callback), and is restarted with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from metalplane.ntp import chronyc
from metalplane.ntp.config import ChronyConfig, ChronyPaths, render
from metalplane.supervised import Supervised, Wrap, no_wrap, run_command, write_atomic

log = logging.getLogger(__name__)


class ChronyError(RuntimeError):
    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


class ChronyConfigError(ChronyError):
    """chrony refused a configuration; the previous one is still in force."""


def _chrony_errors(lines: list[str]) -> list[str]:
    return [ln for ln in lines if "Fatal" in ln or "Could not" in ln or "rror" in ln][-3:]


class ChronyService:
    def __init__(
        self,
        state_dir: str | Path,
        *,
        wrap: Wrap | None = None,
        chronyd_bin: str = "chronyd",
        chronyc_bin: str = "chronyc",
        poll_interval: float = 1.0,
        ready_timeout: float = 10.0,
        restart_backoff: tuple[float, float] | None = (0.5, 30.0),
        on_change: Callable[[], None] | None = None,
    ):
        self.paths = ChronyPaths(Path(state_dir))
        self.wrap: Wrap = wrap or no_wrap
        self.chronyd_bin = chronyd_bin
        self.chronyc_bin = chronyc_bin
        self.poll_interval = poll_interval
        self.ready_timeout = ready_timeout
        self.on_change = on_change
        self.config: ChronyConfig | None = None
        self.last_refusal = ""
        self.judged: tuple[str, str] | None = None
        self.process = Supervised(
            "chronyd",
            [chronyd_bin, "-x", "-d", "-u", "root", "-f", str(self.paths.conf)],
            log_path=self.paths.directory / "chronyd.log",
            wrap=self.wrap,
            restart_backoff=restart_backoff,
            error_filter=_chrony_errors,
            on_change=self._process_changed,
        )
        self._lock = asyncio.Lock()
        self._poller: asyncio.Task | None = None
        self._reported: tuple[str, str] | None = None

    # ------------------------------------------------------------------ apply

    async def check(self, text: str) -> None:
        """``chronyd -p`` on a candidate: ChronyConfigError with chrony's words if refused."""
        candidate = self.paths.directory / "candidate.conf"
        candidate.write_text(text)
        code, out = await run_command([self.chronyd_bin, "-p", "-f", str(candidate)], wrap=self.wrap)
        if code != 0:
            lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
            raise ChronyConfigError(" | ".join(_chrony_errors(lines) or lines[-2:]) or f"chronyd -p exited {code}")
        candidate.unlink(missing_ok=True)

    async def apply(self, cfg: ChronyConfig | None) -> str:
        """Serve `cfg` ("started" | "restarted" | "unchanged"), or stop chronyd when None
        ("stopped"). Raises ChronyConfigError (refused; the previous one keeps running)."""
        async with self._lock:
            if cfg is None:
                await self._stop()
                return "stopped"
            self.paths.directory.mkdir(parents=True, exist_ok=True)
            self.paths.run_dir.mkdir(mode=0o700, exist_ok=True)
            self.paths.run_dir.chmod(0o700)
            text = render(cfg, self.paths)
            previous = self.paths.conf.read_text() if self.paths.conf.exists() else None
            if previous == text and self.process.running():
                self.config = cfg
                if self.last_refusal:  # what is wanted is what serves (a refused change undone)
                    self.last_refusal = ""
                    self._publish()
                return "unchanged"
            try:
                await self.check(text)
            except ChronyConfigError as e:
                self.last_refusal = e.message
                self._publish()
                raise
            write_atomic(self.paths.conf, text)
            outcome = "restarted" if self.process.running() else "started"
            try:
                await self._restart()
            except ChronyError as e:
                if previous is not None:
                    write_atomic(self.paths.conf, previous)
                    with contextlib.suppress(ChronyError):
                        await self._restart()
                self.last_refusal = e.message
                self._publish()
                raise ChronyConfigError(e.message) from None
            self.config = cfg
            self.last_refusal = ""
            self.judged = None
            if self._poller is None or self._poller.done():
                self._poller = asyncio.create_task(self._poll(), name="chrony-status")
            await self.refresh()
            return outcome

    async def _restart(self) -> None:
        if self.process.running():
            await self.process.stop()
        before = self.process.starts
        await self.process.start()
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if self.process.running():
                code, _ = await self._chronyc("tracking")
                if code == 0:
                    return
            elif self.process.starts > before:
                await asyncio.sleep(0.05)  # let the supervisor record why
                raise ChronyError(f"chronyd {self.process.death()}")
            if time.monotonic() > deadline:
                raise ChronyError(f"chronyd not answering after {self.ready_timeout}s: {self.process.tail_errors()}")
            await asyncio.sleep(0.05)

    # ------------------------------------------------------------------ status

    async def _chronyc(self, what: str) -> tuple[int, str]:
        try:
            return await run_command(
                [self.chronyc_bin, "-h", str(self.paths.socket), "-n", "-c", what], wrap=self.wrap, timeout=5
            )
        except TimeoutError:
            return 1, f"chronyc {what}: no answer within 5s"

    async def refresh(self) -> tuple[str, str]:
        """Ask chrony now; returns the new status."""
        if self.process.running() and self.config is not None:
            (c1, tracking), (c2, sources) = await asyncio.gather(self._chronyc("tracking"), self._chronyc("sources"))
            if c1 == 0 and c2 == 0:
                try:
                    self.judged = chronyc.judge(
                        chronyc.parse_tracking(tracking), chronyc.parse_sources(sources), self.config.stratum
                    )
                except ValueError as e:
                    self.judged = ("degraded", f"cannot read chrony's state: {e}")
            else:
                self.judged = ("degraded", f"chronyc: {(tracking if c1 else sources).strip()[:200]}")
        self._publish()
        return self.status()

    async def _poll(self) -> None:
        while self.process.wanted:
            try:
                await self.refresh()
            except Exception:  # keep reporting
                log.exception("chrony status")
            await asyncio.sleep(self.poll_interval)

    def _process_changed(self) -> None:
        if not self.process.running():
            self.judged = None
        self._publish()

    def _publish(self) -> None:
        current = self.status()
        if current != self._reported:
            self._reported = current
            if self.on_change is not None:
                self.on_change()

    def status(self) -> tuple[str, str]:
        """("off" | "running" | "degraded" | "dead", text)."""
        proc = self.process
        if not proc.wanted:
            return "off", "chronyd: not started"
        if not proc.running():
            return "dead", f"chronyd {proc.death()}; restarts {proc.restarts}"
        status, text = self.judged or ("running", f"chronyd: pid {proc.pid}, starting")
        if proc.restarts:  # a death the poller never saw still shows
            text = f"{text}; restarts {proc.restarts}"
        if self.last_refusal:
            return "degraded", f"{text}; serving the last good configuration, refused: {self.last_refusal}"
        return status, text

    # ------------------------------------------------------------------ stop

    async def _stop(self) -> None:
        await self.process.stop()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._poller
            self._poller = None
        self.config = None
        self.judged = None
        self._publish()

    async def stop(self) -> None:
        async with self._lock:
            await self._stop()
