"""devices/ and devices/{system_id}/: non-deployable nodes with MACs and addresses."""

from __future__ import annotations

from starlette.responses import Response

from metalplane.region.api import render_nodes
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.api.handlers import nodes as nodes_handlers
from metalplane.region.api.handlers.node_docs import NODE_FILTERS_DOC, RENAMING_DOC, bson_details, naming_doc
from metalplane.region.api.handlers.nodes import filter_values
from metalplane.region.services import devices as svc
from metalplane.region.services import node_ops

devices = Handler("DevicesHandler", "devices/", "Manage devices.")
device = Handler("DeviceHandler", "devices/{system_id}/", "Manage an individual device.")


async def list_devices(ctx: Ctx) -> list:
    return render_nodes.devices(await ctx.run(node_ops.read_nodes, filter_values(ctx), ctx.me, svc.DEVICE_TYPES))


list_devices.__doc__ = "List devices visible to the user, optionally filtered by criteria.\n" + NODE_FILTERS_DOC
devices.read(list_devices)


@devices.action(
    "POST",
    doc="Create a new device; it belongs to the caller.\n"
    + naming_doc("device")
    + """:param mac_addresses: One or more MAC addresses for the device (repeatable).
:type mac_addresses: unicode
:param parent: The system_id of the device's parent node.
:type parent: unicode
:param zone: The zone of the device (default: the default zone).
:type zone: unicode
""",
)
async def create_device(ctx: Ctx) -> dict:
    fields = {
        **ctx.params.given({"hostname": "str", "description": "str", "domain": "str", "parent": "str", "zone": "str"}),
        "mac_addresses": ctx.params.get_list("mac_addresses"),
    }
    return render_nodes.devices(await ctx.run(svc.create_device, fields, ctx.me))[0]


# MAAS's devices/ collection has the nodes/ collection's operations.
devices.action("GET", "is_registered")(nodes_handlers.is_registered)
devices.action("POST", "set_zone", admin=True)(nodes_handlers.set_zone)


@device.read
async def read_device(ctx: Ctx) -> dict:
    """Read a device."""
    return render_nodes.devices(await ctx.run(svc.show_device, ctx.path["system_id"], ctx.me))[0]


@device.action(
    "PUT",
    doc="Update a device (its owner or an admin).\n"
    + RENAMING_DOC
    + """:param parent: The system_id of the device's parent node (empty: none).
:type parent: unicode
:param zone: The name of the zone the device moves to.
:type zone: unicode
""",
)
async def update_device(ctx: Ctx) -> dict:
    fields = ctx.params.given(
        {"hostname": "str", "description": "str", "domain": "str", "parent": "str", "zone": "str"}
    )
    return render_nodes.devices(await ctx.run(svc.update_device, ctx.path["system_id"], fields, ctx.me))[0]


@device.action("DELETE")
async def delete_device(ctx: Ctx) -> None:
    """Delete a device (its owner or an admin)."""
    await ctx.run(svc.delete_device, ctx.path["system_id"], ctx.me)


@device.action("GET", "details")
async def device_details(ctx: Ctx) -> Response:
    """Get system details (a device has no hardware document: "lshw" is null)."""
    return bson_details(await ctx.run(svc.get_device, ctx.path["system_id"], ctx.me))


@device.action("GET", "power_parameters", admin=True)
async def power_parameters(ctx: Ctx) -> dict:
    """Get the power parameters of a device (devices have none)."""
    await ctx.run(svc.get_device, ctx.path["system_id"])
    return {}


async def set_annotations(ctx: Ctx) -> dict:
    changes = {k: ctx.params.str(k) or "" for k in ctx.params.names() if k != "op"}
    async with ctx.tx() as conn:
        return render_nodes.devices(
            await svc.set_annotations(conn, ctx.path["system_id"], changes, ctx.me, svc.DEVICE_TYPES)
        )[0]


set_annotations.__doc__ = """Set key=value workload annotations on a device you own; an empty value removes the key.

:param key: Any key=value pair (repeat with other keys).
:type key: unicode
"""
device.action("POST", "set_workload_annotations")(set_annotations)


async def set_owner_data(ctx: Ctx) -> dict:
    return await set_annotations(ctx)


set_owner_data.__doc__ = "Deprecated, use set-workload-annotations.\n\n" + set_annotations.__doc__.split("\n", 1)[1]
device.action("POST", "set_owner_data")(set_owner_data)


@device.action("POST", "restore_networking_configuration", admin=True)
async def restore_networking(ctx: Ctx) -> dict:
    """Reset the device's networking: its interfaces keep their MACs, their links are removed."""
    return render_nodes.devices(await ctx.run(svc.restore_networking, ctx.path["system_id"]))[0]


@device.action("POST", "restore_default_configuration", admin=True)
async def restore_default(ctx: Ctx) -> dict:
    """Reset the device's configuration (its networking) to the defaults."""
    return render_nodes.devices(await ctx.run(svc.restore_networking, ctx.path["system_id"]))[0]
