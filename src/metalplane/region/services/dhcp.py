"""DHCP from the model: what each rack must serve, and who may serve it.

`rack_dhcp_state` builds the wire dict the rack's DHCP engine applies (see
metalplane.rack.dhcp for the contract). The decisions — which role a rack has
on a VLAN, who its peer is — are pure functions in metalplane.ha.dhcp_peers;
the queries here feed them.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address, ip_network
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.ha.dhcp_peers import pairing, pick_candidate, role_on_vlan
from metalplane.region.db.tables import interfaces, ip_addresses, ipranges, nodes, subnets, vlans
from metalplane.region.services import connections, settings
from metalplane.region.services.domain_views import default_domain_name, search_list
from metalplane.rpc.nodes import RACK_TYPES, NodeType


@dataclass(frozen=True)
class RackOnVlan:
    node_id: int
    system_id: str
    hostname: str
    interface: str
    address: str | None
    addresses6: tuple[str, ...] = ()  # its global IPv6 addresses there


async def racks_on_vlans(conn: AsyncConnection) -> dict[int, list[RackOnVlan]]:
    """For each VLAN id: the racks with an interface on it, and their address there."""
    rows = await conn.execute(
        select(
            interfaces.c.vlan_id,
            interfaces.c.id.label("iface_id"),
            interfaces.c.name,
            *nodes.c["id", "system_id", "hostname"],
        )
        .join(nodes, nodes.c.id == interfaces.c.node_id)
        .where(nodes.c.node_type.in_(RACK_TYPES), interfaces.c.vlan_id.isnot(None))
        .order_by(nodes.c.system_id, interfaces.c.name)
    )
    addresses: dict[int, list[str]] = {}
    for a in await conn.execute(
        select(ip_addresses.c.interface_id, ip_addresses.c.ip)
        .where(ip_addresses.c.interface_id.isnot(None))
        .order_by(ip_addresses.c.id)
    ):
        addresses.setdefault(a.interface_id, []).append(str(a.ip))
    out: dict[int, list[RackOnVlan]] = {}
    for r in rows:
        v4 = [a for a in addresses.get(r.iface_id, []) if ip_address(a).version == 4]
        v6 = tuple(
            a for a in addresses.get(r.iface_id, []) if ip_address(a).version == 6 and not ip_address(a).is_link_local
        )
        out.setdefault(r.vlan_id, []).append(
            RackOnVlan(r.id, r.system_id, r.hostname, r.name, v4[0] if v4 else None, v6)
        )
    return out


async def alive_racks(conn: AsyncConnection) -> set[int]:
    return set(await connections.connected_regions(conn))


async def candidate_secondaries(conn: AsyncConnection) -> dict[int, str | None]:
    """VLAN id -> candidate secondary rack (system_id) for every VLAN with DHCP on."""
    on_vlans = await racks_on_vlans(conn)
    alive = await alive_racks(conn)
    system_ids = {r.node_id: r.system_id for racks in on_vlans.values() for r in racks}
    out: dict[int, str | None] = {}
    for v in await conn.execute(select(vlans).where(vlans.c.dhcp_on.is_(True))):
        racks = on_vlans.get(v.id, [])
        out[v.id] = pick_candidate(
            [r.system_id for r in racks],
            system_ids.get(v.primary_rack_id),
            system_ids.get(v.secondary_rack_id),
            {r.system_id for r in racks if r.node_id in alive},
        )
    return out


def addresses_of(version: int, addresses: list[str]) -> list[str]:
    """The IPv`version` addresses among `addresses`: a DHCP option carries its family's only."""
    out = []
    for item in addresses:
        try:
            if ip_address(item).version == version:
                out.append(item)
        except ValueError:
            continue  # a hostname (ntp_servers may hold them): DHCP options carry addresses only
    return out


def ipv4_only(addresses: list[str]) -> list[str]:
    return addresses_of(4, addresses)


def ntp_option(racks: list[str], external: list[str], external_only: bool) -> list[str]:
    """DHCP's NTP servers (addresses only), as MAAS decides: the racks on the VLAN (each
    serves NTP to its VLANs), or with `ntp_external_only` the external servers given as
    literal addresses (hostnames cannot go in the option; the racks stand in when there
    are none)."""
    if external_only and external:
        return external
    return racks


def _pools(dynamic: list[tuple[str, str]]) -> list[list[str]]:
    return [[s, e] for s, e in sorted(dynamic, key=lambda r: ip_address(r[0]))]


async def rack_dhcp_state(conn: AsyncConnection, rack_id: int) -> dict[str, Any]:
    """Everything rack `rack_id` must serve, as the rack's DHCP engine expects it."""
    on_vlans = await racks_on_vlans(conn)
    lease_time = await settings.get_setting(conn, "dhcp_lease_time")
    mode = await settings.get_setting(conn, "dhcp_ha_mode")
    ntp_servers = settings.as_list(await settings.get_setting(conn, "ntp_servers"))
    ntp_external_only = bool(await settings.get_setting(conn, "ntp_external_only"))
    domain = await default_domain_name(conn)  # MAAS: the default domain, for every subnet
    search = await search_list(conn, domain)  # then the other authoritative domains
    served = await conn.execute(
        select(vlans)
        .where(vlans.c.dhcp_on.is_(True), (vlans.c.primary_rack_id == rack_id) | (vlans.c.secondary_rack_id == rack_id))
        .order_by(vlans.c.id)
    )
    out_vlans: list[dict[str, Any]] = []
    out_vlans6: list[dict[str, Any]] = []
    problems: list[str] = []
    for v in served:
        role = role_on_vlan(rack_id, v.primary_rack_id, v.secondary_rack_id)
        racks = {r.node_id: r for r in on_vlans.get(v.id, [])}
        me = racks.get(rack_id)
        if role is None:
            continue
        if me is None or me.address is None:
            problems.append(f"no interface with an IPv4 address on VLAN {v.vid} (id {v.id})")
            continue
        addressed = {r.node_id for r in racks.values() if r.address is not None}
        serving, peer_id = pairing(role, v.primary_rack_id, v.secondary_rack_id, addressed)
        if serving != role:
            problems.append(f"the peer rack has no IPv4 address on VLAN {v.vid}; serving it alone")
        role, peer = serving, racks[peer_id] if peer_id is not None else None
        # MAAS: the machines ask the racks on their VLAN for names and time (the resolver and
        # chronyd of rack.host_services), both racks of an HA pair, this one first.
        racks_here = [me.address] + ([peer.address] if peer is not None and peer.address else [])
        out_subnets, out_subnets6 = [], []
        for s in await conn.execute(select(subnets).where(subnets.c.vlan_id == v.id).order_by(subnets.c.id)):
            network = ip_network(str(s.cidr))
            ranges = list(await conn.execute(select(ipranges).where(ipranges.c.subnet_id == s.id)))
            dynamic = [(str(r.start_ip), str(r.end_ip)) for r in ranges if r.type == "dynamic"]
            if not dynamic:
                continue
            if network.version == 6:
                out_subnets6.append(
                    _subnet6(s, network, ranges, dynamic, me, peer, ntp_servers, ntp_external_only, lease_time, search)
                )
                continue
            if ip_address(me.address) not in network:
                continue
            out_subnets.append(
                {
                    "subnet_id": s.id,
                    "cidr": str(network),
                    "gateway_ip": str(s.gateway_ip) if s.gateway_ip is not None else None,
                    "dns_servers": ipv4_only(s.dns_servers) or racks_here,
                    "ntp_servers": ntp_option(racks_here, ipv4_only(ntp_servers), ntp_external_only),
                    "domain_name": domain,
                    "search_list": search,
                    "pools": _pools(dynamic),
                    "reserved": [[str(r.start_ip), str(r.end_ip)] for r in ranges if r.type == "reserved"],
                    "lease_time": lease_time,
                }
            )
        common = {
            "vlan_id": v.id,
            "vid": v.vid,
            "interface": me.interface,
            "self_address": me.address,
            "role": role,
            "mode": mode,
            "peer": {"name": peer.hostname, "address": peer.address} if peer is not None else None,
        }
        if out_subnets:
            out_vlans.append({**common, "mtu": v.mtu, "subnets": out_subnets})
        if out_subnets6:
            out_vlans6.append({**common, "subnets": out_subnets6})
    hostname = (await conn.execute(select(nodes.c.hostname).where(nodes.c.id == rack_id))).scalar_one()
    # "boot" is the rack's to fill in: its own TFTP/HTTP addresses and loaders.
    return {
        "server_name": hostname,
        "vlans": out_vlans,
        "hosts": await known_hosts(conn),
        "problems": problems,
        "vlans6": out_vlans6,
    }


def _subnet6(
    s: Any,
    network: Any,
    ranges: list[Any],
    dynamic: list[tuple[str, str]],
    me: RackOnVlan,
    peer: RackOnVlan | None,
    ntp_servers: list[str],
    ntp_external_only: bool,
    lease_time: int,
    search: list[str],
) -> dict[str, Any]:
    """An IPv6 subnet for kea-dhcp6: the racks' IPv6 addresses in it answer DNS and NTP."""
    racks6 = [a for r in (me, peer) if r is not None for a in r.addresses6 if ip_address(a) in network]
    return {
        "subnet_id": s.id,
        "cidr": str(network),
        "dns_servers": addresses_of(6, s.dns_servers) or racks6,
        "ntp_servers": ntp_option(racks6, addresses_of(6, ntp_servers), ntp_external_only),
        "domain_name": search[0],
        "search_list": search,
        "pools": _pools(dynamic),
        "reserved": [[str(r.start_ip), str(r.end_ip)] for r in ranges if r.type == "reserved"],
        "lease_time": lease_time,
    }


async def known_hosts(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Host reservations for known machines' MACs: their hostname and the IPv4 address the
    region gave the interface (an AUTO link's claimed at deploy, a static one), so the
    machine gets exactly that address by DHCP (MAAS's make_hosts_for_subnets)."""
    from metalplane.region.services.nodes import AUTO, STICKY, USER_RESERVED  # nodes imports network imports us

    found = await conn.execute(
        select(interfaces.c.id, interfaces.c.mac, nodes.c.hostname)
        .join(nodes, nodes.c.id == interfaces.c.node_id)
        .where(nodes.c.node_type == NodeType.MACHINE, interfaces.c.mac.isnot(None))
        .order_by(interfaces.c.mac)
    )
    macs = [(r.id, r.mac, r.hostname) for r in found]
    held: dict[int, list[str]] = {}
    for a in await conn.execute(
        select(ip_addresses.c.interface_id, ip_addresses.c.ip)
        .where(
            ip_addresses.c.interface_id.in_([i for i, _, _ in macs]),
            ip_addresses.c.alloc_type.in_((AUTO, STICKY, USER_RESERVED)),
            ip_addresses.c.ip.isnot(None),
        )
        .order_by(ip_addresses.c.id)
    ):
        held.setdefault(a.interface_id, []).append(str(a.ip))
    gateways = {str(g) for g in (await conn.execute(select(subnets.c.gateway_ip))).scalars() if g is not None}
    racks = {
        str(ip)
        for ip in (
            await conn.execute(
                select(ip_addresses.c.ip)
                .join(interfaces, interfaces.c.id == ip_addresses.c.interface_id)
                .join(nodes, nodes.c.id == interfaces.c.node_id)
                .where(nodes.c.node_type.in_(RACK_TYPES), ip_addresses.c.ip.isnot(None))
            )
        ).scalars()
    }
    return host_entries(macs, held, gateways | racks)


def host_entries(
    macs: list[tuple[int, str, str]], held: dict[int, list[str]], unusable: set[str]
) -> list[dict[str, Any]]:
    """One host per MAC ((interface id, MAC, hostname)): its interface's first IPv4 address, or
    none where that address is a gateway's or a rack's or already another MAC's (a reservation
    the rack would refuse, which would stop its whole DHCP state)."""
    given: set[str] = set()
    out = []
    for iface_id, mac, hostname in macs:
        ip = next((a for a in held.get(iface_id, []) if ip_address(a).version == 4), None)
        if ip in unusable or ip in given:
            ip = None
        if ip is not None:
            given.add(ip)
        out.append({"mac": mac, "hostname": hostname, "ip": ip})
    return out


async def primary_is_alive(conn: AsyncConnection, rack_id: int) -> bool:
    return rack_id in await alive_racks(conn)


async def rack_on_vlan(conn: AsyncConnection, rack_id: int, vlan_id: int) -> bool:
    found = await conn.execute(
        select(text("1"))
        .select_from(interfaces)
        .where(interfaces.c.node_id == rack_id, interfaces.c.vlan_id == vlan_id)
    )
    return found.first() is not None
