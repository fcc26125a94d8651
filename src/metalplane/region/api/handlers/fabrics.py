"""fabrics/ and fabrics/{id}/."""

from __future__ import annotations

from metalplane.region.api import render
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.services import network

FIELDS = {"name": "str", "description": "str", "class_type": "str"}

fabrics = Handler("FabricsHandler", "fabrics/", "Manage fabrics.")
fabric = Handler("FabricHandler", "fabrics/{id}/", "Manage fabric.")


async def _render_one(conn, fabric_id: int) -> dict:
    row = await network.get_fabric(conn, fabric_id)
    vlans = await network.list_vlans(conn)
    return render.fabric(row, vlans, {v["id"]: v for v in vlans})


@fabrics.read
async def list_fabrics(ctx: Ctx) -> list:
    """List all fabrics."""
    async with ctx.tx() as conn:
        vlans = await network.list_vlans(conn)
        by_id = {v["id"]: v for v in vlans}
        return [render.fabric(f, vlans, by_id) for f in await network.list_fabrics(conn)]


@fabrics.action("POST", admin=True)
async def create_fabric(ctx: Ctx) -> dict:
    """Create a fabric.

    :param name: Name of the fabric.
    :type name: unicode
    :param description: Description of the fabric.
    :type description: unicode
    :param class_type: Class type of the fabric.
    :type class_type: unicode
    """
    p = ctx.params
    async with ctx.tx() as conn:
        row = await network.create_fabric(conn, p.str("name") or None, p.str("description", "") or "",
                                          p.str("class_type") or None)
        return await _render_one(conn, row["id"])


@fabric.read
async def read_fabric(ctx: Ctx) -> dict:
    """Read a fabric."""
    async with ctx.tx() as conn:
        return await _render_one(conn, ctx.path_int("id"))


@fabric.action("PUT", admin=True)
async def update_fabric(ctx: Ctx) -> dict:
    """Update fabric.

    :param name: Name of the fabric.
    :type name: unicode
    :param description: Description of the fabric.
    :type description: unicode
    :param class_type: Class type of the fabric.
    :type class_type: unicode
    """
    async with ctx.tx() as conn:
        row = await network.update_fabric(conn, ctx.path_int("id"), ctx.params.given(FIELDS))
        return await _render_one(conn, row["id"])


@fabric.action("DELETE", admin=True)
async def delete_fabric(ctx: Ctx) -> None:
    """Delete a fabric."""
    async with ctx.tx() as conn:
        await network.delete_fabric(conn, ctx.path_int("id"))
