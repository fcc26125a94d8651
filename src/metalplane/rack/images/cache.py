"""The rack's image cache: content-addressed files, verified by sha256, kept on disk.

Layout of `cache_dir`:

    files/<sha256>          complete files whose digest matched (read-only, 0444)
    partial/<sha256>.part   downloads in progress (kept across failures: resumed with Range)
    index.json              kept images (name/arch/subarch/version -> files), the last
                            manifest and region URLs, and per file its size, the stat
                            fingerprint taken when it was last hashed and when
    tree -> tree.<n>/       symlinks images/<name>/<arch>/<subarch>/<version>/<filetype> and
                            images/by-sha256/<sha> into files/, for nginx in front (see
                            metalplane.rack.http.nginx); only verified files appear there

Rules:

- A file enters files/ only by an atomic rename of a partial download whose size and
  sha256 matched the manifest (hashed while streaming; fsync before and after the
  rename). A partial or wrong download is never in files/, so never served.
- Downloads resume a partial file with `Range: bytes=N-` and `If-Range: "<sha256>"`
  (the region's ETag); a 200 answer starts over. A failed attempt moves on to the next
  region URL; a digest mismatch discards the partial file. `concurrency` downloads at once.
- `verify(sha)` re-hashes a cached file. The cache also keeps each file's stat
  fingerprint (dev, inode, size, mtime, ctime) from its last hash: `open()` (what the
  HTTP server calls per request) compares it with an fstat of the opened file, and a
  difference (someone wrote to the file, replaced it, or touched it) makes the file
  unservable until `verify` has re-hashed it. A file that fails verification is deleted,
  listeners are told (the HTTP server drops transfers of it in flight, the service
  schedules a sync that fetches it again). Bit rot that leaves the inode untouched is
  found by the scheduled `verify_all` only.
- Retention: every image of the manifest plus older versions of the same image that are
  fully cached, up to `keep_versions` complete versions (default 2: the current one and
  the one before), see `plan.plan_retention`. Files no kept image needs are deleted after
  each sync; images that left the manifest are dropped then.
- After a restart the index is loaded: files whose fingerprint still matches are served
  at once (with or without any region); others, and files found in files/ but not in the
  index (a crash between rename and index write), are hashed first (`verify_pending`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from metalplane.rack.images.manifest import (
    SHA256_RE,
    ImageSpec,
    Manifest,
    ManifestError,
    images_from_json,
    parse_manifest,
)
from metalplane.rack.images.plan import (
    DEFAULT_KEEP_VERSIONS,
    Fetch,
    file_url,
    fit_space,
    image_complete,
    latest_complete,
    plan_fetch,
    plan_gc,
    plan_retention,
    resume_offset,
    url_order,
)

log = logging.getLogger("metalplane.rack.images")

INDEX_FORMAT = 1
WRITE_CHUNK = 1 << 20  # downloads are written and hashed in 1 MiB batches, off the event loop
HASH_CHUNK = 1 << 20

Fingerprint = tuple[int, int, int, int, int]


def fingerprint(st: os.stat_result) -> Fingerprint:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass
class CachedFile:
    sha256: str
    size: int
    fingerprint: Fingerprint
    verified_at: float  # wall clock of the last full hash
    mtime: float  # for Last-Modified

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "fingerprint": list(self.fingerprint), "verified_at": self.verified_at}


@dataclass
class SyncResult:
    fetched: list[str] = field(default_factory=list)  # sha256s downloaded and installed
    failed: dict[str, str] = field(default_factory=dict)  # sha256 -> last error
    deleted: list[str] = field(default_factory=list)  # files garbage-collected
    problems: list[str] = field(default_factory=list)  # manifest entries refused
    bytes_downloaded: int = 0
    seconds: float = 0.0
    finished_at: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class Corruption:
    sha256: str
    reason: str
    at: float


class DownloadError(Exception):
    pass


class ChecksumMismatch(DownloadError):
    def __init__(self, message: str, resumed: bool = False):
        super().__init__(message)
        self.resumed = resumed  # the bad bytes may be an old partial's: not the region's fault


class _Oversize(DownloadError):
    pass


def hash_file(path: str | os.PathLike, limit: int | None = None) -> tuple[str, int, os.stat_result]:
    """(sha256 hex, bytes hashed, fstat taken before hashing) of a file (or its first `limit` bytes)."""
    h = hashlib.sha256()
    total = 0
    with open(path, "rb", buffering=0) as f:
        st = os.fstat(f.fileno())
        buf = bytearray(HASH_CHUNK)
        view = memoryview(buf)
        while limit is None or total < limit:
            want = HASH_CHUNK if limit is None else min(HASH_CHUNK, limit - total)
            n = f.readinto(view[:want])
            if not n:
                break
            h.update(view[:n])
            total += n
    return h.hexdigest(), total, st


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ImageCache:
    """See the module docstring. Use from one event loop; `load()` before anything else."""

    def __init__(
        self,
        cache_dir: str | os.PathLike,
        *,
        keep_versions: int = DEFAULT_KEEP_VERSIONS,
        concurrency: int = 4,
        attempts: int | None = None,
        retry_delay: float = 0.5,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        symlink_tree: bool = True,
        headers: dict[str, str] | None = None,
        min_free_bytes: int = 256 * 1024 * 1024,
    ):
        self.dir = Path(cache_dir)
        self.files_dir = self.dir / "files"
        self.partial_dir = self.dir / "partial"
        self.index_path = self.dir / "index.json"
        self.keep_versions = keep_versions
        self.concurrency = concurrency
        self.attempts = attempts  # per file per sync; default max(3, 2 x regions)
        self.retry_delay = retry_delay
        self.timeout = timeout
        self.transport = transport
        self.symlink_tree = symlink_tree
        self.headers = dict(headers or {})  # sent to the region with every download (e.g. auth)
        self.min_free_bytes = min_free_bytes  # left free on the cache's file system by downloads
        self.listeners: list[Callable[[str, str], None]] = []  # (sha256, reason) when a file is dropped

        self._files: dict[str, CachedFile] = {}  # complete and trusted: servable
        self._unverified: dict[str, int | None] = {}  # on disk, hash first (expected size if known)
        self._images: list[ImageSpec] = []
        self._paths: dict[tuple[str, str, str, str, str], str] = {}
        self.manifest: Manifest | None = None
        self.base_urls: list[str] = []
        self.last_sync: SyncResult | None = None
        self.failed: dict[str, str] = {}  # wanted files the last sync could not fetch
        self.problems: list[str] = []  # manifest entries refused by the last sync
        self.corruptions: list[Corruption] = []  # recent, newest last
        self.dropped = 0  # files dropped as corrupt or missing since start
        self.syncing = False
        self._sync_lock = asyncio.Lock()
        self._save_lock = asyncio.Lock()
        self._verify_lock = asyncio.Lock()
        self._verifying: dict[str, asyncio.Task] = {}
        self._client: httpx.AsyncClient | None = None
        self._loaded = False

    # ------------------------------------------------------------------ state

    def load(self) -> None:
        """Read the index and check the files against it (stat only; no hashing)."""
        for d in (self.dir, self.files_dir, self.partial_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)
        self.files_dir.chmod(0o755)
        data: dict[str, Any] = {}
        if self.index_path.exists():
            try:
                data = json.loads(self.index_path.read_text())
                if data.get("format") != INDEX_FORMAT:
                    log.warning(
                        "image cache index %s has format %r; starting from the files",
                        self.index_path,
                        data.get("format"),
                    )
                    data = {}
            except (OSError, ValueError) as exc:
                log.error(
                    "image cache index %s unreadable (%s); every cached file will be re-hashed", self.index_path, exc
                )
                data = {}
        self._images = images_from_json(data.get("images", []))
        if data.get("manifest") is not None:
            with contextlib.suppress(ManifestError):
                self.manifest, _ = parse_manifest(data["manifest"])
        self.base_urls = [u for u in data.get("base_urls", []) if isinstance(u, str)]
        recorded = data.get("files", {}) if isinstance(data.get("files"), dict) else {}
        self._files.clear()
        self._unverified.clear()
        for name in os.listdir(self.files_dir):
            if not SHA256_RE.fullmatch(name):
                log.warning("image cache: ignoring stray %s", self.files_dir / name)
                continue
            try:
                st = os.stat(self.files_dir / name)
            except FileNotFoundError:
                continue
            info = recorded.get(name)
            size = info.get("size") if isinstance(info, dict) else None
            fp = tuple(info.get("fingerprint", ())) if isinstance(info, dict) else ()
            if isinstance(info, dict) and fp == fingerprint(st) and size == st.st_size:
                self._files[name] = CachedFile(name, size, fp, float(info.get("verified_at", 0)), st.st_mtime)
            else:
                self._unverified[name] = size if isinstance(size, int) else None
        missing = [sha for sha in recorded if sha not in self._files and sha not in self._unverified]
        if missing:
            log.warning("image cache: %d indexed file(s) missing from disk: %s", len(missing), ", ".join(missing))
        self._rebuild_paths()
        self._loaded = True
        if self.symlink_tree:
            self._rebuild_tree(frozenset(self._files), list(self._images))
        log.info(
            "image cache %s: %d file(s) ready, %d to re-hash, %d image(s) kept",
            self.dir,
            len(self._files),
            len(self._unverified),
            len(self._images),
        )

    def _index_data(self) -> dict[str, Any]:
        return {
            "format": INDEX_FORMAT,
            "manifest": self.manifest.to_json() if self.manifest is not None else None,
            "base_urls": self.base_urls,
            "images": [i.to_json() for i in self._images],
            "files": {sha: f.to_json() for sha, f in sorted(self._files.items())},
        }

    async def _save(self) -> None:
        async with self._save_lock:
            data = json.dumps(self._index_data(), indent=1, sort_keys=True).encode()
            await asyncio.to_thread(self._write_index, data)
            if self.symlink_tree:  # (snapshots: the thread must not read what the loop changes)
                await asyncio.to_thread(self._rebuild_tree, frozenset(self._files), list(self._images))

    def _write_index(self, data: bytes) -> None:
        tmp = self.index_path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.index_path)
        _fsync_dir(self.dir)

    def _rebuild_paths(self) -> None:
        paths: dict[tuple[str, str, str, str, str], str] = {}
        for image in self._images:
            for spec in image.files:
                paths.setdefault((*image.ident, spec.filetype), spec.sha256)
        self._paths = paths

    def _rebuild_tree(self, complete: frozenset[str], images: list[ImageSpec]) -> None:
        """tree -> tree.<ns>/images/..., swapped atomically; old generations removed."""
        gen = f"tree.{time.time_ns()}"
        root = self.dir / gen / "images"
        by_sha = root / "by-sha256"
        by_sha.mkdir(parents=True)
        for sha in complete:
            os.symlink(f"../../../files/{sha}", by_sha / sha)
        for image in images:
            for spec in image.files:
                if spec.sha256 not in complete:
                    continue
                parts = (*image.name.split("/"), image.architecture, image.subarch, image.version)
                folder = root.joinpath(*parts)
                folder.mkdir(parents=True, exist_ok=True)
                up = "../" * (len(parts) + 2)
                link = folder / spec.filetype
                if not link.is_symlink():
                    os.symlink(f"{up}files/{spec.sha256}", link)
        for dirpath, dirnames, _ in os.walk(self.dir / gen):
            for d in dirnames:
                os.chmod(os.path.join(dirpath, d), 0o755)
        os.chmod(self.dir / gen, 0o755)
        tmp_link = self.dir / f"{gen}.link"
        os.symlink(gen, tmp_link)
        os.replace(tmp_link, self.dir / "tree")
        for old in self.dir.iterdir():
            if old.name.startswith("tree.") and old.name != gen and not old.name.endswith(".link"):
                shutil.rmtree(old, ignore_errors=True)

    # ------------------------------------------------------------------ lookups (serving)

    @property
    def images(self) -> list[ImageSpec]:
        return list(self._images)

    def complete(self) -> frozenset[str]:
        return frozenset(self._files)

    def entry(self, sha: str) -> CachedFile | None:
        return self._files.get(sha)

    def resolve(self, name: str, arch: str, subarch: str, version: str, filetype: str) -> str | None:
        """sha256 of an image file the rack keeps (cached or not yet), else None.
        `version` "latest" means the newest version whose files are all cached."""
        if version == "latest":
            image = latest_complete(self._images, (name, arch, subarch), self.complete())
            if image is None:
                return None
            spec = image.file(filetype)
            return spec.sha256 if spec else None
        return self._paths.get((name, arch, subarch, version, filetype))

    def known(self, sha: str) -> bool:
        """The rack keeps or wants this file (servable or not yet)."""
        if sha in self._files or sha in self._unverified:
            return True
        return any(sha == s for s in self._paths.values())

    def path_of(self, sha: str) -> Path:
        return self.files_dir / sha

    def open(self, sha: str) -> tuple[int, os.stat_result, CachedFile] | None:
        """An open fd of a verified cached file, with its fstat, or None (not servable).

        The fstat must match the fingerprint of the last hash; else the file is suspect:
        unservable until `verify` has hashed it again (started here, in the background)."""
        entry = self._files.get(sha)
        if entry is None:
            return None
        try:
            fd = os.open(self.files_dir / sha, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            self._drop(sha, "missing from disk")
            return None
        st = os.fstat(fd)
        if fingerprint(st) != entry.fingerprint:
            os.close(fd)
            log.warning("cached file %s changed on disk since it was hashed; not served until re-verified", sha)
            self.suspect(sha)
            return None
        return fd, st, entry

    # ------------------------------------------------------------------ verification

    def suspect(self, sha: str) -> asyncio.Task | None:
        """Stop serving `sha` and re-hash it in the background (deduplicated)."""
        entry = self._files.pop(sha, None)
        if entry is not None:
            self._unverified[sha] = entry.size
        if sha not in self._unverified:
            return None
        task = self._verifying.get(sha)
        if task is None or task.done():
            task = asyncio.ensure_future(self.verify(sha))
            self._verifying[sha] = task

            def forget(done: asyncio.Future[Any], sha: str = sha) -> None:
                if self._verifying.get(sha) is done:
                    self._verifying.pop(sha, None)

            task.add_done_callback(forget)
        return task

    async def verify(self, sha: str) -> bool:
        """Re-hash one cached file. True: it is good (and servable). False: it was corrupt or
        missing, and is gone (listeners told; the next sync fetches it again)."""
        async with self._verify_lock:
            entry = self._files.get(sha)
            if entry is None and sha not in self._unverified:
                return False
            expected = entry.size if entry is not None else self._unverified.get(sha)
            path = self.files_dir / sha
            try:
                digest, size, st = await asyncio.to_thread(hash_file, path)
            except FileNotFoundError:
                self._drop(sha, "missing from disk")
                await self._save()
                return False
            if digest != sha or (expected is not None and size != expected):
                reason = f"sha256 mismatch (got {digest})" if digest != sha else f"size {size}, expected {expected}"
                self._drop(sha, reason)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                await self._save()
                return False
            if sha not in self._files and sha not in self._unverified:
                return False  # garbage-collected while we hashed: do not bring it back
            fp = fingerprint(st)
            changed = entry is None or entry.fingerprint != fp
            self._unverified.pop(sha, None)
            self._files[sha] = CachedFile(sha, size, fp, time.time(), st.st_mtime)
            if changed:
                await self._save()
            return True

    async def verify_pending(self) -> None:
        """Hash every file that is on disk but not trusted yet (after load or suspicion)."""
        for sha in list(self._unverified):
            task = self.suspect(sha)
            if task is not None:
                await asyncio.shield(task)

    async def verify_all(self) -> tuple[int, list[str]]:
        """Re-hash every cached file, one at a time: (files good, sha256s found bad)."""
        good, bad = 0, []
        for sha in sorted(set(self._files) | set(self._unverified)):
            dropped = self.dropped
            if await self.verify(sha):
                good += 1
            elif self.dropped != dropped:
                bad.append(sha)
        return good, bad

    def _drop(self, sha: str, reason: str) -> None:
        self._files.pop(sha, None)
        self._unverified.pop(sha, None)
        log.error("cached image file %s dropped: %s; it will be fetched again", sha, reason)
        self.dropped += 1
        self.corruptions = (self.corruptions + [Corruption(sha, reason, time.time())])[-20:]
        for listener in list(self.listeners):
            try:
                listener(sha, reason)
            except Exception:  # a listener must not break the cache
                log.exception("image cache listener failed")

    # ------------------------------------------------------------------ sync

    def _partials(self) -> dict[str, int]:
        out = {}
        for name in os.listdir(self.partial_dir):
            sha = name.removesuffix(".part")
            if name.endswith(".part") and SHA256_RE.fullmatch(sha):
                with contextlib.suppress(FileNotFoundError):
                    out[sha] = os.stat(self.partial_dir / name).st_size
            else:
                with contextlib.suppress(OSError):
                    os.unlink(self.partial_dir / name)
        return out

    def missing(self) -> list[str]:
        """Files of the current manifest that are not servable."""
        if self.manifest is None:
            return []
        return sorted(sha for sha in self.manifest.wanted() if sha not in self._files)

    async def sync(
        self, manifest: dict[str, Any] | Manifest | None = None, base_urls: Iterable[str] | None = None
    ) -> SyncResult:
        """Make the cache hold `manifest` (default: the last one) from `base_urls` (default:
        the last ones). Raises ManifestError for a manifest of the wrong shape (nothing changes)."""
        assert self._loaded, "load() first"
        problems: list[str] = []
        if isinstance(manifest, dict):
            manifest, problems = parse_manifest(manifest)
        async with self._sync_lock:
            self.syncing = True
            try:
                return await self._sync(manifest, base_urls, problems)
            finally:
                self.syncing = False

    async def _sync(
        self, manifest: Manifest | None, base_urls: Iterable[str] | None, problems: list[str]
    ) -> SyncResult:
        started = time.monotonic()
        result = SyncResult(problems=problems)
        if manifest is not None:
            self.manifest = manifest
            self.problems = problems
        if base_urls is not None:
            self.base_urls = list(dict.fromkeys(base_urls))
        if self.manifest is None:
            result.problems.append("no manifest received yet")
            return result
        for problem in problems:
            log.warning("image manifest: %s", problem)
        await self.verify_pending()
        manifest = self.manifest
        wanted = manifest.wanted()
        self._images = plan_retention(manifest, self._images, self._files, self.keep_versions)
        self._rebuild_paths()
        await self._save()
        fetches = plan_fetch(wanted, self._files, self._partials())
        free = shutil.disk_usage(self.partial_dir).free
        fetches, no_room = fit_space(fetches, free, self.min_free_bytes)
        for fetch in no_room:
            result.failed[fetch.sha256] = (
                f"not enough disk space in {self.dir}: {fetch.size - fetch.resume_from} "
                f"bytes needed, {max(0, free - self.min_free_bytes)} available"
            )
            log.error("image file %s not fetched: %s", fetch.sha256, result.failed[fetch.sha256])
        if fetches:
            log.info(
                "image cache: fetching %d file(s), %d bytes, from %s",
                len(fetches),
                sum(f.size - f.resume_from for f in fetches),
                ", ".join(self.base_urls) or "no region",
            )
            sem = asyncio.Semaphore(max(1, self.concurrency))
            outcomes = await asyncio.gather(*(self._fetch(f, sem) for f in fetches))
            for fetch, (ok, detail, nbytes) in zip(fetches, outcomes):
                result.bytes_downloaded += nbytes
                if ok:
                    result.fetched.append(fetch.sha256)
                else:
                    result.failed[fetch.sha256] = detail
        self._images = plan_retention(manifest, self._images, self._files, self.keep_versions)
        self._rebuild_paths()
        gc = plan_gc(self._images, set(self._files) | set(self._unverified), self._partials(), wanted)
        for sha in sorted(gc.delete_files):
            self._files.pop(sha, None)
            self._unverified.pop(sha, None)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.files_dir / sha)
            result.deleted.append(sha)
        for sha in gc.delete_partials:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.partial_dir / f"{sha}.part")
        await self._save()
        self.failed = dict(result.failed)
        result.seconds = time.monotonic() - started
        result.finished_at = time.time()
        self.last_sync = result
        level = logging.WARNING if result.failed else logging.INFO
        log.log(
            level,
            "image sync: %d fetched (%d bytes), %d failed, %d deleted in %.1f s",
            len(result.fetched),
            result.bytes_downloaded,
            len(result.failed),
            len(result.deleted),
            result.seconds,
        )
        return result

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self.transport,
                follow_redirects=True,
                headers=self.headers,
                timeout=httpx.Timeout(self.timeout, connect=min(5.0, self.timeout)),
                limits=httpx.Limits(max_connections=max(4, self.concurrency * 2)),
            )
        return self._client

    async def close(self) -> None:
        for task in list(self._verifying.values()):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _fetch(self, fetch: Fetch, sem: asyncio.Semaphore) -> tuple[bool, str, int]:
        """(installed, last error, bytes received) for one file, trying the regions in turn."""
        async with sem:
            urls = url_order(self.base_urls, fetch.sha256)
            if not urls:
                return False, "no region URL to fetch from", 0
            attempts = self.attempts or max(3, 2 * len(urls))
            mismatches = 0
            received = 0
            error = ""
            for attempt in range(attempts):
                if attempt:
                    await asyncio.sleep(min(self.retry_delay * 2 ** (attempt - 1), 5.0))
                try:
                    url = file_url(urls[attempt % len(urls)], fetch.path)
                except ValueError as exc:
                    error = str(exc)
                    continue
                counter = [0, 0]  # bytes received, restarted from 0
                try:
                    await self._download(url, fetch, counter)
                    received += counter[0]
                    await self._install(fetch)
                    return True, "", received
                except ChecksumMismatch as exc:
                    received += counter[0]
                    mismatches += 0 if exc.resumed else 1
                    error = f"{url}: {exc}"
                    log.error(
                        "image file %s from %s refused: %s%s",
                        fetch.sha256,
                        url,
                        exc,
                        " (resumed from a partial download: starting over)" if exc.resumed else "",
                    )
                    if mismatches >= len(urls):
                        break  # every region gave the wrong bytes: wait for a new manifest/sync
                except (httpx.HTTPError, OSError, DownloadError) as exc:
                    received += counter[0]
                    error = f"{url}: {type(exc).__name__}: {exc}" if str(exc) else f"{url}: {type(exc).__name__}"
                    log.warning(
                        "image file %s from %s failed (attempt %d of %d): %s",
                        fetch.sha256,
                        url,
                        attempt + 1,
                        attempts,
                        error,
                    )
            return False, error, received

    async def _download(self, url: str, fetch: Fetch, counter: list[int]) -> None:
        """Download into partial/<sha>.part, resuming what is there; hash while streaming.
        Returns with the partial file complete and its digest checked."""
        sha, size = fetch.sha256, fetch.size
        part = self.partial_dir / f"{sha}.part"
        have = part.stat().st_size if part.exists() else 0
        offset = resume_offset(have, size)
        hasher = hashlib.sha256()
        if offset:
            digest_prefix = await asyncio.to_thread(self._hash_prefix, part, offset, hasher)
            if digest_prefix != offset:  # shrank under us
                offset, hasher = 0, hashlib.sha256()
        resumed = offset > 0
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            os.ftruncate(fd, offset)
            if offset < size:
                start = offset
                offset, hasher = await self._stream(url, fetch, fd, offset, hasher, counter)
                resumed = start > 0 and not counter[1]
            if offset != size:
                raise DownloadError(f"short body: got {offset} of {size} bytes")
        finally:
            os.close(fd)
        digest = hasher.hexdigest()
        if digest != sha:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
            raise ChecksumMismatch(f"sha256 of the {size} bytes received is {digest}, expected {sha}", resumed)

    @staticmethod
    def _hash_prefix(path: Path, length: int, hasher: Any) -> int:
        done = 0
        with open(path, "rb", buffering=0) as f:
            while done < length:
                chunk = f.read(min(HASH_CHUNK, length - done))
                if not chunk:
                    break
                hasher.update(chunk)
                done += len(chunk)
        return done

    @staticmethod
    def _write_hash(fd: int, hasher: Any, data: bytes, offset: int) -> None:
        view = memoryview(data)
        while view:
            n = os.pwrite(fd, view, offset)
            offset += n
            view = view[n:]
        hasher.update(data)

    async def _stream(
        self, url: str, fetch: Fetch, fd: int, offset: int, hasher: Any, counter: list[int]
    ) -> tuple[int, Any]:
        """Append the region's answer to the partial file: (bytes now in it, hasher of them)."""
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            headers["If-Range"] = f'"{fetch.sha256}"'
        async with self._http().stream("GET", url, headers=headers) as resp:
            if resp.status_code == 206 and offset:
                start, total = _content_range(resp.headers.get("content-range", ""))
                if start != offset or total not in (None, fetch.size):
                    raise DownloadError(
                        f"bad Content-Range {resp.headers.get('content-range')!r} for a resume at {offset}"
                    )
            elif resp.status_code == 200:
                if offset:
                    log.info("region sent the whole of %s instead of a range; starting over", fetch.sha256)
                    counter[1] = 1  # restarted: no longer a resume
                    offset = 0
                    hasher = hashlib.sha256()
                    os.ftruncate(fd, 0)
            else:
                raise DownloadError(f"HTTP {resp.status_code} {resp.reason_phrase}")
            encoding = resp.headers.get("content-encoding", "identity").lower()
            if encoding not in ("", "identity"):
                raise DownloadError(f"unexpected Content-Encoding {encoding}")
            pending: list[bytes] = []
            pending_len = 0
            try:
                async for chunk in resp.aiter_raw():
                    counter[0] += len(chunk)
                    if offset + pending_len + len(chunk) > fetch.size:
                        raise _Oversize(f"more than the manifest's {fetch.size} bytes")
                    pending.append(chunk)
                    pending_len += len(chunk)
                    if pending_len >= WRITE_CHUNK:
                        data = b"".join(pending)
                        pending.clear()
                        pending_len = 0
                        await asyncio.to_thread(self._write_hash, fd, hasher, data, offset)
                        offset += len(data)
            except _Oversize:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.partial_dir / f"{fetch.sha256}.part")
                raise
            finally:
                # Whatever arrived in order is a prefix worth keeping for the next attempt.
                if pending:
                    data = b"".join(pending)
                    await asyncio.to_thread(self._write_hash, fd, hasher, data, offset)
                    offset += len(data)
        return offset, hasher

    async def _install(self, fetch: Fetch) -> None:
        part = self.partial_dir / f"{fetch.sha256}.part"
        dest = self.files_dir / fetch.sha256

        def work() -> os.stat_result:
            fd = os.open(part, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.chmod(part, 0o444)
            os.rename(part, dest)
            _fsync_dir(self.files_dir)
            with contextlib.suppress(OSError):
                _fsync_dir(self.partial_dir)
            return os.stat(dest)

        st = await asyncio.to_thread(work)
        self._unverified.pop(fetch.sha256, None)
        self._files[fetch.sha256] = CachedFile(fetch.sha256, fetch.size, fingerprint(st), time.time(), st.st_mtime)
        await self._save()
        log.info("image file %s (%d bytes) cached", fetch.sha256, fetch.size)

    # ------------------------------------------------------------------ reporting

    def summary(self) -> dict[str, Any]:
        complete = self.complete()
        wanted = self.manifest.wanted() if self.manifest is not None else {}
        return {
            "images": len(self._images),
            "images_servable": sum(1 for i in self._images if image_complete(i, complete)),
            "files": len(self._files),
            "bytes": sum(f.size for f in self._files.values()),
            "wanted": len(wanted),
            "missing": [sha for sha in wanted if sha not in complete],
            "failed": dict(self.failed),
            "unverified": len(self._unverified),
            "corruptions": [(c.sha256, c.reason, c.at) for c in self.corruptions],
            "last_sync": self.last_sync,
            "syncing": self.syncing,
        }


def _content_range(value: str) -> tuple[int | None, int | None]:
    """(start, total) of "bytes START-END/TOTAL" ("*" total -> None); (None, None) if malformed."""
    try:
        unit, _, rest = value.strip().partition(" ")
        span, _, total = rest.partition("/")
        if unit.lower() != "bytes":
            return None, None
        start = int(span.split("-", 1)[0])
        return start, None if total.strip() == "*" else int(total)
    except ValueError:
        return None, None


__all__ = ["CachedFile", "ChecksumMismatch", "Corruption", "DownloadError", "ImageCache", "SyncResult", "hash_file"]
