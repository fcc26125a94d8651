"""zones/ and zones/{name}/."""

from __future__ import annotations

from metalplane.region.api import render
from metalplane.region.api.context import Ctx
from metalplane.region.api.crud import Crud, given, path_key
from metalplane.region.api.framework import Handler
from metalplane.region.services import zones as svc

zones = Handler("ZonesHandler", "zones/", "Manage physical zones.")
zone = Handler("ZoneHandler", "zones/{name}/", "Manage a physical zone.")
crud = Crud(zones, (zone,), render.zone, key=path_key("name"))
crud.list_all(svc.list_zones, "List all physical zones.")
crud.read(svc.get_zone, "GET request.  Return zone.")
crud.update(
    svc.update_zone,
    given({"name": "str", "description": "str"}),
    """PUT request.  Update zone.

    :param name: Identifier-style name for the zone.
    :type name: unicode
    :param description: Free-form description of the zone.
    :type description: unicode
    """,
)
crud.delete(svc.delete_zone, "DELETE request.  Delete zone.")


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
