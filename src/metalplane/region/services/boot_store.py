"""Boot image file contents in PostgreSQL: content-addressed, in 1 MiB bytea chunks.

Why chunked bytea rows and not large objects:

- A range request maps straight to rows (`seq = offset // CHUNK_SIZE`), and
  each chunk is fetched in its own short query on a pooled connection that is
  returned between chunks: a slow client never pins a connection or a
  transaction, and no worker ever holds a whole file in memory.
- Rows follow the ordinary rules: foreign keys delete a file's chunks with it
  (large objects leak unless someone calls lo_unlink), pg_dump/replication and
  privileges need nothing special, and `SET STORAGE EXTERNAL` stops PostgreSQL
  from re-compressing already compressed kernels and initrds.
- A write is a row insert in a short transaction that also advances `stored`
  (and renews the writer's lease), so progress is visible to every region at
  once and an interrupted write can resume from `stored`.

A content row becomes `complete` in one statement, and only after all `size`
bytes are stored and their sha256 matched. A crash at any point before that
leaves `complete = false`, so nothing half-written is ever served or listed
as ready; a mismatch deletes the chunks and records the error.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from metalplane.region.db.tables import (
    boot_resource_chunks,
    boot_resource_contents,
    boot_resource_files,
)
from metalplane.region.db.transaction import transaction
from metalplane.region.errors import Invalid
from metalplane.region.services import consequences
from metalplane.region.services.rows import first_row

CHUNK_SIZE = 1 << 20
LEASE_SECONDS = 20  # a writer renews at every chunk and from the import heartbeat

Row = dict[str, Any]
contents = boot_resource_contents
chunks = boot_resource_chunks


class ContentError(Exception):
    """Writing a content failed (mismatch, too much or too little data); nothing is complete."""


class WriterBusy(ContentError):
    """Another writer holds a live lease on this content."""


class LostLease(ContentError):
    """Our lease was taken over (we stalled past it): stop writing."""


async def get_content(conn: AsyncConnection, content_id: int) -> Row | None:
    row = await first_row(conn, select(contents).where(contents.c.id == content_id))
    return dict(row._mapping) if row else None


async def content_by_sha256(conn: AsyncConnection, sha256: str) -> Row | None:
    row = await first_row(conn, select(contents).where(contents.c.sha256 == sha256))
    return dict(row._mapping) if row else None


async def ensure_content(conn: AsyncConnection, sha256: str, size: int) -> Row:
    """The content row for sha256 (created empty when new). A known sha256 with a
    different size is refused: one of the two claims is wrong."""
    await conn.execute(
        insert(contents).values(sha256=sha256, size=size).on_conflict_do_nothing(index_elements=["sha256"])
    )
    row = await content_by_sha256(conn, sha256)
    assert row is not None
    if row["size"] != size:
        raise Invalid.field(
            "size", f"A file with sha256 {sha256} is already stored with size {row['size']}, not {size}."
        )
    return row


async def delete_unreferenced(conn: AsyncConnection) -> int:
    """Drop contents no file refers to (their chunks go with them)."""
    referenced = select(boot_resource_files.c.content_id)
    result = await conn.execute(delete(contents).where(contents.c.id.not_in(referenced)))
    return result.rowcount or 0


async def release_writer(conn: AsyncConnection, writer: str) -> None:
    """Forget the leases of a writer known to be gone (e.g. a dead import job)."""
    await conn.execute(update(contents).where(contents.c.writer == writer).values(writer=None, writer_until=None))


async def renew_leases(conn: AsyncConnection, writer: str) -> None:
    await conn.execute(
        update(contents)
        .where(contents.c.writer == writer)
        .values(writer_until=func.now() + text(f"interval '{LEASE_SECONDS} seconds'"))
    )


async def stored_sha256(db: AsyncEngine, content_id: int, upto: int) -> Any:
    """A sha256 object fed with the first `upto` stored bytes, read one chunk at a time."""
    digest = hashlib.sha256()
    async for data in read_range(db, content_id, 0, upto - 1) if upto > 0 else _nothing():
        digest.update(data)
    return digest


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover


async def read_range(db: AsyncEngine, content_id: int, first: int, last: int) -> AsyncIterator[bytes]:
    """Bytes first..last (inclusive), one chunk per query, each on a connection
    borrowed from the pool only for that query. Raises if a chunk is missing
    (the file was deleted meanwhile): the response then ends short, as it must."""
    if last < first:
        return
    for seq in range(first // CHUNK_SIZE, last // CHUNK_SIZE + 1):
        start = max(first - seq * CHUNK_SIZE, 0)
        end = min(last - seq * CHUNK_SIZE, CHUNK_SIZE - 1)
        length = end - start + 1
        part = func.substring(chunks.c.data, start + 1, length) if (start, length) != (0, CHUNK_SIZE) else chunks.c.data
        async with db.connect() as conn:
            data = (
                await conn.execute(select(part).where(chunks.c.content_id == content_id, chunks.c.seq == seq))
            ).scalar()
        if data is None or len(data) != length:
            raise ContentError(f"content {content_id}: chunk {seq} is missing or short (deleted meanwhile?)")
        yield bytes(data)


class ContentWriter:
    """Appends bytes to one content row, chunk by chunk, under a lease.

    `hashing=True` (imports): the sha256 is computed as bytes stream through, and
    resuming rehashes what is already stored once. `hashing=False` (uploads in
    pieces, each PUT maybe on another worker): the stored bytes are read back and
    hashed once, when the last piece arrives.
    """

    def __init__(self, db: AsyncEngine, content_id: int, writer: str, hashing: bool = True):
        self.db = db
        self.content_id = content_id
        self.writer = writer
        self.hashing = hashing
        self.sha256 = ""
        self.size = 0
        self.seq = 0  # chunk the buffer will become
        self.buffer = bytearray()
        self.digest: Any = hashlib.sha256()
        self.already_complete = False

    @property
    def offset(self) -> int:
        """Bytes received so far (stored + buffered)."""
        return self.seq * CHUNK_SIZE + len(self.buffer)

    async def open(self, resume: bool = True) -> int:
        """Take the lease and pick up where the last writer stopped; returns the offset.
        Raises WriterBusy when someone else holds a live lease, and returns the size
        of a content that is already complete (nothing to write)."""
        lease = func.now() + text(f"interval '{LEASE_SECONDS} seconds'")
        async with self.db.begin() as conn:
            leased = await first_row(
                conn,
                update(contents)
                .where(
                    contents.c.id == self.content_id,
                    contents.c.complete.is_(False),
                    (contents.c.writer.is_(None))
                    | (contents.c.writer == self.writer)
                    | (contents.c.writer_until < func.now()),
                )
                .values(writer=self.writer, writer_until=lease, error="")
                .returning(contents),
            )
            if leased is None:
                current = await get_content(conn, self.content_id)
                if current is None:
                    raise ContentError(f"content {self.content_id} no longer exists")
                if current["complete"]:
                    self.sha256, self.size = current["sha256"], current["size"]
                    self.seq, self.buffer = divmod(current["size"], CHUNK_SIZE)[0], bytearray()
                    self.already_complete = True
                    return current["size"]
                raise WriterBusy(f"{current['sha256']} is being written by {current['writer']}")
            row = dict(leased._mapping)
            self.sha256, self.size = row["sha256"], row["size"]
            stored = row["stored"] if resume else 0
            if not resume and row["stored"]:
                await self._reset(conn, "", keep_writer=True)
            self.seq, partial = divmod(stored, CHUNK_SIZE)
            self.buffer = bytearray()
            if partial:
                data = (
                    await conn.execute(
                        select(chunks.c.data).where(chunks.c.content_id == self.content_id, chunks.c.seq == self.seq)
                    )
                ).scalar()
                if data is None or len(data) != partial:  # inconsistent: start over
                    await self._reset(conn, "", keep_writer=True)
                    self.seq = 0
                else:
                    self.buffer = bytearray(data)
        if self.hashing:
            self.digest = await stored_sha256(self.db, self.content_id, self.offset)
        return self.offset

    async def write(self, data: bytes) -> None:
        if self.offset + len(data) > self.size:
            await self.fail(f"Too much data received: more than the expected {self.size} bytes.")
        if self.hashing:
            self.digest.update(data)
        self.buffer += data
        while len(self.buffer) >= CHUNK_SIZE:
            piece = bytes(self.buffer[:CHUNK_SIZE])
            del self.buffer[:CHUNK_SIZE]
            await self._store(self.seq, piece, (self.seq + 1) * CHUNK_SIZE)
            self.seq += 1

    async def flush(self) -> None:
        """Store a trailing partial chunk (it is rewritten if more bytes follow)."""
        if self.buffer:
            await self._store(self.seq, bytes(self.buffer), self.offset)

    async def _store(self, seq: int, data: bytes, stored: int) -> None:
        async with self.db.begin() as conn:
            await conn.execute(
                insert(chunks)
                .values(content_id=self.content_id, seq=seq, data=data)
                .on_conflict_do_update(index_elements=["content_id", "seq"], set_={"data": data})
            )
            moved = await conn.execute(
                update(contents)
                .where(
                    contents.c.id == self.content_id, contents.c.writer == self.writer, contents.c.complete.is_(False)
                )
                .values(
                    stored=stored,
                    updated=func.now(),
                    writer_until=func.now() + text(f"interval '{LEASE_SECONDS} seconds'"),
                )
            )
            if moved.rowcount != 1:
                raise LostLease(f"{self.sha256}: lost the write lease to another writer")

    async def release(self) -> None:
        """Store what is buffered and let the next writer in (uploads between PUTs)."""
        await self.flush()
        async with self.db.begin() as conn:
            await conn.execute(
                update(contents)
                .where(contents.c.id == self.content_id, contents.c.writer == self.writer)
                .values(writer=None, writer_until=None)
            )

    async def finish(self) -> None:
        """All bytes are in: check them and mark the content complete, or fail."""
        await self.flush()
        if self.offset != self.size:
            await self.fail(f"Truncated: received {self.offset} of {self.size} bytes.")
        digest = self.digest if self.hashing else await stored_sha256(self.db, self.content_id, self.size)
        got = digest.hexdigest()
        if got != self.sha256:
            await self.fail(f"Saved content does not match given SHA256 value: expected {self.sha256}, got {got}.")
        async with transaction(self.db) as conn:
            done = await conn.execute(
                update(contents)
                .where(
                    contents.c.id == self.content_id,
                    contents.c.writer == self.writer,
                    contents.c.stored == contents.c.size,
                )
                .values(complete=True, writer=None, writer_until=None, error="", updated=func.now())
            )
            if done.rowcount != 1:
                raise LostLease(f"{self.sha256}: lost the write lease before completing")
            consequences.images_changed(conn)  # racks sync their caches

    async def fail(self, error: str) -> None:
        """Throw away what was stored, remember why, and raise ContentError."""
        async with self.db.begin() as conn:
            await self._reset(conn, error)
        self.seq, self.buffer, self.digest = 0, bytearray(), hashlib.sha256()
        raise ContentError(error)

    async def _reset(self, conn: AsyncConnection, error: str, keep_writer: bool = False) -> None:
        await conn.execute(delete(chunks).where(chunks.c.content_id == self.content_id))
        values: dict[str, Any] = {"stored": 0, "error": error, "updated": func.now()}
        if not keep_writer:
            values.update(writer=None, writer_until=None)
        await conn.execute(
            update(contents).where(contents.c.id == self.content_id, contents.c.complete.is_(False)).values(**values)
        )
