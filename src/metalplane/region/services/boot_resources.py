"""Boot resources: images (name + architecture), their sets (versions) and files.

A resource such as "ephemeral/bookworm" on "amd64/generic" has sets, one per
version; a set has files (boot-kernel, boot-initrd, squashfs, ...), each
pointing at a stored content (boot_store: content-addressed by sha256, so an
unchanged kernel shared by two versions is stored once). A set is complete
when it has files and all of their contents are complete; only complete sets
reach the racks (`manifest`).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from metalplane.images.simplestreams import FILETYPES, SEGMENT_RE, valid_name, version_key
from metalplane.region.db.tables import (
    boot_resource_contents,
    boot_resource_files,
    boot_resource_sets,
    boot_resources,
)
from metalplane.region.db.transaction import Work
from metalplane.region.errors import Conflict, Invalid, NotFound, PermissionDenied, Refused, raise_if
from metalplane.region.services import boot_store, consequences
from metalplane.region.services.rows import delete_row, first_row, one, only_row

Row = dict[str, Any]
resources, sets, files, contents = boot_resources, boot_resource_sets, boot_resource_files, boot_resource_contents

RTYPES = ("synced", "uploaded", "generated")
FILE_PATH = "/MAAS/boot-resources/file/"  # + sha256: served by every region (anonymous)
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# MAAS's upload file types (the `filetype` of boot-resources create) and what they store.
UPLOAD_FILETYPES = {
    "tgz": "root-tgz",
    "tbz": "root-tbz",
    "txz": "root-txz",
    "ddtgz": "root-dd",
    "ddtbz": "root-dd.tar.bz2",
    "ddtxz": "root-dd.tar.xz",
    "ddtar": "root-dd.tar",
    "ddbz2": "root-dd.bz2",
    "ddgz": "root-dd.gz",
    "ddxz": "root-dd.xz",
    "ddraw": "root-dd.raw",
}


def file_path(sha256: str) -> str:
    return FILE_PATH + sha256


# -- validation (pure) ----------------------------------------------------------------


def clean_name(name: str) -> str:
    """MAAS: a name without "os/" is a custom image."""
    name = name.strip()
    return name if "/" in name else f"custom/{name}"


def clean_architecture(architecture: str) -> str:
    architecture = architecture.strip()
    return architecture if "/" in architecture else f"{architecture}/generic"


def clean_filetype(filetype: str) -> str | None:
    filetype = filetype.strip()
    if filetype in UPLOAD_FILETYPES:
        return UPLOAD_FILETYPES[filetype]
    return filetype if filetype in FILETYPES or filetype in UPLOAD_FILETYPES.values() else None


def upload_errors(
    name: str, architecture: str, filetype: str | None, raw_filetype: str, version: str | None
) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not valid_name(name) or len(name) > 255:
        errors["name"] = [
            "Name must be made of '/'-separated parts of letters, digits and ._+- "
            "(e.g. custom/myimage or ephemeral/bookworm)."
        ]
    arch_parts = architecture.split("/")
    if len(arch_parts) != 2 or not all(SEGMENT_RE.match(p) for p in arch_parts):
        errors["architecture"] = [
            f"'{architecture}' is not a valid architecture: use ARCH/SUBARCH, e.g. amd64/generic."
        ]
    if filetype is None:
        choices = ", ".join([*UPLOAD_FILETYPES, *FILETYPES])
        errors["filetype"] = [f"Select a valid choice. {raw_filetype} is not one of the available choices: {choices}."]
    if version is not None and (not SEGMENT_RE.match(version) or len(version) > 128):
        errors["version"] = ["A version is made of letters, digits and ._+- (e.g. 20261123.1)."]
    return errors


def next_version(existing: list[str], today: str) -> str:
    """MAAS's upload versions: YYYYMMDD, then YYYYMMDD.1, .2, ..."""
    if today not in existing:
        return today
    n = 1
    while f"{today}.{n}" in existing:
        n += 1
    return f"{today}.{n}"


def progress(stored: int, size: int, complete: bool) -> float:
    if complete:
        return 100.0
    if size <= 0:
        return 0.0
    return round(min(stored, size) * 100.0 / size, 1)


# -- queries ------------------------------------------------------------------------------


async def list_resources(conn: AsyncConnection, rtype: str | None = None) -> list[Row]:
    query = select(resources).order_by(resources.c.rtype, resources.c.name, resources.c.architecture)
    if rtype is not None:
        query = query.where(resources.c.rtype == rtype)
    return [dict(r._mapping) for r in await conn.execute(query)]


async def get_resource(conn: AsyncConnection, resource_id: int) -> Row:
    return one(await conn.execute(select(resources).where(resources.c.id == resource_id)), "BootResource")


async def find_resource(conn: AsyncConnection, name: str, architecture: str) -> Row | None:
    row = await first_row(
        conn, select(resources).where(resources.c.name == name, resources.c.architecture == architecture)
    )
    return dict(row._mapping) if row else None


async def sets_of(conn: AsyncConnection, resource_ids: list[int]) -> dict[int, list[Row]]:
    """Each resource's sets, oldest first, with their files and their contents' state."""
    if not resource_ids:
        return {}
    query = (
        select(
            sets.c.id.label("set_id"),
            *sets.c["resource_id", "version", "label"],
            files.c.id.label("file_id"),
            *files.c["filetype", "filename", "extra"],
            contents.c.id.label("content_id"),
            *contents.c["sha256", "size", "stored", "complete", "error", "writer"],
        )
        .select_from(
            sets.outerjoin(files, files.c.set_id == sets.c.id).outerjoin(contents, contents.c.id == files.c.content_id)
        )
        .where(sets.c.resource_id.in_(resource_ids))
        .order_by(sets.c.id, files.c.filetype)
    )
    by_set: dict[int, Row] = {}
    for r in await conn.execute(query):
        s = by_set.setdefault(
            r.set_id,
            {"id": r.set_id, "resource_id": r.resource_id, "version": r.version, "label": r.label, "files": []},
        )
        if r.file_id is not None:
            s["files"].append(
                {
                    "id": r.file_id,
                    "filetype": r.filetype,
                    "filename": r.filename,
                    "extra": r.extra,
                    "content_id": r.content_id,
                    "sha256": r.sha256,
                    "size": r.size,
                    "stored": r.stored,
                    "complete": r.complete,
                    "error": r.error,
                    "writer": r.writer,
                }
            )
    out: dict[int, list[Row]] = {}
    for s in by_set.values():
        s["complete"] = bool(s["files"]) and all(f["complete"] for f in s["files"])
        s["size"] = sum(f["size"] for f in s["files"])
        s["stored"] = sum(f["size"] if f["complete"] else f["stored"] for f in s["files"])
        out.setdefault(s["resource_id"], []).append(s)
    return out


async def show_resources(conn: AsyncConnection, rtype: str | None) -> list[Row]:
    """Resources of type `rtype` (synced, uploaded, generated; None or "all": every one)."""
    return await list_resources(conn, check_type(rtype))


@dataclass(frozen=True)
class Resource:
    """A resource as shown: with its sets, their files and their progress."""

    resource: Row
    sets: list[Row]


async def show_resource(conn: AsyncConnection, resource_id: int) -> Resource:
    resource = await get_resource(conn, resource_id)
    return Resource(resource, (await sets_of(conn, [resource_id])).get(resource_id, []))


async def get_file(conn: AsyncConnection, resource_id: int, file_id: int) -> Row:
    row = await first_row(
        conn,
        select(
            *files.c["id", "filetype", "content_id"],
            resources.c.rtype,
            *contents.c["sha256", "size", "stored", "complete"],
        )
        .select_from(
            files.join(sets, sets.c.id == files.c.set_id)
            .join(resources, resources.c.id == sets.c.resource_id)
            .join(contents, contents.c.id == files.c.content_id)
        )
        .where(files.c.id == file_id, resources.c.id == resource_id),
    )
    if row is None:
        raise NotFound("BootResourceFile")
    return dict(row._mapping)


async def complete_content(conn: AsyncConnection, sha256: str) -> Row | None:
    """A stored file anyone may download: complete and still part of some set."""
    row = await first_row(
        conn,
        select(contents).where(
            contents.c.sha256 == sha256,
            contents.c.complete.is_(True),
            contents.c.id.in_(select(files.c.content_id)),
        ),
    )
    return dict(row._mapping) if row else None


# -- writes -------------------------------------------------------------------------------


async def ensure_resource(
    conn: AsyncConnection, rtype: str, name: str, architecture: str, extra: dict[str, Any]
) -> Row:
    """Create or update (type and extra fields) the resource name + architecture."""
    stmt = insert(resources).values(rtype=rtype, name=name, architecture=architecture, extra=extra)
    stmt = stmt.on_conflict_do_update(
        index_elements=["name", "architecture"],
        set_={"rtype": rtype, "extra": resources.c.extra.op("||")(stmt.excluded.extra), "updated": func.now()},
    )
    await conn.execute(stmt)
    found = await find_resource(conn, name, architecture)
    assert found is not None
    return found


async def ensure_set(conn: AsyncConnection, resource_id: int, version: str, label: str) -> Row:
    await conn.execute(
        insert(sets)
        .values(resource_id=resource_id, version=version, label=label)
        .on_conflict_do_nothing(index_elements=["resource_id", "version"])
    )
    row = await first_row(conn, select(sets).where(sets.c.resource_id == resource_id, sets.c.version == version))
    assert row is not None
    return dict(row._mapping)


async def ensure_file(
    conn: AsyncConnection,
    set_id: int,
    filetype: str,
    filename: str,
    sha256: str,
    size: int,
    extra: dict[str, Any] | None = None,
) -> tuple[Row, Row]:
    """(file row, content row) for filetype in the set. An existing file of that type is
    kept when it has the same sha256, and refused otherwise: a set's files never change
    under a rack that may already serve them."""
    content = await boot_store.ensure_content(conn, sha256, size)
    existing = await first_row(conn, select(files).where(files.c.set_id == set_id, files.c.filetype == filetype))
    if existing is not None:
        if existing.content_id != content["id"]:
            raise Invalid.field(
                "filetype",
                f"This set already has a {filetype} file with another sha256; use a new version for new content.",
            )
        return dict(existing._mapping), content
    row = await only_row(
        conn,
        insert(files)
        .values(set_id=set_id, filetype=filetype, filename=filename, content_id=content["id"], extra=extra or {})
        .returning(files),
    )
    return dict(row._mapping), content


async def create_upload(
    conn: AsyncConnection,
    *,
    name: str,
    architecture: str,
    filetype: str,
    title: str,
    sha256: str,
    size: int,
    version: str | None,
) -> tuple[Row, Row, Row]:
    """`boot-resources create`: (resource, file, content). The content is complete at
    once when those bytes are already stored (maascli then skips the upload)."""
    raise_if({} if SHA256_RE.match(sha256) else {"sha256": ["Enter a sha256 of 64 lower-case hex digits."]})
    resource = await ensure_resource(conn, "uploaded", name, architecture, {"title": title} if title else {})
    if version is None:
        existing = [s["version"] for s in (await sets_of(conn, [resource["id"]])).get(resource["id"], [])]
        version = next_version(existing, datetime.now(UTC).strftime("%Y%m%d"))
    rset = await ensure_set(conn, resource["id"], version, "uploaded")
    rfile, content = await ensure_file(conn, rset["id"], filetype, filetype, sha256, size)
    return resource, rfile, content


async def delete_resource(conn: AsyncConnection, resource_id: int) -> None:
    await get_resource(conn, resource_id)
    await delete_row(conn, resources, resource_id)
    await boot_store.delete_unreferenced(conn)
    consequences.images_changed(conn)


async def upload(
    work: Work,
    *,
    name: str,
    architecture: str,
    filetype: str,
    title: str,
    version: str | None,
    content: bytes | None,
    sha256: str | None,
    size: int | None,
) -> Resource:
    """`boot-resources create`: a file for a new set (or the set `version` names) of an
    uploaded resource. With `content` it is stored at once; otherwise `sha256` and
    `size` announce it and its bytes follow in pieces (`append_upload`)."""
    name, architecture = clean_name(name), clean_architecture(architecture)
    cleaned = clean_filetype(filetype)
    raise_if(upload_errors(name, architecture, cleaned, filetype, version))
    assert cleaned is not None
    if content is not None:
        actual = hashlib.sha256(content).hexdigest()
        errors: dict[str, list[str]] = {}
        if sha256 is not None and sha256 != actual:
            errors["sha256"] = [f"The content's sha256 is {actual}, not {sha256}."]
        if size is not None and size != len(content):
            errors["size"] = [f"The content is {len(content)} bytes, not {size}."]
        raise_if(errors)
        sha256, size = actual, len(content)
    else:
        raise_if({k: ["This field is required."] for k, v in (("sha256", sha256), ("size", size)) if v is None})
    assert sha256 is not None and size is not None
    async with work.tx() as conn:
        resource, _, stored = await create_upload(
            conn,
            name=name,
            architecture=architecture,
            filetype=cleaned,
            title=title,
            sha256=sha256,
            size=size,
            version=version,
        )
    if content is not None and not stored["complete"]:
        writer = boot_store.ContentWriter(work.engine, stored["id"], f"upload:{uuid.uuid4().hex}")
        try:
            await writer.open(resume=False)
            if not writer.already_complete:
                await writer.write(content)
                await writer.finish()
        except boot_store.WriterBusy as exc:
            raise Conflict(f"{exc}; try again shortly.") from None
        except boot_store.ContentError as exc:
            raise Refused(str(exc)) from None
    async with work.tx() as conn:
        return await show_resource(conn, resource["id"])


class SenderGone(Exception):
    """The sender of an upload went away before sending all it announced."""


async def append_upload(
    engine: AsyncEngine, resource_id: int, file_id: int, length: int, pieces: AsyncIterator[bytes]
) -> None:
    """A piece of an uploaded file (`length` bytes from `pieces`), appended to what is
    stored; the last piece completes the file when its sha256 matches, and otherwise
    empties it. Each piece may reach another worker: the write lease passes on."""
    async with engine.connect() as conn:
        rfile = await get_file(conn, resource_id, file_id)
    if rfile["rtype"] != "uploaded":
        raise PermissionDenied(f"Cannot upload to a resource of type: {rfile['rtype']}.")
    if rfile["complete"]:
        raise Refused("Cannot upload to a complete file.")
    if length <= 0:
        raise Refused("Missing data.")
    writer = boot_store.ContentWriter(engine, rfile["content_id"], f"upload:{uuid.uuid4().hex}", hashing=False)
    try:
        await writer.open()
    except boot_store.WriterBusy as exc:
        raise Conflict(f"{exc}; try again shortly.") from None
    if writer.already_complete:
        raise Refused("Cannot upload to a complete file.")
    received = 0
    try:
        async for piece in pieces:
            received += len(piece)
            await writer.write(piece)
    except SenderGone:
        await writer.release()
        raise Refused("The client went away before sending all the data.") from None
    except boot_store.ContentError as exc:
        raise Refused(str(exc)) from None
    if received != length:
        await writer.release()
        raise Refused("Content-Length doesn't equal size of received data.")
    if writer.offset != writer.size:
        await writer.release()
        return
    try:
        await writer.finish()
    except boot_store.ContentError as exc:
        raise Refused(str(exc)) from None


def check_type(rtype: str | None) -> str | None:
    """The `type` filter of boot-resources read: None means all."""
    if rtype is None or rtype == "all":
        return None
    if rtype not in RTYPES:
        raise Refused(f"'{rtype}' is not a valid boot resource type. Available types: {list(RTYPES)}")
    return rtype


async def touch(conn: AsyncConnection, resource_id: int) -> None:
    await conn.execute(update(resources).where(resources.c.id == resource_id).values(updated=func.now()))


# -- for the racks ------------------------------------------------------------------------


async def manifest(conn: AsyncConnection) -> dict[str, Any]:
    """What racks cache and serve: the newest complete set of every resource.

    {"images": [{"name", "architecture", "subarch", "version",
                 "files": {FILETYPE: {"sha256", "size", "path": "/MAAS/boot-resources/file/<sha256>"}}}]}
    """
    rows = await list_resources(conn)
    all_sets = await sets_of(conn, [r["id"] for r in rows])
    images = []
    for r in sorted(rows, key=lambda r: (r["name"], r["architecture"])):
        complete = [s for s in all_sets.get(r["id"], []) if s["complete"]]
        if not complete:
            continue
        newest = max(complete, key=lambda s: version_key(s["version"]))
        arch, _, subarch = r["architecture"].partition("/")
        images.append(
            {
                "name": r["name"],
                "architecture": arch,
                "subarch": subarch or "generic",
                "version": newest["version"],
                "files": {
                    f["filetype"]: {"sha256": f["sha256"], "size": f["size"], "path": file_path(f["sha256"])}
                    for f in newest["files"]
                },
            }
        )
    return {"images": images}
