"""One supervised `named`: checked configuration, reloads, last good configuration, status.

Applying a configuration (`NamedServer.apply`):

1. the new named.conf and every changed zone file are written to ``staging/``
   and checked with BIND's own tools: ``named-checkconf`` and, per zone,
   ``named-checkzone``. A refusal raises `NamedConfigError` with BIND's own
   error lines; nothing in force is touched, named keeps serving the last good
   configuration, and `status` says so (degraded, with those lines);
2. the checked files replace the ones in force (each with one rename);
3. named is told: ``rndc reconfig`` when named.conf changed (new and removed
   zones), ``rndc reload ZONE`` for each changed zone (named re-reads that zone
   file only), or started if it is not running;
4. the new SOA serial of every changed zone is awaited in ``rndc zonestatus``:
   when `apply` returns, named answers from the new data. Should named still
   refuse a zone (``rndc reload`` only queues the load), the previous file is
   put back and reloaded and `NamedConfigError` carries named's log lines.

named runs in the foreground (``named -g -c CONF``), supervised: restarted with
backoff when it dies, always from the files in force, which are the last good
ones. Status: "off" (never applied or stopped), "running", "degraded" (running,
but the last configuration was refused), "dead" (with the cause).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from metalplane.dns.conf import Layout, render_key, render_rndc_conf
from metalplane.supervised import Supervised, Wrap, no_wrap, run_command, write_atomic

log = logging.getLogger(__name__)

_SERIAL_RE = re.compile(r"^serial:\s*(\d+)", re.MULTILINE)
#: A checker's lines that say all is well (left out of its complaint).
_SUCCESS_RE = re.compile(r"loaded serial \d+|^OK$")
#: named's own lines that say why it refused or died.
_ERROR_RE = re.compile(
    r"\b(failed|errors?|not loaded|unknown|unexpected|missing|bad|could not|redefined|"
    r"address in use|permission denied|invalid|not found|fatal|exiting)\b",
    re.IGNORECASE,
)


class NamedError(RuntimeError):
    """named could not be started, reached or controlled; `message` is the cause."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


class NamedConfigError(NamedError):
    """BIND refused a configuration or a zone; the previous one is still in force."""


@dataclass(frozen=True)
class ZoneFile:
    """A zone file's text and the SOA serial written in it."""

    text: str
    serial: int


def bind_errors(output: str, staging: Path | None = None, live: Path | None = None) -> str:
    """BIND's meaningful lines from a checker's or rndc's output (a tool that failed: all it
    says but its success lines, e.g. "NS 'ns2.maas' has no address records"), joined with " | "."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    picked = [ln for ln in lines if not _SUCCESS_RE.search(ln)][-5:] or lines[-3:]
    text = " | ".join(picked) or "(no output)"
    if staging is not None and live is not None:
        text = text.replace(str(staging), str(live))
    return text


def _named_log_errors(lines: list[str]) -> list[str]:
    return [ln for ln in lines if _ERROR_RE.search(ln)][-3:]


class NamedOptions(TypedDict, total=False):
    """How the region's and the rack's DNS services run their named (see NamedServer)."""

    wrap: Wrap | None
    named_bin: str
    threads: int | None
    restart_backoff: tuple[float, float] | None
    on_change: Callable[[], None] | None


class NamedServer:
    """One named process in its own directory, with its own rndc key and control port.

    wrap: runs every command (named, the checkers, rndc) e.g. in a network namespace.
    threads: named's ``-n`` (worker threads; default one per CPU).
    on_change: called when named starts or dies (for a status board).
    """

    def __init__(
        self,
        name: str,
        directory: str | Path,
        *,
        control_port: int,
        wrap: Wrap | None = None,
        named_bin: str = "named",
        threads: int | None = None,
        restart_backoff: tuple[float, float] | None = (0.5, 30.0),
        ready_timeout: float = 20.0,
        reload_timeout: float = 10.0,
        on_change: Callable[[], None] | None = None,
    ):
        self.name = name
        self.layout = Layout(Path(directory), control_port)
        self.wrap: Wrap = wrap or no_wrap
        self.ready_timeout = ready_timeout
        self.reload_timeout = reload_timeout
        self.staging = self.layout.directory / "staging"
        self.last_refusal = ""
        self.serials: dict[str, int] = {}
        argv = [named_bin, "-g", "-c", str(self.layout.conf)]
        if threads:
            argv += ["-n", str(threads)]
        self.process = Supervised(
            f"named {name}",
            argv,
            log_path=self.layout.directory / "named.log",
            wrap=self.wrap,
            restart_backoff=restart_backoff,
            error_filter=_named_log_errors,
            on_change=on_change,
        )
        self._lock = asyncio.Lock()
        self._ensure_key()

    # ------------------------------------------------------------------ files

    def _ensure_key(self) -> None:
        lay = self.layout
        lay.zones_dir.mkdir(parents=True, exist_ok=True)
        if lay.key_file.exists() and lay.rndc_conf.exists():
            return
        secret = base64.b64encode(secrets.token_bytes(32)).decode()
        write_atomic(lay.key_file, render_key(secret), mode=0o600)
        write_atomic(lay.rndc_conf, render_rndc_conf(lay, secret), mode=0o600)

    def _installed_zones(self) -> dict[str, Path]:
        return {p.name[3:]: p for p in self.layout.zones_dir.glob("db.*")}

    @staticmethod
    def _read(path: Path) -> str | None:
        try:
            return path.read_text()
        except FileNotFoundError:
            return None

    # ------------------------------------------------------------------ commands

    async def rndc(self, *args: str, timeout: float = 10.0) -> str:
        """Run one rndc command against this named; NamedError with rndc's words if it fails."""
        code, out = await run_command(
            ["rndc", "-c", str(self.layout.rndc_conf), *args], wrap=self.wrap, timeout=timeout
        )
        if code != 0:
            raise NamedError(f"rndc {' '.join(args)}: {bind_errors(out)}")
        return out

    async def check(self, conf: str | None, zones: Mapping[str, ZoneFile]) -> None:
        """BIND's checkers on a candidate named.conf (None: unchanged, not checked) and zone
        files, all at once; NamedConfigError with their lines if any is refused."""
        shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir(parents=True)
        jobs, names, live = [], [], []
        if conf is not None:
            conf_path = self.staging / "named.conf"
            conf_path.write_text(conf)
            jobs.append(run_command(["named-checkconf", str(conf_path)], wrap=self.wrap))
            names.append("named.conf")
            live.append(self.layout.directory)
        for zone, zf in zones.items():
            path = self.staging / f"db.{zone}"
            path.write_text(zf.text)
            jobs.append(run_command(["named-checkzone", zone, str(path)], wrap=self.wrap))
            names.append(f"zone {zone}")
            live.append(self.layout.zones_dir)
        results = await asyncio.gather(*jobs)
        errors = []
        for (code, out), what, where in zip(results, names, live, strict=True):
            if code != 0:
                errors.append(f"{what}: {bind_errors(out, self.staging, where)}")
        if errors:
            raise NamedConfigError("; ".join(errors))

    # ------------------------------------------------------------------ apply

    async def apply(self, conf: str, zones: Mapping[str, ZoneFile]) -> str:
        """Make `conf` and `zones` ({zone name: ZoneFile}) the ones in force.

        Returns "started", "reconfigured", "reloaded" or "unchanged". Raises
        NamedConfigError (refused; the last good configuration keeps serving)
        or NamedError (named would not start or answer).
        """
        async with self._lock:
            lay = self.layout
            installed = self._installed_zones()
            changed = {z: zf for z, zf in zones.items() if self._read(lay.zone_file(z)) != zf.text}
            removed = [z for z in installed if z not in zones]
            conf_changed = self._read(lay.conf) != conf
            running = self.process.running()
            if not (changed or removed or conf_changed) and running:
                self.last_refusal = ""  # what is wanted is what serves (a refused change undone)
                return "unchanged"
            try:
                await self.check(conf if conf_changed else None, changed)
            except NamedConfigError as e:
                self.last_refusal = e.message
                log.warning("named %s refused a configuration: %s", self.name, e.message)
                raise
            previous = {z: self._read(lay.zone_file(z)) for z in changed}
            previous_conf = self._read(lay.conf)
            for zone in changed:
                os.replace(self.staging / f"db.{zone}", lay.zone_file(zone))
            write_atomic(lay.conf, conf)
            if not self.process.wanted or not running:
                outcome = "started"
                await self._start()
            elif conf_changed:
                outcome = "reconfigured"
                await self.rndc("reconfig", timeout=60)
                for zone in changed:
                    if zone in installed:
                        await self.rndc("reload", zone)
            else:
                outcome = "reloaded"
                await asyncio.gather(*(self.rndc("reload", zone) for zone in changed))
            try:
                await self._await_serials({z: zf.serial for z, zf in changed.items()})
            except NamedConfigError as e:
                await self._roll_back(previous, previous_conf)
                self.last_refusal = e.message
                raise
            for zone in removed:
                installed[zone].unlink(missing_ok=True)
            self.serials = {z: zf.serial for z, zf in zones.items()}
            self.last_refusal = ""
            return outcome

    async def _start(self) -> None:
        """Start named (or have the supervisor restart it now) and wait until rndc reaches it."""
        before = self.process.starts
        await self.process.start()
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if self.process.running():
                try:
                    await self.rndc("status", timeout=5)
                    return
                except (NamedError, TimeoutError):
                    pass
            elif self.process.starts > before:  # the named started for us died already
                raise NamedError(f"named {self.name} {self.process.death()}")
            if time.monotonic() > deadline:
                raise NamedError(
                    f"named {self.name} not answering rndc after {self.ready_timeout}s: "
                    f"{self.process.last_error or self.process.tail_errors()}"
                )
            await asyncio.sleep(0.05)

    async def _await_serials(self, wanted: Mapping[str, int]) -> None:
        """Until named serves each zone at its wanted serial (NamedConfigError with its log if not)."""
        deadline = time.monotonic() + self.reload_timeout
        pending = dict(wanted)

        async def serving(zone: str) -> bool:
            try:
                m = _SERIAL_RE.search(await self.rndc("zonestatus", zone, timeout=5))
            except (NamedError, TimeoutError):
                return False
            return m is not None and int(m.group(1)) == pending[zone]

        while pending:
            done = await asyncio.gather(*(serving(z) for z in pending))
            for zone, ok in zip(list(pending), done, strict=True):
                if ok:
                    del pending[zone]
            if not pending:
                return
            if time.monotonic() > deadline:
                lines = [ln for ln in self.process.tail_errors().split(" | ") if any(z in ln for z in pending)]
                raise NamedConfigError(
                    f"named did not load {', '.join(sorted(pending))}: "
                    f"{' | '.join(lines) or self.process.tail_errors()}"
                )
            await asyncio.sleep(0.02)

    async def _roll_back(self, previous: Mapping[str, str | None], previous_conf: str | None) -> None:
        lay = self.layout
        for zone, text in previous.items():
            if text is None:
                lay.zone_file(zone).unlink(missing_ok=True)
            else:
                write_atomic(lay.zone_file(zone), text)
        if previous_conf is not None:
            write_atomic(lay.conf, previous_conf)
        if self.process.running():
            try:
                await self.rndc("reconfig", timeout=60)
                for zone, text in previous.items():
                    if text is not None:
                        await self.rndc("reload", zone)
            except (NamedError, TimeoutError) as e:
                log.warning("named %s: rolling back: %s", self.name, e)

    async def flush(self, *names: str) -> None:
        """Drop cached answers: every name under each of `names` (all the cache when none)."""
        if not names:
            await self.rndc("flush")
        await asyncio.gather(*(self.rndc("flushtree", name) for name in names))

    # ------------------------------------------------------------------ status, stop

    def status(self) -> tuple[str, str]:
        """("off" | "running" | "degraded" | "dead", text)."""
        proc = self.process
        if not proc.wanted:
            return "off", f"named {self.name}: not started"
        if not proc.running():
            return "dead", f"named {self.name} {proc.death()}; restarts {proc.restarts}"
        zones = f", {len(self.serials)} zones" if self.serials else ""
        text = f"named {self.name}: pid {proc.pid}{zones}, restarts {proc.restarts}"
        if self.last_refusal:
            return "degraded", f"{text}; serving the last good configuration, refused: {self.last_refusal}"
        return "running", text

    async def stop(self) -> None:
        async with self._lock:
            await self.process.stop()
