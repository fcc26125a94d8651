"""zones/ and zones/{name}/."""

from __future__ import annotations

from metalplane.region.api import render
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.services import zones as svc

zones = Handler("ZonesHandler", "zones/", "Manage physical zones.")
zone = Handler("ZoneHandler", "zones/{name}/", "Manage a physical zone.")


@zones.read
async def list_zones(ctx: Ctx) -> list:
    """List all physical zones."""
    return [render.zone(z) for z in await ctx.run(svc.list_zones)]


@zones.action("POST", admin=True)
async def create_zone(ctx: Ctx) -> dict:
    """Create a new physical zone.

    :param name: Identifier-style name for the new zone.
    :type name: unicode
    :param description: Free-form description of the new zone.
    :type description: unicode
    """
    name, description = ctx.params.str("name", required=True) or "", ctx.params.str("description", "") or ""
    return render.zone(await ctx.run(svc.create_zone, name, description))


@zone.read
async def read_zone(ctx: Ctx) -> dict:
    """GET request.  Return zone."""
    return render.zone(await ctx.run(svc.get_zone, ctx.path["name"]))


@zone.action("PUT", admin=True)
async def update_zone(ctx: Ctx) -> dict:
    """PUT request.  Update zone.

    :param name: Identifier-style name for the zone.
    :type name: unicode
    :param description: Free-form description of the zone.
    :type description: unicode
    """
    changes = ctx.params.given({"name": "str", "description": "str"})
    return render.zone(await ctx.run(svc.update_zone, ctx.path["name"], changes))


@zone.action("DELETE", admin=True)
async def delete_zone(ctx: Ctx) -> None:
    """DELETE request.  Delete zone."""
    await ctx.run(svc.delete_zone, ctx.path["name"])
