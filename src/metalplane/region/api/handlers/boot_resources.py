"""boot-resources/ and boot-resources/{id}/ (MAAS shapes), the upload PUT, and the file download.

Besides the two MAAS handlers this module serves two plain routes
(`boot_resource_routes()`):

- `PUT /MAAS/api/2.0/boot-resources/{resource_id}/upload/{file_id}/`: a raw piece
  of an uploaded file (`application/octet-stream`, signed, admin), appended to
  what is stored; 200 "OK". When the last byte arrives the whole file is
  hashed and either completed or refused (400) and emptied. This is what
  maascli's `boot-resources create ... content@=FILE` and python-libmaas do.
- `GET|HEAD /MAAS/boot-resources/file/<sha256>`: the content of a complete file,
  anonymous and read-only, streamed from the database one chunk at a time;
  single `Range: bytes=...` requests (206/416), `Content-Length`, `ETag` =
  the quoted sha256, `If-None-Match` (304). Racks fetch images from here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from metalplane.region import validation
from metalplane.region.api.app import authenticate, json_response
from metalplane.region.api.checks import part_bytes
from metalplane.region.api.context import Ctx
from metalplane.region.api.errors import error_response
from metalplane.region.api.framework import API_PREFIX, Handler
from metalplane.region.errors import (
    NotFound,
    PermissionDenied,
    Refused,
    RegionError,
    Unauthenticated,
    Unavailable,
)
from metalplane.region.services import boot_import, boot_store
from metalplane.region.services import boot_resources as svc

log = logging.getLogger(__name__)
UPLOAD_BODY_MAX = 1 << 30  # a `content` part sent whole (bigger files: upload_uri in pieces)

# A create may carry the file as its `content` part: read only for an authenticated caller.
boot_resources = Handler(
    "BootResourcesHandler", "boot-resources/", "Manage the boot resources.", max_body=UPLOAD_BODY_MAX
)
boot_resource = Handler("BootResourceHandler", "boot-resources/{id}/", "Manage a boot resource.")

UPLOAD_PATH = API_PREFIX + "boot-resources/{resource_id}/upload/{file_id}/"
FILE_ROUTE = svc.FILE_PATH + "{sha256}"


# -- shapes -------------------------------------------------------------------------------


def _uri(path: str) -> str:
    return API_PREFIX + path


def render_file(resource: dict, f: dict) -> dict[str, Any]:
    out = {
        "filename": f["filename"],
        "filetype": f["filetype"],
        "sha256": f["sha256"],
        "size": f["size"],
        "complete": f["complete"],
        "progress": svc.progress(f["stored"], f["size"], f["complete"]),
    }
    if f["complete"]:
        out["download_uri"] = svc.file_path(f["sha256"])
    elif resource["rtype"] == "uploaded":
        out["upload_uri"] = _uri(f"boot-resources/{resource['id']}/upload/{f['id']}/")
    if f["error"] and not f["complete"]:
        out["error"] = f["error"]
    return out


def render_set(resource: dict, s: dict) -> dict[str, Any]:
    return {
        "version": s["version"],
        "label": s["label"],
        "size": s["size"],
        "complete": s["complete"],
        "progress": svc.progress(s["stored"], s["size"], s["complete"]),
        "files": {f["filename"]: render_file(resource, f) for f in s["files"]},
    }


def render_resource(r: dict, sets: list[dict] | None = None) -> dict[str, Any]:
    extra = dict(r["extra"] or {})
    out: dict[str, Any] = {
        "id": r["id"],
        "type": r["rtype"].capitalize(),
        "name": r["name"],
        "architecture": r["architecture"],
        "subarches": extra.pop("subarches", r["architecture"].partition("/")[2] or "generic"),
        "title": extra.pop("title", ""),
        "last_deployed": None,
        **extra,
        "resource_uri": _uri(f"boot-resources/{r['id']}/"),
    }
    if sets is not None:
        # Newest first, as MAAS lists them (maascli uploads to the newest).
        out["sets"] = {s["version"]: render_set(r, s) for s in sorted(sets, key=lambda s: -s["id"])}
    return out


def render_job(job: dict) -> dict[str, Any]:
    return {
        "id": job["id"],
        "source": job["source"],
        "state": job["state"],
        "message": job["message"],
        "owner": job["owner"],
        "files_total": job["files_total"],
        "files_done": job["files_done"],
        "bytes_total": job["bytes_total"],
        "bytes_done": job["bytes_done"],
        "progress": svc.progress(job["bytes_done"], job["bytes_total"], job["state"] == "done"),
        "started": job["created"].isoformat(),
        "heartbeat": job["heartbeat"].isoformat(),
    }


# -- boot-resources/ --------------------------------------------------------------------------


@boot_resources.read
async def list_resources(ctx: Ctx) -> list:
    """List boot resources.

    :param type: Type of boot resources to list: synced, uploaded, generated or all (the default).
    :type type: unicode
    """
    rtype = ctx.params.str("type")
    return [render_resource(r) for r in await ctx.run(svc.show_resources, rtype)]


@boot_resources.action("POST", admin=True)
async def create_resource(ctx: Ctx) -> Response:
    """Upload a new boot resource.

    Either send the file as the `content` part (it is stored at once), or send
    its `sha256` and `size` and then PUT the bytes, in pieces, to the
    `upload_uri` of the file in the answer, as maascli and python-libmaas do.
    A file whose bytes are already stored is complete at once. Each create
    makes a new set (version) unless `version` names an existing one: that is
    how a kernel and an initrd are put in one set.

    :param name: Name of the boot resource, e.g. custom/myimage or ephemeral/bookworm.
    :type name: unicode
    :param architecture: Architecture the boot resource supports, e.g. amd64/generic.
    :type architecture: unicode
    :param filetype: Type of the file: tgz (default), ddtgz, ddraw, ... or boot-kernel, boot-initrd, squashfs.
    :type filetype: unicode
    :param title: Title for the boot resource.
    :type title: unicode
    :param content: The file's content (a file part).
    :type content: file
    :param sha256: The sha256 of the content (when it is uploaded afterwards).
    :type sha256: unicode
    :param size: The size of the content in bytes (when it is uploaded afterwards).
    :type size: int
    :param version: The set to add the file to (metalplane): default a new YYYYMMDD[.N].
    :type version: unicode
    """
    p = ctx.params
    name = p.str("name", required=True) or ""
    architecture = p.str("architecture", required=True) or ""
    filetype = p.str("filetype") or "tgz"
    version = p.str("version") or None
    content = await part_bytes(ctx, "content")
    sha256 = (p.str("sha256") or "").strip().lower() or None
    size_text = p.str("size", max_length=64)
    size = validation.check_size(size_text, "size") if size_text else None
    shown = await svc.upload(
        ctx.work,
        name=name,
        architecture=architecture,
        filetype=filetype,
        title=p.str("title") or "",
        version=version,
        content=content,
        sha256=sha256,
        size=size,
    )
    return json_response(render_resource(shown.resource, shown.sets), 201)


@boot_resources.action("POST", "import", admin=True)
async def import_resources(ctx: Ctx) -> Response:
    """Import boot resources from a simplestreams mirror.

    Without arguments, as MAAS does: from every boot source (boot-sources), the
    images its selections (boot-source-selections) select. With `url`
    (http://, https:// or file://) or `path` (an absolute directory on this
    region): everything that mirror offers, whatever the boot sources say. A
    mirror is its root, which holds streams/v1/index.json, or that file itself;
    streams must be unsigned (index.json). The import runs in the background on
    the region that was asked; follow it with is_importing and import_status,
    and per file in boot-resource read ("progress", "complete", "error"). The
    newest version of each product is imported; files already stored are not
    fetched again, and partly fetched files resume. Only one import runs at a time.

    :param url: Mirror URL, e.g. http://images.example.com/ephemeral/ (or file:///srv/mirror/).
    :type url: unicode
    :param path: Absolute path of a mirror directory on this region, e.g. /srv/mirror.
    :type path: unicode
    """
    spec = ctx.params.str("url") or ctx.params.str("path") or None
    state = ctx.app_state
    owner = boot_import.owner_name(getattr(state, "region_id", "?"), getattr(state, "worker_index", "?"))
    job = await boot_import.start_import(ctx.work, spec, owner)
    return PlainTextResponse(f"Import of boot resources started (import {job['id']} from {job['source']})")


@boot_resources.action("POST", "stop_import", admin=True)
async def stop_import(ctx: Ctx) -> Response:
    """Stop importing boot resources.

    What is stored stays stored; the next import resumes from there.

    :param id: Stop only this import (see import_status); default: whichever is running.
    :type id: int
    """
    await ctx.run(boot_import.request_stop, ctx.params.int("id"))
    return PlainTextResponse("Import of boot resources is being stopped")


@boot_resources.action("GET", "is_importing")
async def is_importing(ctx: Ctx) -> bool:
    """Whether boot resources are being imported (true/false), on any region."""
    return await ctx.run(boot_import.is_importing)


@boot_resources.action("GET", "import_status")
async def import_status(ctx: Ctx) -> dict:
    """The latest imports: state (running, done, failed, stopped), progress and errors."""
    status = await ctx.run(boot_import.status)
    return {"importing": status.importing, "imports": [render_job(j) for j in status.jobs]}


# -- boot-resources/{id}/ ---------------------------------------------------------------------


@boot_resource.read
async def read_resource(ctx: Ctx) -> dict:
    """Read a boot resource, with its sets and files (and their progress)."""
    resource_id = ctx.path_int("id")
    shown = await ctx.run(svc.show_resource, resource_id)
    return render_resource(shown.resource, shown.sets)


@boot_resource.action("DELETE", admin=True)
async def delete_resource(ctx: Ctx) -> None:
    """Delete a boot resource, its sets and the stored files nothing else uses."""
    await ctx.run(svc.delete_resource, ctx.path_int("id"))


# -- raw routes ---------------------------------------------------------------------------------


def _int_param(request: Request, name: str) -> int:
    number = validation.as_id(request.path_params.get(name))
    if number is None:
        raise NotFound("BootResourceFile")
    return number


async def upload_piece(request: Request) -> Response:
    """PUT a piece of an uploaded file (maascli's BootResourceFileUploadHandler)."""
    db = request.app.state.db
    try:
        user = await authenticate(request, db)
        if user is None:
            raise Unauthenticated("Authorization Error: this resource needs an API key (OAuth PLAINTEXT)")
        if not user.is_superuser:
            raise PermissionDenied("This method is reserved for admin users.")
        resource_id, file_id = _int_param(request, "resource_id"), _int_param(request, "file_id")
        try:
            length = int(request.headers.get("content-length", "0"))
        except ValueError:
            raise Refused("Bad Content-Length.") from None

        async def pieces() -> AsyncIterator[bytes]:
            try:
                async for piece in request.stream():
                    yield piece
            except ClientDisconnect:
                raise svc.SenderGone() from None

        await svc.append_upload(db, resource_id, file_id, length, pieces())
        return PlainTextResponse("OK")
    except RegionError as exc:
        return error_response(exc)
    except (OperationalError, DBAPIError) as exc:
        log.warning("database unavailable during upload: %s", exc)
        return error_response(Unavailable("The database is unavailable; retry shortly."))


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """A single byte range: (first, last) inclusive; "unsatisfiable"; or None to send
    the whole file (no Range, another unit, several ranges, or a malformed one)."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    match = re.fullmatch(r"\s*(\d*)\s*-\s*(\d*)\s*", spec)
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":  # the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(size - n, 0), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, min(end, size - 1)


def _etag_matches(header: str, etag: str) -> bool:
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or etag in tags or f"W/{etag}" in tags


async def download_file(request: Request) -> Response:
    """A complete boot resource file by sha256 (anonymous; what racks fetch)."""
    sha256 = request.path_params["sha256"].lower()
    db = request.app.state.db
    if not svc.SHA256_RE.match(sha256):
        return PlainTextResponse("Not a sha256.", status_code=404)
    try:
        async with db.connect() as conn:
            content = await svc.complete_content(conn, sha256)
    except (OperationalError, DBAPIError):
        return error_response(Unavailable("The database is unavailable; retry shortly."))
    if content is None:
        return PlainTextResponse(f"No complete boot resource file has sha256 {sha256}.", status_code=404)
    size, etag = content["size"], f'"{sha256}"'
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": "public, max-age=86400"}
    if_none_match = request.headers.get("if-none-match")
    if if_none_match and _etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    wanted = parse_range(request.headers.get("range"), size)
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range.strip() != etag:
        wanted = None  # the client's partial copy is of something else: send it all
    if wanted == "unsatisfiable":
        return PlainTextResponse(
            "Requested range not satisfiable.", status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"}
        )
    status, first, last = 200, 0, size - 1
    if isinstance(wanted, tuple):
        status, (first, last) = 206, wanted
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    headers["Content-Length"] = str(last - first + 1)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type="application/octet-stream")
    return StreamingResponse(
        boot_store.read_range(db, content["id"], first, last),
        status_code=status,
        headers=headers,
        media_type="application/octet-stream",
    )


def boot_resource_routes() -> list[BaseRoute]:
    """The upload PUT and the file download (the handlers go through all_handlers())."""
    return [
        Route(UPLOAD_PATH, upload_piece, methods=["PUT"]),
        Route(FILE_ROUTE, download_file, methods=["GET", "HEAD"]),
    ]
