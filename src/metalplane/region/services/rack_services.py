"""What each rack's resolver, chronyd and ARP listener follow: the `GetServicesConfig` reply.

MAAS's rules, from the model:

* the resolver forwards the zones the regions serve to every region that runs
  named, and the rest to `upstream_dns` (`dnssec_validation` applies); it
  listens on the rack's addresses and answers the subnets it is on;
* chronyd follows every region that runs chronyd, or `ntp_servers` directly
  when `ntp_external_only`, and serves the rack's subnets. On a host that is
  region and rack (one node), the region's chronyd is the host's one and serves
  the rack's networks too (`shared`);
* the ARP listener runs on every interface of the rack that has a VLAN, while
  `network_discovery` is "enabled".
"""

from __future__ import annotations

from ipaddress import ip_address, ip_network
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import controller_info, interfaces, ip_addresses, nodes, subnets, vlans
from metalplane.region.services import dns_model, settings
from metalplane.region.services.rows import only_row
from metalplane.rpc.nodes import NodeType


async def rack_networks(conn: AsyncConnection, rack_id: int) -> tuple[list[str], list[str], dict[str, int | None]]:
    """(the rack's addresses, the subnets they are on, {interface: vid} for interfaces with a VLAN)."""
    rows = await conn.execute(
        select(interfaces.c.id, interfaces.c.name, vlans.c.vid)
        .outerjoin(vlans, vlans.c.id == interfaces.c.vlan_id)
        .where(interfaces.c.node_id == rack_id)
        .order_by(interfaces.c.name)
    )
    ifaces = {r.id: (r.name, r.vid) for r in rows}
    addresses: list[str] = []
    networks: list[str] = []
    if ifaces:
        found = await conn.execute(
            select(ip_addresses.c.ip, subnets.c.cidr)
            .outerjoin(subnets, subnets.c.id == ip_addresses.c.subnet_id)
            .where(ip_addresses.c.interface_id.in_(list(ifaces)))
            .order_by(ip_addresses.c.id)
        )
        for ip, cidr in found:
            if ip_address(str(ip)).is_link_local:
                continue
            addresses.append(str(ip))
            if cidr is not None and str(cidr) not in networks:
                networks.append(str(cidr))
    return addresses, networks, {name: vid for name, vid in ifaces.values() if vid is not None}


async def rack_services(conn: AsyncConnection, rack_id: int) -> dict[str, Any]:
    """The ServicesConfig (rpc.services) of rack `rack_id`, as its wire dict."""
    regions = await dns_model.region_services(conn)
    dns_regions = [r for r in regions if r.dns_port]
    addresses, networks, by_interface = await rack_networks(conn, rack_id)
    node = await only_row(
        conn,
        select(nodes.c.node_type, controller_info.c.ntp_port)
        .outerjoin(controller_info, controller_info.c.node_id == nodes.c.id)
        .where(nodes.c.id == rack_id),
    )
    shared = node.node_type == NodeType.REGION_AND_RACK_CONTROLLER and bool(node.ntp_port)
    return {
        "dns": {
            "zones": list(await dns_model.zone_names(conn, [r.address for r in dns_regions])),
            "regions": [{"address": r.address, "port": r.dns_port} for r in dns_regions],
            "upstream_dns": settings.as_list(await settings.get_setting(conn, "upstream_dns")),
            "dnssec_validation": await settings.get_setting(conn, "dnssec_validation"),
            "listen": addresses,
            "allow": [str(ip_network(n)) for n in networks],
        },
        "ntp": {
            "regions": [{"host": r.address, "port": r.ntp_port} for r in regions if r.ntp_port],
            "ntp_servers": settings.as_list(await settings.get_setting(conn, "ntp_servers")),
            "external_only": bool(await settings.get_setting(conn, "ntp_external_only")),
            "allow": networks,
            "shared": shared,
        },
        "discovery": {
            "enabled": await settings.get_setting(conn, "network_discovery") == "enabled",
            "interfaces": by_interface,
        },
    }


async def region_ntp_sources(
    conn: AsyncConnection, system_id: str
) -> tuple[list[str], list[tuple[str, int]], list[str]]:
    """A region's chronyd: (ntp_servers, the other regions' (address, port) to peer with, every
    subnet MAAS knows: the machines it may serve, directly or as the host's one chronyd)."""
    others = [
        (r.address, r.ntp_port)
        for r in await dns_model.region_services(conn)
        if r.ntp_port and r.system_id != system_id
    ]
    known = [str(c) for (c,) in await conn.execute(select(subnets.c.cidr).order_by(subnets.c.id))]
    return settings.as_list(await settings.get_setting(conn, "ntp_servers")), others, known
