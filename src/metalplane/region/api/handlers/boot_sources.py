"""boot-sources/ and boot-sources/{boot_source_id}/selections/: where `boot-resources
import` (without url or path) fetches images from, and which ones (admins only)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from metalplane.region.api import render_sources as render
from metalplane.region.api.app import json_response
from metalplane.region.api.checks import admins_only, part_bytes, path_id
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.services import boot_sources as svc

boot_sources = Handler("BootSourcesHandler", "boot-sources/", "Manage the collection of boot sources.")
boot_source = Handler("BootSourceHandler", "boot-sources/{id}/", "Manage a boot source.")
selections = Handler(
    "BootSourceSelectionsHandler",
    "boot-sources/{boot_source_id}/selections/",
    "Manage the collection of boot source selections.",
)
selection = Handler(
    "BootSourceSelectionHandler", "boot-sources/{boot_source_id}/selections/{id}/", "Manage a boot source selection."
)

SOURCE_DOC = """
:param url: The URL of the boot source (a simplestreams mirror: http://, https:// or file://).
:type url: unicode
:param keyring_filename: The path to the keyring file for this boot source.
:type keyring_filename: unicode
:param keyring_data: The GPG keyring for this boot source, as a file (read shows it base64-encoded).
:type keyring_data: file
"""
SELECTION_DOC = """
:param os: The OS (e.g. ubuntu, centos) for which to import resources.
:type os: unicode
:param release: The release for which to import resources.
:type release: unicode
:param arches: The architecture list for which to import resources (repeat it, or separate with commas; * for all).
:type arches: unicode
:param subarches: The subarchitecture list for which to import resources.
:type subarches: unicode
:param labels: The label lists for which to import resources.
:type labels: unicode
"""


def _source_id(ctx: Ctx, name: str = "id") -> int:
    admins_only(ctx)
    return path_id(ctx, name, "BootSource")


def _selection_fields(ctx: Ctx) -> dict[str, Any]:
    p = ctx.params
    fields: dict[str, Any] = {k: p.str(k) for k in ("os", "release") if k in p}
    fields.update({k: svc.split_list(p.get_list(k)) for k in ("arches", "subarches", "labels") if k in p})
    return fields


@boot_sources.read
async def list_sources(ctx: Ctx) -> list:
    """List boot sources."""
    admins_only(ctx)
    return [render.boot_source(s) for s in await ctx.run(svc.list_sources)]


async def create_source(ctx: Ctx) -> Response:
    admins_only(ctx)
    p = ctx.params
    keyring = await part_bytes(ctx, "keyring_data")
    made = await ctx.run(svc.create_source, p.str("url"), p.str("keyring_filename") or "", keyring)
    return json_response(render.boot_source(made), status=201)


create_source.__doc__ = (
    """Create a new boot source.

One of keyring_filename or keyring_data is required (and only one). The
keyring is stored but not used: metalplane imports unsigned streams.
"""
    + SOURCE_DOC
)
boot_sources.action("POST")(create_source)


@boot_source.read
async def read_source(ctx: Ctx) -> dict:
    """Read a boot source."""
    source_id = _source_id(ctx)
    return render.boot_source(await ctx.run(svc.get_source, source_id))


async def update_source(ctx: Ctx) -> dict:
    source_id = _source_id(ctx)
    p = ctx.params
    changes: dict[str, Any] = {k: p.str(k) or "" for k in ("url", "keyring_filename") if k in p}
    if "keyring_data" in p:
        changes["keyring_data"] = await part_bytes(ctx, "keyring_data")
    return render.boot_source(await ctx.run(svc.update_source, source_id, changes))


update_source.__doc__ = "Update a boot source.\n" + SOURCE_DOC
boot_source.action("PUT")(update_source)


@boot_source.delete
async def delete_source(ctx: Ctx) -> None:
    """Delete a boot source (and its selections)."""
    source_id = _source_id(ctx)
    await ctx.run(svc.delete_source, source_id)


@selections.read
async def list_selections(ctx: Ctx) -> list:
    """List boot source selections."""
    source_id = _source_id(ctx, "boot_source_id")
    return [render.boot_source_selection(s) for s in await ctx.run(svc.list_selections, source_id)]


async def create_selection(ctx: Ctx) -> Response:
    source_id = _source_id(ctx, "boot_source_id")
    fields = _selection_fields(ctx)
    made = await ctx.run(svc.create_selection, source_id, fields)
    return json_response(render.boot_source_selection(made), status=201)


create_selection.__doc__ = (
    """Create a boot source selection.

What `boot-resources import` takes from the source: images of this OS and
release whose architecture, subarchitecture and label are listed (or "*").
Unlike MAAS, the source's stream is not consulted here: a selection nothing in
the stream matches imports nothing.
"""
    + SELECTION_DOC
)
selections.action("POST")(create_selection)


def _selection_ids(ctx: Ctx) -> tuple[int, int]:
    return _source_id(ctx, "boot_source_id"), path_id(ctx, "id", "BootSourceSelection")


@selection.read
async def read_selection(ctx: Ctx) -> dict:
    """Read a boot source selection."""
    source_id, selection_id = _selection_ids(ctx)
    return render.boot_source_selection(await ctx.run(svc.get_selection, source_id, selection_id))


async def update_selection(ctx: Ctx) -> dict:
    source_id, selection_id = _selection_ids(ctx)
    fields = _selection_fields(ctx)
    return render.boot_source_selection(await ctx.run(svc.update_selection, source_id, selection_id, fields))


update_selection.__doc__ = "Update a boot source selection.\n" + SELECTION_DOC
selection.action("PUT")(update_selection)


@selection.delete
async def delete_selection(ctx: Ctx) -> None:
    """Delete a boot source selection (not the one of the commissioning release)."""
    source_id, selection_id = _selection_ids(ctx)
    await ctx.run(svc.delete_selection, source_id, selection_id)
