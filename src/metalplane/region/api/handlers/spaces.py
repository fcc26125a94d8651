"""spaces/ and spaces/{id}/."""

from __future__ import annotations

from metalplane.region.api import render
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.services import network
from metalplane.region.services import spaces as svc

spaces = Handler("SpacesHandler", "spaces/", "Manage spaces.")
space = Handler("SpaceHandler", "spaces/{id}/", "Manage space.")


async def _render(conn, rows: list[dict]) -> list[dict]:
    vlans = await network.list_vlans(conn)
    by_id = {v["id"]: v for v in vlans}
    subnets = await network.list_subnets(conn)
    return [render.space(s, vlans, subnets, by_id) for s in rows]


@spaces.read
async def list_spaces(ctx: Ctx) -> list:
    """List all spaces."""
    async with ctx.tx() as conn:
        return await _render(conn, await svc.list_spaces(conn))


@spaces.action("POST", admin=True)
async def create_space(ctx: Ctx) -> dict:
    """Create a space.

    :param name: Name of the space.
    :type name: unicode
    :param description: Description of the space.
    :type description: unicode
    """
    p = ctx.params
    async with ctx.tx() as conn:
        row = await svc.create_space(conn, p.str("name") or None, p.str("description", "") or "")
        return (await _render(conn, [row]))[0]


@space.read
async def read_space(ctx: Ctx) -> dict:
    """Read a space."""
    async with ctx.tx() as conn:
        return (await _render(conn, [await svc.get_space(conn, ctx.path_int("id"))]))[0]


@space.action("PUT", admin=True)
async def update_space(ctx: Ctx) -> dict:
    """Update a space.

    :param name: Name of the space.
    :type name: unicode
    :param description: Description of the space.
    :type description: unicode
    """
    async with ctx.tx() as conn:
        row = await svc.update_space(conn, ctx.path_int("id"), ctx.params.given({"name": "str", "description": "str"}))
        return (await _render(conn, [row]))[0]


@space.action("DELETE", admin=True)
async def delete_space(ctx: Ctx) -> None:
    """Delete a space."""
    async with ctx.tx() as conn:
        await svc.delete_space(conn, ctx.path_int("id"))
