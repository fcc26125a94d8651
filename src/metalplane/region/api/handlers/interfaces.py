"""nodes/{system_id}/interfaces/ and .../interfaces/{id}/: a node's interfaces and their links."""

from __future__ import annotations

from metalplane.region.api import render_nodes
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.services import interfaces as svc
from metalplane.region.services.nodes import NodesView
from metalplane.region.services.rows import Row

interfaces = Handler("InterfacesHandler", "nodes/{system_id}/interfaces/", "Manage interfaces on a node.")
interface = Handler("InterfaceHandler", "nodes/{system_id}/interfaces/{id}/", "Manage a node's or device's interface.")


def one(shown: tuple[Row, int, NodesView]) -> dict:
    _, iface_id, view = shown
    return next(i for i in render_nodes.interfaces(view, view.nodes[0]) if i["id"] == iface_id)


@interfaces.read
async def list_interfaces(ctx: Ctx) -> list:
    """List all interfaces belonging to a machine, device, or rack controller."""
    _, view = await ctx.run(svc.list_interfaces, ctx.path["system_id"], ctx.me)
    return render_nodes.interfaces(view, view.nodes[0])


@interfaces.action("POST", "create_physical")
async def create_physical(ctx: Ctx) -> dict:
    """Create a physical interface on a machine (admins) or a device (its owner).

    :param name: Name of the interface (default: ethN).
    :type name: unicode
    :param mac_address: MAC address of the interface.
    :type mac_address: unicode
    :param tags: Tags for the interface (comma separated).
    :type tags: unicode
    :param vlan: Id of the untagged VLAN the interface is connected to.
    :type vlan: unicode
    :param mtu: Maximum transmission unit.
    :type mtu: integer
    :param accept_ra: Accept router advertisements (IPv6 only).
    :type accept_ra: boolean
    """
    fields = ctx.params.given(
        {"name": "str", "mac_address": "str", "tags": "str", "vlan": "str", "mtu": "int", "accept_ra": "bool"}
    )
    return one(await ctx.run(svc.create_physical, ctx.path["system_id"], fields, ctx.me))


@interface.read
async def read_interface(ctx: Ctx) -> dict:
    """Read an interface (by id, or name:, mac: specifiers)."""
    return one(await ctx.run(svc.show_interface, ctx.path["system_id"], ctx.path["id"], ctx.me))


@interface.action("PUT")
async def update_interface(ctx: Ctx) -> dict:
    """Update an interface. A controller's interface takes vlan and the link facts; a deployed
    machine's only name, mac_address and the link facts.

    :param name: Name of the interface.
    :type name: unicode
    :param mac_address: MAC address of the interface.
    :type mac_address: unicode
    :param tags: Tags for the interface (comma separated).
    :type tags: unicode
    :param vlan: Id of the VLAN the interface is connected to.
    :type vlan: integer
    :param mtu: Maximum transmission unit.
    :type mtu: integer
    :param enabled: Whether the interface is enabled.
    :type enabled: boolean
    :param link_connected: Whether the interface is physically connected to an uplink.
    :type link_connected: boolean
    :param interface_speed: The speed of the interface in Mbit/s.
    :type interface_speed: integer
    :param link_speed: The speed of the link in Mbit/s.
    :type link_speed: integer
    """
    fields = ctx.params.given(
        {
            "name": "str",
            "mac_address": "str",
            "tags": "str",
            "vlan": "str",
            "mtu": "int",
            "enabled": "bool",
            "link_connected": "bool",
            "interface_speed": "int",
            "link_speed": "int",
        }
    )
    return one(await ctx.run(svc.update_interface, ctx.path["system_id"], ctx.path["id"], fields, ctx.me))


@interface.action("DELETE")
async def delete_interface(ctx: Ctx) -> None:
    """Delete an interface (not a controller's)."""
    await ctx.run(svc.delete_interface, ctx.path["system_id"], ctx.path["id"], ctx.me)


@interface.action("POST", "link_subnet")
async def link_subnet(ctx: Ctx) -> dict:
    """Link an interface to a subnet.

    :param mode: auto (an address from the subnet at deployment), dhcp, static (the address
        given, or a free one of the subnet) or link_up (no address). Devices: static only.
    :type mode: unicode
    :param subnet: The subnet (id, CIDR or name) to link to.
    :type subnet: integer
    :param ip_address: The static address (static mode).
    :type ip_address: unicode
    :param force: Replace every other link, and allow a subnet of another VLAN.
    :type force: boolean
    :param default_gateway: Make the subnet's gateway the node's default gateway (auto, static).
    :type default_gateway: boolean
    """
    fields = ctx.params.given(
        {"mode": "str", "subnet": "str", "ip_address": "str", "force": "bool", "default_gateway": "bool"}
    )
    return one(await ctx.run(svc.link_subnet, ctx.path["system_id"], ctx.path["id"], fields, ctx.me))


@interface.action("POST", "unlink_subnet")
async def unlink_subnet(ctx: Ctx) -> dict:
    """Remove a link (one of the interface's links) from an interface.

    :param id: The id of the link.
    :type id: integer
    """
    return one(await ctx.run(svc.unlink_subnet, ctx.path["system_id"], ctx.path["id"], ctx.params.str("id"), ctx.me))


@interface.action("POST", "set_default_gateway")
async def set_default_gateway(ctx: Ctx) -> dict:
    """Make a link's subnet gateway the node's default gateway (for its address family).

    :param link_id: The link whose gateway to use (optional when there is one per family).
    :type link_id: integer
    """
    async with ctx.tx() as conn:
        return one(
            await svc.set_default_gateway(
                conn, ctx.path["system_id"], ctx.path["id"], ctx.params.str("link_id"), ctx.me
            )
        )


@interface.action("POST", "disconnect")
async def disconnect(ctx: Ctx) -> dict:
    """Disconnect an interface: its links are removed and its VLAN unset."""
    return one(await ctx.run(svc.disconnect, ctx.path["system_id"], ctx.path["id"], ctx.me))


@interface.action("POST", "add_tag")
async def add_tag(ctx: Ctx) -> dict:
    """Add a tag to an interface.

    :param tag: The tag to add.
    :type tag: unicode
    """
    return await _change_tag(ctx, add=True)


@interface.action("POST", "remove_tag")
async def remove_tag(ctx: Ctx) -> dict:
    """Remove a tag from an interface.

    :param tag: The tag to remove.
    :type tag: unicode
    """
    return await _change_tag(ctx, add=False)


async def _change_tag(ctx: Ctx, add: bool) -> dict:
    return one(await ctx.run(svc.change_tag, ctx.path["system_id"], ctx.path["id"], ctx.params.str("tag"), add, ctx.me))
