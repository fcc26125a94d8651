"""`RackHttpService`: the rack daemon's "http" service (image cache + boot HTTP server).

    http = RackHttpService(data_dir / "images", host=config.bind_address, port=config.http_port)
    await http.start()                     # serves the cache on disk at once, region or not
    http.add_dynamic("/ipxe/", handler)    # per-machine boot files (someone else's)
    await http.apply_manifest(manifest, region_base_urls(config.maas_url))
    status, info = http.status()           # for ServiceBoard.set("http", status, info)
    await http.stop()

Background work owned here (under the rack's `TaskSupervisor` when one is given, as
"http-verify" and "http-resync"): re-hash files that changed or were never hashed after a
restart (at start), re-hash everything every `verify_interval` seconds, and sync again
(with the last manifest and region URLs) when a file was found corrupt or missing or a
sync left files unfetched, with backoff up to `max_resync_delay`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import Any

from metalplane.rack.http.server import HOLD_MAX, TRANSFERS_MAX, BootHttpServer, Handler
from metalplane.rack.images.cache import ImageCache, SyncResult
from metalplane.rack.images.plan import DEFAULT_KEEP_VERSIONS
from metalplane.task_supervisor import TaskSupervisor

log = logging.getLogger("metalplane.rack.http")

DEFAULT_PORT = 5248
VERIFY_INTERVAL = 6 * 3600.0


class RackHttpService:
    def __init__(
        self,
        cache_dir: str | os.PathLike,
        *,
        host: str = "0.0.0.0",
        port: int = DEFAULT_PORT,
        keep_versions: int = DEFAULT_KEEP_VERSIONS,
        verify_interval: float = VERIFY_INTERVAL,
        resync_delay: float = 5.0,
        max_resync_delay: float = 300.0,
        supervisor: TaskSupervisor | None = None,
        transfers_max: int = TRANSFERS_MAX,
        hold_max: float = HOLD_MAX,
        **cache_options: Any,
    ):
        self.host = host
        self.port = port
        self.verify_interval = verify_interval
        self.resync_delay = resync_delay
        self.max_resync_delay = max_resync_delay
        self.supervisor = supervisor
        self.cache = ImageCache(cache_dir, keep_versions=keep_versions, **cache_options)
        self.server = BootHttpServer(self.cache, transfers_max=transfers_max, hold_max=hold_max)
        self.error = ""
        self.started = False
        self._tasks: list[asyncio.Task] = []
        self._resync_wanted = asyncio.Event()
        self._delay = resync_delay
        self.cache.listeners.append(lambda sha, reason: self.request_sync())

    def add_dynamic(self, prefix: str, handler: Handler) -> None:
        """Dynamic boot files (e.g. an iPXE script per MAC): see `BootHttpServer.add_dynamic`."""
        self.server.add_dynamic(prefix, handler)

    @property
    def address(self) -> tuple[str, int]:
        return self.server.address

    async def start(self) -> None:
        """Load the cache and listen. Raises OSError when the port cannot be bound
        (status() then says "dead"); the cache is loaded either way, and calling
        start() again tries to listen again."""
        if not self.started:
            self.cache.load()
            self.started = True
            if self.supervisor is not None:
                for name, run in (("http-verify", self._verifier), ("http-resync", self._resyncer)):
                    if name not in self.supervisor.tasks:
                        self.supervisor.start(name, run)
            else:
                self._tasks = [asyncio.ensure_future(self._verifier()), asyncio.ensure_future(self._resyncer())]
        if self.server.listening:
            return
        try:
            await self.server.start(self.host, self.port)
            self.error = ""
        except OSError as exc:
            error = f"cannot listen on {self.host} port {self.port}: {exc}"
            if error != self.error:  # retried by the rack's supervisor: say it once
                log.error("HTTP boot server: %s", error)
            self.error = error
            raise

    async def stop(self) -> None:
        self.server.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self.cache.close()
        self.started = False

    async def apply_manifest(self, manifest: dict[str, Any], base_urls: list[str]) -> SyncResult:
        """Sync the cache to the region's manifest (downloads, verification, GC). Returns when
        done; files that failed are retried in the background. Raises ManifestError for a
        manifest of the wrong shape (the cache keeps what it has)."""
        result = await self.cache.sync(manifest, base_urls)
        if result.failed:
            self.request_sync()
        else:
            self._delay = self.resync_delay  # a region answered: retries start quick again
        return result

    def request_sync(self) -> None:
        """Sync again soon with the last manifest (after corruption, or failed downloads)."""
        self._resync_wanted.set()

    async def _resyncer(self) -> None:
        self._delay = self.resync_delay
        while True:
            await self._resync_wanted.wait()
            await asyncio.sleep(self._delay)  # let bursts of triggers collapse; back off on failure
            self._resync_wanted.clear()
            if self.cache.manifest is None or not self.cache.base_urls:
                continue
            try:
                result = await self.cache.sync()
            except Exception:  # keep retrying; the cache keeps serving
                log.exception("image re-sync failed")
                result = None
            if result is None or result.failed or self.cache.missing():
                self._delay = min(self._delay * 2, self.max_resync_delay)
                self._resync_wanted.set()
            else:
                self._delay = self.resync_delay

    async def _verifier(self) -> None:
        await self.cache.verify_pending()
        while True:
            await asyncio.sleep(self.verify_interval)
            started = time.monotonic()
            good, bad = await self.cache.verify_all()
            log.info("image cache verified: %d good, %d bad in %.1f s", good, len(bad), time.monotonic() - started)

    def status(self) -> tuple[str, str]:
        """(status, info) for the rack's "http" service: off | running | degraded | dead."""
        if self.error:
            return "dead", self.error
        if not self.started or not self.server.listening:
            return "off", "HTTP boot server not running"
        s = self.cache.summary()
        where = f"{self.host} port {self.address[1]}"
        notes = []
        limited = self.server.stats.refused + self.server.stats.evicted
        if limited:
            notes.append(f"{limited} connection(s) refused or closed at the limits since start")
        admission = self.server.admission
        if admission.held or admission.waiting:
            notes.append(f"image transfers: {admission.summary()}, {self.server.stats.held_503} answered 503 to retry")
        if s["unverified"]:
            notes.append(f"verifying {s['unverified']} file(s)")
        recent = [c for c in s["corruptions"] if time.time() - c[2] < 3600]
        if recent:
            notes.append(f"{len(recent)} corrupt or missing file(s) dropped in the last hour (re-fetched)")
        last = s["last_sync"]
        if self.cache.manifest is None:
            return "running", "; ".join(
                [f"no image manifest from a region yet; serving {s['files']} cached file(s) on {where}", *notes]
            )
        missing = s["missing"]
        head = (
            f"serving {s['images_servable']} of {s['images']} image(s), {s['files']} file(s), "
            f"{s['bytes'] / 1e6:.0f} MB on {where}"
        )
        if missing:
            failed = s["failed"]
            if failed:
                first = next(iter(failed.values()))
                notes.insert(0, f"{len(missing)} of {s['wanted']} file(s) not cached; last error: {first}")
                return "degraded", "; ".join([head, *notes])
            notes.insert(0, f"syncing: {len(missing)} of {s['wanted']} file(s) to fetch")
        elif last is not None and last.failed:
            notes.append("last sync failed; serving the cache")
        return "running", "; ".join([head, *notes])
