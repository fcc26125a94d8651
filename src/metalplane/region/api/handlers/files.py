"""files/ and files/{filename}/: the caller's stored files (MAAS's FileStorage)."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

from starlette.responses import PlainTextResponse, Response

from metalplane.region.api.checks import mandatory, part_bytes
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.api.render import Row, uri
from metalplane.region.errors import NotFound
from metalplane.region.services import files as svc

files = Handler("FilesHandler", "files/", "Manage the collection of all the files in this MAAS.")
file = Handler("FileHandler", "files/{filename}/", "Manage a FileStorage object.")
OCTETS = "application/octet-stream"


def render_file(f: Row) -> Row:
    return {
        "filename": f["filename"],
        "anon_resource_uri": uri("files/") + "?" + urlencode({"op": "get_by_key", "key": f["key"]}),
        "resource_uri": uri(f"files/{f['filename']}/"),
    }


@files.read
async def list_files(ctx: Ctx) -> list:
    """List the files of the requesting user.

    :param prefix: Only files whose name starts with this prefix.
    :type prefix: unicode
    """
    return [render_file(f) for f in await ctx.run(svc.list_files, ctx.me, ctx.params.str("prefix"))]


@files.create
async def add_file(ctx: Ctx) -> Response:
    """Add a new file (or replace the caller's file of that name), at most 32 MiB.

    :param filename: The filename to use.
    :type filename: unicode
    :param file: The file contents (a file part).
    :type file: file
    """
    content = await part_bytes(ctx, "file")
    await ctx.run(svc.save_file, ctx.me, ctx.params.str("filename"), content)
    return Response(b"", status_code=201, media_type="text/plain")


@files.action("GET", "get")
async def get_file(ctx: Ctx) -> Response:
    """Get a named file's contents.

    :param filename: The name of the file.
    :type filename: unicode
    """
    filename = mandatory(ctx.params, "filename")
    found = await ctx.run(svc.get_file, ctx.me, filename, kind="file")
    return Response(bytes(found["content"]), media_type=OCTETS)


@files.action("GET", "get_by_key")
async def get_file_by_key(ctx: Ctx) -> Response:
    """Get a file's contents by its key (anon_resource_uri).

    :param key: The file's key.
    :type key: unicode
    """
    key = mandatory(ctx.params, "key")
    found = await ctx.run(svc.get_file_by_key, key)
    return Response(bytes(found["content"]), media_type=OCTETS)


@files.delete
async def delete_file_by_name(ctx: Ctx) -> None:
    """Delete a file.

    :param filename: The name of the file.
    :type filename: unicode
    """
    filename = mandatory(ctx.params, "filename")
    await ctx.run(svc.delete_file, ctx.me, filename)


@file.read
async def read_file(ctx: Ctx) -> Response | dict:
    """Read a stored file: its name and base64-encoded content."""
    try:
        found = await ctx.run(svc.get_file, ctx.me, ctx.path["filename"])
    except NotFound:
        return PlainTextResponse("Not Found", status_code=404, headers={"Workaround": "bug1123986"})
    return {**render_file(found), "content": base64.b64encode(bytes(found["content"])).decode()}


@file.delete
async def delete_file(ctx: Ctx) -> None:
    """Delete a stored file."""
    await ctx.run(svc.delete_file, ctx.me, ctx.path["filename"])
