"""nodes/ and nodes/{system_id}/: every node (machines, devices, controllers) as MAAS lists them."""

from __future__ import annotations

from starlette.responses import Response

from metalplane.region.api import render_nodes
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.api.handlers.node_docs import NODE_FILTERS_DOC, bson_details
from metalplane.region.services import node_ops
from metalplane.region.services import nodes as nodes_service

nodes = Handler("NodesHandler", "nodes/", "Manage the collection of all the nodes in the MAAS.")
node = Handler("NodeHandler", "nodes/{system_id}/", "Manage an individual Node.")


def filter_values(ctx: Ctx) -> dict[str, list[str]]:
    return {name: ctx.params.get_list(name) for name in ctx.params.names() if name != "op"}


async def list_nodes(ctx: Ctx) -> list:
    return render_nodes.nodes(await ctx.run(node_ops.read_nodes, filter_values(ctx), ctx.me))


list_nodes.__doc__ = "List Nodes visible to the user, optionally filtered by criteria.\n" + NODE_FILTERS_DOC
nodes.read(list_nodes)


@nodes.action("GET", "is_registered")
async def is_registered(ctx: Ctx) -> bool:
    """Whether a MAC address is registered to a node (Retired nodes aside).

    :param mac_address: The MAC address to look for.
    :type mac_address: unicode
    """
    return await ctx.run(node_ops.is_registered, ctx.params.str("mac_address"))


@nodes.action("POST", "set_zone", admin=True)
async def set_zone(ctx: Ctx) -> None:
    """Assign nodes to a physical zone.

    :param zone: The name of the zone.
    :type zone: unicode
    :param nodes: The system_id of a node to move (repeatable).
    :type nodes: unicode
    """
    await ctx.run(node_ops.set_zone, ctx.params.str("zone"), ctx.params.get_list("nodes"))


@node.read
async def read_node(ctx: Ctx) -> dict:
    """Read a node, in the shape of its type (machine, device, controller)."""
    return render_nodes.nodes(await ctx.run(node_ops.show_node, ctx.path["system_id"], ctx.me))[0]


@node.action("DELETE", admin=True)
async def delete_node(ctx: Ctx) -> None:
    """Delete a node."""
    await ctx.run(node_ops.delete_node, ctx.path["system_id"])


@node.action("GET", "details")
async def node_details(ctx: Ctx) -> Response:
    """Get system details: a BSON document with the hardware document under "lshw"."""
    found = await ctx.run(nodes_service.get_node, ctx.path["system_id"], viewer=ctx.me)
    return bson_details(found)


@node.action("GET", "power_parameters", admin=True)
async def node_power_parameters(ctx: Ctx) -> dict:
    """Get the power parameters of a node (passwords included; admin only)."""
    return await ctx.run(node_ops.power_parameters_of, ctx.path["system_id"])
