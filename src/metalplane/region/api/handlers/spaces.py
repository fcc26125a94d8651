"""spaces/ and spaces/{id}/."""

from __future__ import annotations

from metalplane.region.api import render
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.services import spaces as svc

spaces = Handler("SpacesHandler", "spaces/", "Manage spaces.")
space = Handler("SpaceHandler", "spaces/{id}/", "Manage space.")


@spaces.read
async def list_spaces(ctx: Ctx) -> list:
    """List all spaces."""
    async with ctx.tx() as conn:
        return render.spaces(await svc.show_spaces(conn))


@spaces.action("POST", admin=True)
async def create_space(ctx: Ctx) -> dict:
    """Create a space.

    :param name: Name of the space.
    :type name: unicode
    :param description: Description of the space.
    :type description: unicode
    """
    name, description = ctx.params.str("name") or None, ctx.params.str("description", "") or ""
    async with ctx.tx() as conn:
        return render.spaces(await svc.create_space(conn, name, description))[0]


@space.read
async def read_space(ctx: Ctx) -> dict:
    """Read a space, by id or name (or "undefined": the VLANs without a space)."""
    async with ctx.tx() as conn:
        return render.spaces(await svc.show_spaces(conn, ctx.path["id"]))[0]


@space.action("PUT", admin=True)
async def update_space(ctx: Ctx) -> dict:
    """Update a space.

    :param name: Name of the space.
    :type name: unicode
    :param description: Description of the space.
    :type description: unicode
    """
    changes = ctx.params.given({"name": "str", "description": "str"})
    async with ctx.tx() as conn:
        return render.spaces(await svc.update_space(conn, ctx.path["id"], changes))[0]


@space.action("DELETE", admin=True)
async def delete_space(ctx: Ctx) -> None:
    """Delete a space."""
    async with ctx.tx() as conn:
        await svc.delete_space(conn, ctx.path["id"])
