"""ipaddresses/: addresses users reserve (read, reserve, release)."""

from __future__ import annotations

from metalplane.region.api import render, render_nodes
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.services import ipaddresses as svc

ipaddresses = Handler("IPAddressesHandler", "ipaddresses/", "Manage IP addresses allocated by MAAS.")

ALLOC_TYPE_NAMES = {0: "Auto", 1: "Sticky", 4: "User reserved", 5: "DHCP", 6: "Discovered"}


def rendered(shown: svc.Addresses) -> list:
    view = shown.nodes
    by_node = {n["id"]: n for n in view.nodes}
    out = []
    for a in shown.addresses:
        node = by_node.get(a["node_id"])
        ifaces = [i for i in (render_nodes.interfaces(view, node) if node else []) if i["id"] == a["iface_id"]]
        owner = shown.owners.get(a["owner_name"]) if a["owner_name"] else None
        out.append(
            {
                "alloc_type": a["alloc_type"],
                "alloc_type_name": ALLOC_TYPE_NAMES.get(a["alloc_type"], "Unknown"),
                "created": a["created"].isoformat(),
                "ip": str(a["ip"]),
                "owner": render.user(owner) if owner else None,
                "interface_set": ifaces,
                "subnet": render.subnet(view.subnets[a["subnet_id"]], view.vlans)
                if a["subnet_id"] in view.subnets
                else None,
                "resource_uri": render.uri("ipaddresses/"),
            }
        )
    return out


@ipaddresses.read
async def list_addresses(ctx: Ctx) -> list:
    """List IP addresses: by default the caller's reservations.

    :param ip: Only this address.
    :type ip: unicode
    :param all: (Admins) every address MAAS knows, not only reservations.
    :type all: boolean
    :param owner: (Admins) only this user's addresses.
    :type owner: unicode
    """
    async with ctx.tx() as conn:
        found = await svc.list_addresses(
            conn, ctx.me, ctx.params.str("ip"), bool(ctx.params.bool("all", False)), ctx.params.str("owner")
        )
        return rendered(await svc.show(conn, found))


@ipaddresses.action("POST", "reserve")
async def reserve(ctx: Ctx) -> dict:
    """Reserve an IP address for use outside of MAAS: the address given, or a free one of the subnet.

    :param subnet: The subnet (CIDR, id or name) to reserve an address in.
    :type subnet: unicode
    :param ip: The address to reserve (in a known subnet).
    :type ip: unicode
    :param ip_address: Deprecated alias of ip.
    :type ip_address: unicode
    :param hostname: A hostname for the address.
    :type hostname: unicode
    :param mac: A MAC address (no node's) the reservation is for.
    :type mac: unicode
    """
    p = ctx.params
    ip = p.str("ip") if "ip" in p else p.str("ip_address")
    return rendered(await ctx.run(svc.reserve, ctx.me, p.str("subnet"), ip, p.str("hostname"), p.str("mac")))[0]


@ipaddresses.action("POST", "release")
async def release(ctx: Ctx) -> None:
    """Release an IP address the caller reserved.

    :param ip: The address to release.
    :type ip: unicode
    :param force: (Admins) release it whoever holds it.
    :type force: boolean
    :param discovered: With force: release a discovered address.
    :type discovered: boolean
    """
    p = ctx.params
    await ctx.run(svc.release, ctx.me, p.str("ip"), bool(p.bool("force", False)), bool(p.bool("discovered", False)))
