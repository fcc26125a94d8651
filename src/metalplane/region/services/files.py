"""Users' stored files (MAAS's files/, FileStorage): named per owner, each also
reachable by a random key. Contents live in the database, so they are bounded."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import files
from metalplane.region.errors import Invalid, NotFound, Refused
from metalplane.region.services.rows import Row, delete_row, first_row, one, rows
from metalplane.region.services.users import User

MAX_FILE_BYTES = 32 << 20
FILENAME_MAX = 255


def check_filename(filename: str | None) -> str:
    if not filename:
        raise Refused("Filename not supplied")
    if len(filename) > FILENAME_MAX:
        raise Invalid.field(
            "filename", f"Ensure this value has at most {FILENAME_MAX} characters (it has {len(filename)})."
        )
    if "\x00" in filename:
        raise Invalid.field("filename", "Null characters are not allowed.")
    return filename


async def list_files(conn: AsyncConnection, owner: User, prefix: str | None = None) -> list[Row]:
    query = select(files.c.id, files.c.filename, files.c.key).where(files.c.owner_id == owner.id)
    if prefix:
        if "\x00" in prefix:
            return []
        query = query.where(func.starts_with(files.c.filename, prefix))
    return rows(await conn.execute(query.order_by(files.c.filename)))


async def save_file(conn: AsyncConnection, owner: User, filename: str | None, content: bytes | None) -> Row:
    """Store a file, replacing the owner's file of that name (its key stays)."""
    name = check_filename(filename)
    if content is None:
        raise Refused("File not supplied")
    if len(content) > MAX_FILE_BYTES:
        raise Invalid.field("file", f"File too large: {len(content)} bytes; at most {MAX_FILE_BYTES} bytes.")
    await conn.execute(
        insert(files)
        .values(filename=name, owner_id=owner.id, key=str(uuid.uuid4()), content=content)
        .on_conflict_do_update(
            index_elements=[files.c.filename, files.c.owner_id], set_={"content": content, "updated": func.now()}
        )
    )
    return await get_file(conn, owner, name)


async def get_file(conn: AsyncConnection, owner: User, filename: str, kind: str = "FileStorage") -> Row:
    if "\x00" in filename:
        raise NotFound(kind)
    row = await first_row(conn, select(files).where(files.c.owner_id == owner.id, files.c.filename == filename))
    if row is None:
        raise NotFound(kind, "File not found" if kind == "file" else None)
    return dict(row._mapping)


async def get_file_by_key(conn: AsyncConnection, key: str) -> Row:
    """Anyone who knows the key may read the file."""
    if "\x00" in key:
        raise NotFound("FileStorage")
    return one(await conn.execute(select(files).where(files.c.key == key)), "FileStorage")


async def delete_file(conn: AsyncConnection, owner: User, filename: str) -> None:
    current = await get_file(conn, owner, filename)
    await delete_row(conn, files, current["id"])
