"""fabrics/ and fabrics/{id}/."""

from __future__ import annotations

from metalplane.region.api import render
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.services import network

FIELDS = {"name": "str", "description": "str", "class_type": "str"}
FIELDS_DOC = """
:param name: Name of the fabric.
:type name: unicode
:param description: Description of the fabric.
:type description: unicode
:param class_type: Class type of the fabric.
:type class_type: unicode
"""

fabrics = Handler("FabricsHandler", "fabrics/", "Manage fabrics.")
fabric = Handler("FabricHandler", "fabrics/{id}/", "Manage fabric.")


@fabrics.read
async def list_fabrics(ctx: Ctx) -> list:
    """List all fabrics."""
    return render.fabrics(await ctx.run(network.show_fabrics))


@fabrics.action("POST", admin=True, doc="Create a fabric.\n" + FIELDS_DOC)
async def create_fabric(ctx: Ctx) -> dict:
    p = ctx.params
    name, description, class_type = p.str("name") or None, p.str("description", "") or "", p.str("class_type") or None
    return render.fabrics(await ctx.run(network.create_fabric, name, description, class_type))[0]


@fabric.read
async def read_fabric(ctx: Ctx) -> dict:
    """Read a fabric, by id or by MAAS's specifier (a name, "fabric-3", "name:NAME", "class:CLASS")."""
    return render.fabrics(await ctx.run(network.show_fabrics, ctx.path["id"]))[0]


@fabric.action("PUT", admin=True, doc="Update fabric.\n" + FIELDS_DOC)
async def update_fabric(ctx: Ctx) -> dict:
    changes = ctx.params.given(FIELDS)
    return render.fabrics(await ctx.run(network.update_fabric, ctx.path["id"], changes))[0]


@fabric.action("DELETE", admin=True)
async def delete_fabric(ctx: Ctx) -> None:
    """Delete a fabric."""
    await ctx.run(network.delete_fabric, ctx.path["id"])
