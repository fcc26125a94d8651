"""regioncontrollers/ and rackcontrollers/ (a region+rack host appears in both)."""

from __future__ import annotations

from metalplane.region.api import render
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.services import controllers, racks

region_controllers = Handler("RegionControllersHandler", "regioncontrollers/", "Manage region controllers.")
region_controller = Handler("RegionControllerHandler", "regioncontrollers/{system_id}/",
                            "Manage an individual region controller.")
rack_controllers = Handler("RackControllersHandler", "rackcontrollers/", "Manage rack controllers.")
rack_controller = Handler("RackControllerHandler", "rackcontrollers/{system_id}/",
                          "Manage an individual rack controller.")

READ_DOC = """List Nodes visible to the user, optionally filtered by criteria.

:param hostname: An optional hostname. Only nodes relating to the node with the matching hostname will be returned. This can be specified multiple times to see multiple nodes.
:type hostname: unicode
:param id: An optional list of system ids.  Only nodes relating to the nodes with matching system ids will be returned.
:type id: unicode
"""


async def list_regions(ctx: Ctx) -> list:
    system_ids, hostnames = ctx.params.get_list("id"), ctx.params.get_list("hostname")
    async with ctx.tx() as conn:
        return render.regions(await controllers.show_regions(conn, system_ids, hostnames))


async def list_racks(ctx: Ctx) -> list:
    system_ids, hostnames = ctx.params.get_list("id"), ctx.params.get_list("hostname")
    async with ctx.tx() as conn:
        return render.racks(await racks.show_racks(conn, system_ids, hostnames))


list_regions.__doc__ = list_racks.__doc__ = READ_DOC
region_controllers.read(list_regions)
rack_controllers.read(list_racks)


@region_controller.read
async def read_region(ctx: Ctx) -> dict:
    """Read a specific region controller."""
    async with ctx.tx() as conn:
        return render.regions([await controllers.show_region(conn, ctx.path["system_id"])])[0]


@rack_controller.read
async def read_rack(ctx: Ctx) -> dict:
    """Read a specific rack controller."""
    async with ctx.tx() as conn:
        return render.racks(await racks.show_rack(conn, ctx.path["system_id"]))[0]


@rack_controller.action("DELETE", admin=True)
async def delete_rack(ctx: Ctx) -> None:
    """Delete a specific rack controller.

    Refused while the rack is the primary or secondary DHCP rack of a VLAN with
    DHCP on, unless force is given: then DHCP is turned off on the VLANs where
    it is primary, and it is removed as secondary elsewhere. A region+rack host
    stays registered as a region. The rack software is told to stop; if it
    still runs later (e.g. it was unreachable), it registers again.

    :param force: Delete even while the rack serves DHCP.
    :type force: boolean
    """
    force = bool(ctx.params.bool("force", False))
    async with ctx.tx() as conn:
        await racks.delete_rack(conn, ctx.path["system_id"], force)


@rack_controllers.action("GET", "connections")
async def rack_connections(ctx: Ctx) -> dict:
    """Show how rack RPC connections are spread over region workers.

    Returns per-worker and per-region connection counts, each rack's
    connections, the max/mean ratio over workers and the balance threshold.
    With check=true this region also pings every rack over RPC.

    :param check: Ping every rack from this region and report which answer.
    :type check: boolean
    """
    return await racks.connection_spread(ctx.work, ctx.rpc, bool(ctx.params.bool("check", False)))
