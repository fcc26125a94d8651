"""Importing boot images from a simplestreams mirror: a directory on this region or an HTTP URL.

An import is a row in boot_resource_imports plus an asyncio task in the worker
that was asked. The task beats a heartbeat into its row every couple of
seconds (with its progress), so every worker of every region answers
`is_importing` from the database; when a worker dies mid-import its heartbeat
stops, the job stops counting as running, and the next import marks it failed
and resumes each partly stored file from where it stopped (its chunks are
committed as they arrive, sha256 is re-fed from them). Files are streamed in
1 MiB pieces, hashed on the way, and marked complete only when the sha256 and
size match (boot_store). One import runs at a time, cluster-wide.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from sqlalchemy import exists, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from metalplane.images import simplestreams as ss
from metalplane.region.db.locks import Lock, xact_lock
from metalplane.region.db.tables import boot_resource_imports
from metalplane.region.db.transaction import Work, after_commit
from metalplane.region.errors import Conflict, Invalid, RegionError
from metalplane.region.services import boot_resources, boot_sources, boot_store
from metalplane.region.services.rows import first_row

log = logging.getLogger(__name__)
jobs = boot_resource_imports

HEARTBEAT_SECONDS = 2.0
STALE_SECONDS = 15  # a running job whose heartbeat is older than this has lost its worker
MAX_JSON_BYTES = 16 << 20
_TASKS: set[asyncio.Task] = set()  # keep running imports referenced


# -- sources ------------------------------------------------------------------------------


class Source:
    description = ""

    async def read_json(self, path: str) -> Any:
        raise NotImplementedError

    def stream(self, path: str, offset: int) -> contextlib.AbstractAsyncContextManager:
        """Yields (start, chunks): start is `offset` when the source could skip to it, else 0."""
        raise NotImplementedError

    async def close(self) -> None:
        pass


def _json(where: str, data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ss.StreamError(f"{where}: not valid JSON ({exc})") from None


class DirectorySource(Source):
    def __init__(self, root: Path):
        self.root = root.resolve()
        self.description = str(self.root)

    def resolve(self, path: str) -> Path:
        full = (self.root / ss.safe_relative_path(path)).resolve()
        if self.root not in full.parents:
            raise ss.StreamError(f"{path}: leaves the mirror directory {self.root}")
        return full

    async def read_json(self, path: str) -> Any:
        full = self.resolve(path)

        def read() -> bytes:
            with open(full, "rb") as f:
                data = f.read(MAX_JSON_BYTES + 1)
            if len(data) > MAX_JSON_BYTES:
                raise ss.StreamError(f"{full}: larger than {MAX_JSON_BYTES} bytes")
            return data

        try:
            return _json(str(full), await asyncio.to_thread(read))
        except OSError as exc:
            raise ss.StreamError(f"{full}: {exc.strerror or exc}") from None

    @contextlib.asynccontextmanager
    async def stream(self, path: str, offset: int):
        full = self.resolve(path)
        try:
            f = await asyncio.to_thread(open, full, "rb")
        except OSError as exc:
            raise ss.StreamError(f"{full}: {exc.strerror or exc}") from None

        async def chunks() -> AsyncIterator[bytes]:
            while data := await asyncio.to_thread(f.read, boot_store.CHUNK_SIZE):
                yield data

        try:
            await asyncio.to_thread(f.seek, offset)
            yield offset, chunks()
        finally:
            f.close()


class HttpSource(Source):
    def __init__(self, base: str):
        self.base = base if base.endswith("/") else base + "/"
        self.description = self.base
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0), follow_redirects=True)

    def url(self, path: str) -> str:
        return urljoin(self.base, ss.safe_relative_path(path))

    async def read_json(self, path: str) -> Any:
        url = self.url(path)
        try:
            async with self.client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise ss.StreamError(f"{url}: HTTP {response.status_code} {response.reason_phrase}")
                data = bytearray()
                async for piece in response.aiter_bytes():
                    data += piece
                    if len(data) > MAX_JSON_BYTES:
                        raise ss.StreamError(f"{url}: larger than {MAX_JSON_BYTES} bytes")
        except httpx.HTTPError as exc:
            raise ss.StreamError(f"{url}: {type(exc).__name__}: {exc}") from None
        return _json(url, bytes(data))

    @contextlib.asynccontextmanager
    async def stream(self, path: str, offset: int):
        url = self.url(path)
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            async with self.client.stream("GET", url, headers=headers) as response:
                if response.status_code == 206 and offset:
                    start = offset
                elif response.status_code == 200:
                    start = 0
                else:
                    raise ss.StreamError(f"{url}: HTTP {response.status_code} {response.reason_phrase}")
                yield start, response.aiter_bytes(boot_store.CHUNK_SIZE)
        except httpx.HTTPError as exc:
            raise ss.StreamError(f"{url}: {type(exc).__name__}: {exc}") from None

    async def close(self) -> None:
        await self.client.aclose()


def open_source(spec: str) -> tuple[Source, str]:
    """(source, path of the index in it) for a mirror URL, file:// URL or absolute path.
    A spec may name the mirror root or its streams/v1/index.json."""
    spec = spec.strip()
    parts = urlsplit(spec)
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise Invalid.field("url", f"{spec!r} is not a valid URL.")
        base = spec
        if spec.endswith(".json"):
            base, found, _ = spec.rpartition("streams/v1/")
            if not found:
                raise Invalid.field("url", "A stream URL ends with streams/v1/index.json (or is its root).")
            return HttpSource(base), "streams/v1/" + spec.rpartition("streams/v1/")[2]
        return HttpSource(base), ss.INDEX_PATH
    if parts.scheme == "file":
        spec = parts.path
    elif parts.scheme:
        raise Invalid.field("url", f"Unsupported scheme {parts.scheme!r}: use http://, https:// or file://.")
    path = Path(spec)
    if not path.is_absolute():
        raise Invalid.field("path", "Give an absolute directory path on the region (or a URL).")
    if path.is_file() and path.name.endswith(".json") and path.parent.parent.name == "streams":
        return DirectorySource(path.parent.parent.parent), f"streams/{path.parent.name}/{path.name}"
    if not path.is_dir():
        raise Invalid.field("path", f"{path} is not a directory on this region.")
    return DirectorySource(path), ss.INDEX_PATH


async def load_stream(source: Source, index_path: str) -> list[ss.StreamImage]:
    index = await source.read_json(index_path)
    images: list[ss.StreamImage] = []
    for products_path in ss.product_paths(index):
        images += ss.parse_products(products_path, await source.read_json(products_path))
    if not images:
        raise ss.StreamError("the stream lists no images")
    return images


# -- jobs ---------------------------------------------------------------------------------


def _stale():
    return func.now() - text(f"interval '{STALE_SECONDS} seconds'")


async def reap_stale(conn: AsyncConnection) -> list[int]:
    """Mark jobs whose worker died as failed and free their file leases."""
    dead = [
        r.id
        for r in await conn.execute(
            update(jobs)
            .where(jobs.c.state == "running", jobs.c.heartbeat < _stale())
            .values(
                state="failed",
                updated=func.now(),
                message=func.concat(
                    "interrupted: the worker running this import stopped "
                    "(heartbeat lost); run the import again to resume. ",
                    jobs.c.message,
                ),
            )
            .returning(jobs.c.id)
        )
    ]
    for job_id in dead:
        await boot_store.release_writer(conn, writer_of(job_id))
    return dead


def writer_of(job_id: int) -> str:
    return f"import:{job_id}"


async def is_importing(conn: AsyncConnection) -> bool:
    return bool(
        (await conn.execute(select(exists().where(jobs.c.state == "running", jobs.c.heartbeat >= _stale())))).scalar()
    )


async def recent_jobs(conn: AsyncConnection, limit: int = 5) -> list[dict[str, Any]]:
    rows = await conn.execute(select(jobs).order_by(jobs.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]


async def request_stop(conn: AsyncConnection, job_id: int | None = None) -> int:
    query = update(jobs).where(jobs.c.state == "running")
    if job_id is not None:
        query = query.where(jobs.c.id == job_id)
    result = await conn.execute(query.values(stop_requested=True))
    return result.rowcount or 0


@dataclass
class Progress:
    job_id: int
    files_done: int = 0
    bytes_done: int = 0
    stop: bool = False
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ImportStatus:
    importing: bool
    jobs: list[dict[str, Any]]  # the latest first


async def status(conn: AsyncConnection) -> ImportStatus:
    return ImportStatus(await is_importing(conn), await recent_jobs(conn))


@dataclass(frozen=True)
class Origin:
    """A mirror to import from, and which of its images to take (None: all of them)."""

    source: Source
    index_path: str
    wants: Callable[[ss.StreamImage], bool] | None = None


async def _origins(work: Work, spec: str | None) -> list[Origin]:
    """The mirror `spec` names, or (no spec) every configured boot source with its selections."""
    if spec:
        return [Origin(*open_source(spec))]
    async with work.tx() as conn:
        chosen = await boot_sources.configured(conn)
    origins: list[Origin] = []
    try:
        for c in chosen:
            origins.append(Origin(*open_source(c.url), c.wants))
    except BaseException:
        for origin in origins:
            await origin.source.close()
        raise
    return origins


async def start_import(work: Work, spec: str | None, owner: str) -> dict[str, Any]:
    """Create the job and, once it is committed, start its task in this worker.
    Without `spec`, import what the boot sources' selections select. Conflict
    while another import runs."""
    origins = await _origins(work, spec)
    description = "; ".join(o.source.description for o in origins)

    async def run() -> None:
        task = asyncio.create_task(run_import(work.engine, job["id"], origins), name=f"boot-import-{job['id']}")
        _TASKS.add(task)
        task.add_done_callback(_TASKS.discard)

    try:
        async with work.tx() as conn:
            await xact_lock(conn, Lock.BOOT_IMPORT)
            await reap_stale(conn)
            running = await first_row(conn, select(jobs).where(jobs.c.state == "running"))
            if running is not None:
                raise Conflict(
                    f"An import is already running (import {running.id} from {running.source}, "
                    f"in {running.owner}); wait for it or stop it with op=stop_import."
                )
            job = dict(
                (await conn.execute(insert(jobs).values(source=description, owner=owner).returning(jobs)))
                .one()
                ._mapping
            )
            after_commit(conn, ("boot import", job["id"]), run)
    except BaseException:
        for origin in origins:
            await origin.source.close()
        raise
    return job


async def _heartbeat(db: AsyncEngine, progress: Progress) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        try:
            async with db.begin() as conn:
                stop = (
                    await conn.execute(
                        update(jobs)
                        .where(jobs.c.id == progress.job_id)
                        .values(
                            heartbeat=func.now(),
                            updated=func.now(),
                            files_done=progress.files_done,
                            bytes_done=progress.bytes_done,
                        )
                        .returning(jobs.c.stop_requested)
                    )
                ).scalar()
                await boot_store.renew_leases(conn, writer_of(progress.job_id))
            progress.stop = progress.stop or bool(stop)
        except Exception as exc:  # database away: the chunk writes will fail and say so
            log.warning("import %d: heartbeat failed: %s", progress.job_id, exc)


async def _finish(db: AsyncEngine, progress: Progress, state: str, message: str) -> None:
    async with db.begin() as conn:
        await conn.execute(
            update(jobs)
            .where(jobs.c.id == progress.job_id)
            .values(
                state=state,
                message=message,
                files_done=progress.files_done,
                bytes_done=progress.bytes_done,
                heartbeat=func.now(),
                updated=func.now(),
            )
        )
        await boot_store.release_writer(conn, writer_of(progress.job_id))


@dataclass
class Pending:
    content_id: int
    sha256: str
    size: int
    path: str


async def _plan(db: AsyncEngine, images: list[ss.StreamImage], job_id: int) -> list[Pending]:
    """Create resources, sets and files (one transaction); return the contents still to fetch."""
    pending: dict[int, Pending] = {}
    async with db.begin() as conn:
        for image in images:
            extra = {"title": image.title, "subarches": image.subarches, **image.extra}
            resource = await boot_resources.ensure_resource(conn, "synced", image.name, image.architecture, extra)
            rset = await boot_resources.ensure_set(conn, resource["id"], image.version, image.label)
            for item in image.items:
                _, content = await boot_resources.ensure_file(
                    conn, rset["id"], item.ftype, item.filename, item.sha256, item.size, {"path": item.path}
                )
                if not content["complete"]:
                    pending.setdefault(content["id"], Pending(content["id"], item.sha256, item.size, item.path))
        await conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id)
            .values(files_total=len(pending), bytes_total=sum(p.size for p in pending.values()), updated=func.now())
        )
    return list(pending.values())


class Stopped(Exception):
    pass


async def _open_writer(db: AsyncEngine, item: Pending, writer: str) -> boot_store.ContentWriter:
    """Take the file's lease, waiting out a dead writer's lease if need be."""
    w = boot_store.ContentWriter(db, item.content_id, writer, hashing=True)
    deadline = asyncio.get_running_loop().time() + boot_store.LEASE_SECONDS + 5
    while True:
        try:
            await w.open()
            return w
        except boot_store.WriterBusy:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(1.0)


async def _fetch(db: AsyncEngine, source: Source, item: Pending, progress: Progress) -> None:
    w = await _open_writer(db, item, writer_of(progress.job_id))
    if w.already_complete:
        progress.bytes_done += item.size
        return
    offset = w.offset
    if offset == item.size:  # all stored before a crash, never checked: just check it
        progress.bytes_done += offset
        await w.finish()
        return
    async with source.stream(item.path, offset) as (start, chunks):
        if start != offset:  # the server cannot resume: start over
            await w.open(resume=False)
        progress.bytes_done += w.offset
        async for data in chunks:
            if progress.stop:
                await w.release()
                raise Stopped()
            await w.write(data)
            progress.bytes_done += len(data)
    await w.finish()


async def _import_from(db: AsyncEngine, origin: Origin, progress: Progress) -> tuple[int, int]:
    """Plan and fetch what `origin` offers (and wants); (images, files fetched)."""
    images = await load_stream(origin.source, origin.index_path)
    if origin.wants is not None:
        images = [i for i in images if origin.wants(i)]
    pending = await _plan(db, images, progress.job_id)
    log.info(
        "import %d from %s: %d images, %d files to fetch",
        progress.job_id,
        origin.source.description,
        len(images),
        len(pending),
    )
    for item in pending:
        try:
            await _fetch(db, origin.source, item, progress)
        except (boot_store.ContentError, ss.StreamError, OSError) as exc:
            progress.errors.append(f"{item.path}: {exc}")
            log.warning("import %d: %s: %s", progress.job_id, item.path, exc)
        progress.files_done += 1
    return len(images), len(pending)


async def run_import(db: AsyncEngine, job_id: int, origins: list[Origin]) -> None:
    progress = Progress(job_id)
    beat = asyncio.create_task(_heartbeat(db, progress))
    state, message = "failed", ""
    where = "; ".join(o.source.description for o in origins)
    try:
        images = fetched = 0
        for origin in origins:
            try:
                n_images, n_files = await _import_from(db, origin, progress)
            except ss.StreamError as exc:
                progress.errors.append(f"bad stream {origin.source.description}: {exc}")
                continue
            images, fetched = images + n_images, fetched + n_files
        if progress.errors:
            state = "failed"
            message = f"{len(progress.errors)} problems (files not marked complete): " + "; ".join(progress.errors)
        else:
            state = "done"
            message = f"imported {images} images from {where}: {fetched} files fetched"
    except Stopped:
        state, message = "stopped", "stopped on request; run the import again to resume"
    except RegionError as exc:  # e.g. a set's file that the stream now says has other bytes
        state, message = "failed", f"cannot import {where}: {exc.detail}"
    except asyncio.CancelledError:
        state, message = "failed", "interrupted: the worker stopped; run the import again to resume"
        raise
    except Exception as exc:
        log.exception("import %d failed", job_id)
        state, message = "failed", f"{type(exc).__name__}: {exc}"
    finally:
        beat.cancel()
        for origin in origins:
            with contextlib.suppress(BaseException):
                await origin.source.close()
        try:
            await asyncio.shield(_finish(db, progress, state, message))
        except BaseException as exc:  # the heartbeat stops anyway: the job reads as dead soon
            log.warning("import %d: could not record its end (%s): %s", job_id, state, exc)
        log.info("import %d %s: %s", job_id, state, message)


def owner_name(region_id: Any, worker_index: Any) -> str:
    return f"region {region_id} worker {worker_index} (pid {os.getpid()})"
