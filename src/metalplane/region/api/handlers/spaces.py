"""spaces/ and spaces/{id}/."""

from __future__ import annotations

from metalplane.region.api import render
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.services import spaces as svc

FIELDS_DOC = """
:param name: Name of the space.
:type name: unicode
:param description: Description of the space.
:type description: unicode
"""

spaces = Handler("SpacesHandler", "spaces/", "Manage spaces.")
space = Handler("SpaceHandler", "spaces/{id}/", "Manage space.")


@spaces.read
async def list_spaces(ctx: Ctx) -> list:
    """List all spaces."""
    return render.spaces(await ctx.run(svc.show_spaces))


@spaces.action("POST", admin=True, doc="Create a space.\n" + FIELDS_DOC)
async def create_space(ctx: Ctx) -> dict:
    name, description = ctx.params.str("name") or None, ctx.params.str("description", "") or ""
    return render.spaces(await ctx.run(svc.create_space, name, description))[0]


@space.read
async def read_space(ctx: Ctx) -> dict:
    """Read a space, by id or name (or "undefined": the VLANs without a space)."""
    return render.spaces(await ctx.run(svc.show_spaces, ctx.path["id"]))[0]


@space.action("PUT", admin=True, doc="Update a space.\n" + FIELDS_DOC)
async def update_space(ctx: Ctx) -> dict:
    changes = ctx.params.given({"name": "str", "description": "str"})
    return render.spaces(await ctx.run(svc.update_space, ctx.path["id"], changes))[0]


@space.action("DELETE", admin=True)
async def delete_space(ctx: Ctx) -> None:
    """Delete a space."""
    await ctx.run(svc.delete_space, ctx.path["id"])
