"""regioncontrollers/ and rackcontrollers/ (a region+rack host appears in both)."""

from __future__ import annotations

from typing import Any

from starlette.responses import PlainTextResponse, Response

from metalplane.region.api import bson, render
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.api.handlers.machines import power_flat
from metalplane.region.services import controller_ops, controllers, racks
from metalplane.rpc import power_schema
from metalplane.rpc.nodes import RACK_TYPES, REGION_TYPES

region_controllers = Handler("RegionControllersHandler", "regioncontrollers/", "Manage region controllers.")
region_controller = Handler(
    "RegionControllerHandler", "regioncontrollers/{system_id}/", "Manage an individual region controller."
)
rack_controllers = Handler("RackControllersHandler", "rackcontrollers/", "Manage rack controllers.")
rack_controller = Handler(
    "RackControllerHandler", "rackcontrollers/{system_id}/", "Manage an individual rack controller."
)

READ_DOC = """List Nodes visible to the user, optionally filtered by criteria.

:param hostname: An optional hostname. Only nodes relating to the node with the matching hostname will
    be returned. This can be specified multiple times to see multiple nodes.
:type hostname: unicode
:param id: An optional list of system ids.  Only nodes relating to the nodes with matching system ids will be returned.
:type id: unicode
"""


async def list_regions(ctx: Ctx) -> list:
    system_ids, hostnames = ctx.params.get_list("id"), ctx.params.get_list("hostname")
    return render.regions(await ctx.run(controllers.show_regions, system_ids, hostnames))


async def list_racks(ctx: Ctx) -> list:
    system_ids, hostnames = ctx.params.get_list("id"), ctx.params.get_list("hostname")
    return render.racks(await ctx.run(racks.show_racks, system_ids, hostnames))


list_regions.__doc__ = list_racks.__doc__ = READ_DOC
region_controllers.read(list_regions)
rack_controllers.read(list_racks)


@region_controller.read
async def read_region(ctx: Ctx) -> dict:
    """Read a specific region controller."""
    return render.regions([await ctx.run(controllers.show_region, ctx.path["system_id"])])[0]


@rack_controller.read
async def read_rack(ctx: Ctx) -> dict:
    """Read a specific rack controller."""
    return render.racks(await ctx.run(racks.show_rack, ctx.path["system_id"]))[0]


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
    await ctx.run(racks.delete_rack, ctx.path["system_id"], force)


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


# -- what MAAS lets an admin do to a controller ----------------------------------------------

UPDATE_DOC = """Update a {kind} controller.

:param description: The new description of this controller.
:type description: unicode
:param zone: Name of a valid physical zone in which to place this controller.
:type zone: unicode
:param domain: The domain of this controller, by name (or id).
:type domain: unicode
:param power_type: The power type of this controller (stored and checked, not used: controllers are not power-managed).
:type power_type: unicode
:param power_parameters: The power parameters as a JSON object, or give each as power_parameters_NAME.
:type power_parameters: unicode
:param power_parameters_skip_check: Whether or not the new power parameters should be checked against
    the driver's schema.
:type power_parameters_skip_check: boolean
"""


def _update_fields(ctx: Ctx) -> dict[str, Any]:
    p = ctx.params
    fields: dict[str, Any] = {
        k: p.str(k) for k in ("description", "zone", "domain", "power_type", "power_parameters") if k in p
    }
    fields["power_flat"] = power_flat(ctx)
    fields["power_parameters_skip_check"] = bool(p.bool("power_parameters_skip_check", False))
    return fields


async def update_region(ctx: Ctx) -> dict:
    fields = _update_fields(ctx)
    async with ctx.tx() as conn:
        await controller_ops.update_controller(conn, REGION_TYPES, ctx.path["system_id"], fields)
        return render.regions([await controllers.show_region(conn, ctx.path["system_id"])])[0]


async def update_rack(ctx: Ctx) -> dict:
    fields = _update_fields(ctx)
    async with ctx.tx() as conn:
        await controller_ops.update_controller(conn, RACK_TYPES, ctx.path["system_id"], fields)
        return render.racks(await racks.show_rack(conn, ctx.path["system_id"]))[0]


update_region.__doc__ = UPDATE_DOC.format(kind="region")
update_rack.__doc__ = UPDATE_DOC.format(kind="rack")
region_controller.action("PUT", admin=True)(update_region)
rack_controller.action("PUT", admin=True)(update_rack)


def _details(types: tuple[int, ...]):
    async def details(ctx: Ctx) -> Response:
        """Get system details: the lshw and LLDP XML of the controller's last commissioning, as BSON
        ({"lshw": bytes|null, "lldp": bytes|null})."""
        found = await ctx.run(controller_ops.details, types, ctx.path["system_id"])
        return Response(bson.encode(found), media_type="application/bson")

    return details


def _power_parameters(types: tuple[int, ...]):
    async def power_parameters(ctx: Ctx) -> dict:
        """Get the power parameters of this controller (secrets included: admins only)."""
        return await ctx.run(controller_ops.power_parameters, types, ctx.path["system_id"])

    return power_parameters


def _all_power_parameters(types: tuple[int, ...]):
    async def all_power_parameters(ctx: Ctx) -> dict:
        """Get the power parameters of several controllers, by system_id.

        :param id: A system ID; repeat it for more. Without it, every controller.
        :type id: unicode
        """
        return await ctx.run(controller_ops.all_power_parameters, types, ctx.params.get_list("id"))

    return all_power_parameters


for types, one, many in (
    (REGION_TYPES, region_controller, region_controllers),
    (RACK_TYPES, rack_controller, rack_controllers),
):
    one.action("GET", "details")(_details(types))
    one.action("GET", "power_parameters", admin=True)(_power_parameters(types))
    many.action("GET", "power_parameters", admin=True)(_all_power_parameters(types))


@region_controller.action("DELETE", admin=True)
async def delete_region(ctx: Ctx) -> None:
    """Delete a region controller.

    As MAAS: refused while the region is running (it has live worker
    processes); stop it first. A region that is also a rack stays, as a rack.

    :param force: Accepted for MAAS's sake (a region has no VM hosts to force away).
    :type force: boolean
    """
    ctx.params.bool("force", False)
    await ctx.run(controller_ops.delete_region, ctx.path["system_id"])


@rack_controller.action("POST", "import_boot_images", admin=True)
async def import_rack_images(ctx: Ctx) -> Response:
    """Import the boot images on this rack controller: it syncs its image cache with
    the region's boot resources now (racks also do so whenever those change)."""
    await ctx.run(controller_ops.import_boot_images, ctx.path["system_id"])
    return PlainTextResponse("Accepted", status_code=202)


@rack_controllers.action("POST", "import_boot_images", admin=True)
async def import_all_rack_images(ctx: Ctx) -> Response:
    """Import the boot images on all rack controllers (each syncs its image cache now)."""
    await ctx.run(controller_ops.import_boot_images)
    return PlainTextResponse("Accepted", status_code=202)


@rack_controller.action("GET", "list_boot_images", admin=True)
async def list_rack_images(ctx: Ctx) -> dict:
    """List the boot images this rack controller serves.

    The region's complete boot resources, which the rack caches; "connected"
    says whether the rack is connected to a region now. A rack does not report
    its cache yet, so "status" is "synced" while it is connected (it re-syncs
    on every change) and "unknown" otherwise.
    """
    return await ctx.run(controller_ops.boot_images, ctx.path["system_id"])


@rack_controllers.action("GET", "describe_power_types", admin=True)
async def describe_power_types(ctx: Ctx) -> list:
    """Get the power types the rack controllers support (name, description, fields)."""
    return power_schema.describe_power_types()
