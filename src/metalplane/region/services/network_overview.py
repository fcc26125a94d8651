"""Fabrics, VLANs and subnets as people look at them: grouped, with ranges, usage and
who serves DHCP. The Subnets and VLAN pages read this; writes go through
network.update_vlan and subnets.create_range (see vlan_dhcp.py), as the API's do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.ha.dhcp_peers import role_on_vlan
from metalplane.region.db.tables import dhcp_leases, ip_addresses, ipranges, service_status, subnets
from metalplane.region.services import address_space, dhcp, network, settings
from metalplane.region.services.racks import service_sets
from metalplane.region.services.rows import Row


@dataclass(frozen=True)
class RangeView:
    id: int
    type: str
    start_ip: str
    end_ip: str
    comment: str

    @property
    def size(self) -> int:
        return int(ip_address(self.end_ip)) - int(ip_address(self.start_ip)) + 1


@dataclass(frozen=True)
class SubnetView:
    id: int
    cidr: str
    name: str
    gateway_ip: str | None
    ranges: list[RangeView]
    usage: address_space.Usage
    suggestion: tuple[str, str] | None  # a free block for a new dynamic range (none while one exists)

    @property
    def dynamic(self) -> list[RangeView]:
        return [r for r in self.ranges if r.type == "dynamic"]


@dataclass
class VlanView:
    id: int
    vid: int
    label: str
    fabric_id: int
    fabric_name: str
    dhcp_on: bool
    primary_rack: str | None
    secondary_rack: str | None
    subnets: list[SubnetView] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.fabric_name}.{self.label}"


@dataclass
class FabricView:
    id: int
    name: str
    vlans: list[VlanView] = field(default_factory=list)


def _vlan_view(v: Row) -> VlanView:
    return VlanView(
        v["id"],
        v["vid"],
        network.vlan_label(v),
        v["fabric_id"],
        v["fabric_name"],
        v["dhcp_on"],
        v["primary_rack"],
        v["secondary_rack"],
    )


async def _subnet_views(conn: AsyncConnection, subnet_rows: Sequence[Any]) -> list[SubnetView]:
    """Each subnet with its ranges and usage: three queries, whatever the number of subnets."""
    ids = [s.id for s in subnet_rows]
    if not ids:
        return []
    ranges: dict[int, list[RangeView]] = {}
    for r in await conn.execute(
        select(ipranges).where(ipranges.c.subnet_id.in_(ids)).order_by(ipranges.c.subnet_id, ipranges.c.start_ip)
    ):
        ranges.setdefault(r.subnet_id, []).append(RangeView(r.id, r.type, str(r.start_ip), str(r.end_ip), r.comment))
    held: dict[int, list[str]] = {}
    for a in await conn.execute(
        select(ip_addresses.c.subnet_id, ip_addresses.c.ip).where(ip_addresses.c.subnet_id.in_(ids))
    ):
        held.setdefault(a.subnet_id, []).append(str(a.ip))
    for lease in await conn.execute(
        select(dhcp_leases.c.subnet_id, dhcp_leases.c.ip).where(
            dhcp_leases.c.subnet_id.in_(ids),
            dhcp_leases.c.state == "active",
            or_(dhcp_leases.c.expires.is_(None), dhcp_leases.c.expires > func.now()),
        )
    ):
        held.setdefault(lease.subnet_id, []).append(str(lease.ip))
    out = []
    for s in subnet_rows:
        cidr = str(s.cidr)
        spans = [(r.start_ip, r.end_ip) for r in ranges.get(s.id, [])]
        addresses = held.get(s.id, []) + ([str(s.gateway_ip)] if s.gateway_ip is not None else [])
        has_dynamic = any(r.type == "dynamic" for r in ranges.get(s.id, []))
        out.append(
            SubnetView(
                s.id,
                cidr,
                s.name,
                str(s.gateway_ip) if s.gateway_ip is not None else None,
                ranges.get(s.id, []),
                address_space.usage(cidr, spans, addresses),
                None if has_dynamic else address_space.suggest_dynamic_range(cidr, spans, addresses),
            )
        )
    return out


async def subnets_by_fabric(conn: AsyncConnection) -> list[FabricView]:
    """Every fabric with its VLANs, each with its subnets (ranges, usage), in id/VID order."""
    fabrics = {f["id"]: FabricView(f["id"], f["name"]) for f in await network.list_fabrics(conn)}
    vlans = {}
    for v in await network.list_vlans(conn):
        vlans[v["id"]] = view = _vlan_view(v)
        fabrics[v["fabric_id"]].vlans.append(view)
    subnet_rows = (await conn.execute(select(subnets).order_by(subnets.c.cidr))).all()
    for s, shown in zip(subnet_rows, await _subnet_views(conn, subnet_rows)):
        vlans[s.vlan_id].subnets.append(shown)
    return list(fabrics.values())


@dataclass(frozen=True)
class RackOnVlan:
    """A rack with an interface on the VLAN: who may serve DHCP there, and how it does."""

    system_id: str
    hostname: str
    address: str | None
    role: str | None  # primary, secondary, standalone, or None
    rackd: str  # the region's judgement of the rack: running, degraded, dead
    dhcpd: str
    dhcpd_info: str


@dataclass(frozen=True)
class VlanPage:
    vlan: VlanView
    racks: list[RackOnVlan]
    ha_mode: str
    candidate_secondary: str | None

    @property
    def suggestion(self) -> tuple[SubnetView, tuple[str, str]] | None:
        """The first subnet offering a new dynamic range, with that range."""
        return next(((s, s.suggestion) for s in self.vlan.subnets if s.suggestion), None)

    @property
    def dynamic_ranges(self) -> list[tuple[SubnetView, RangeView]]:
        return [(s, r) for s in self.vlan.subnets for r in s.dynamic]


async def vlan_page(conn: AsyncConnection, vlan_id: int) -> VlanPage:
    """One VLAN (NotFound otherwise) with its subnets and the racks that could serve it."""
    row = await network.get_vlan(conn, vlan_id)
    vlan = _vlan_view(row)
    subnet_rows = (
        await conn.execute(select(subnets).where(subnets.c.vlan_id == vlan_id).order_by(subnets.c.cidr))
    ).all()
    vlan.subnets = await _subnet_views(conn, subnet_rows)
    on_vlan = (await dhcp.racks_on_vlans(conn)).get(vlan_id, [])
    node_ids = list(dict.fromkeys(r.node_id for r in on_vlan))
    judged = await service_sets(conn, node_ids)
    dhcpd = {
        r.node_id: (r.status, r.status_info)
        for r in await conn.execute(
            select(service_status).where(service_status.c.node_id.in_(node_ids), service_status.c.name == "dhcpd")
        )
    }
    racks, seen = [], set()
    for r in on_vlan:
        if r.node_id in seen:
            continue
        seen.add(r.node_id)
        status, info = dhcpd.get(r.node_id, ("unknown", ""))
        racks.append(
            RackOnVlan(
                r.system_id,
                r.hostname,
                r.address,
                role_on_vlan(r.node_id, row["primary_rack_id"], row["secondary_rack_id"]) if row["dhcp_on"] else None,
                judged[r.node_id][0].status,
                status,
                info,
            )
        )
    racks.sort(key=lambda r: r.hostname)
    candidates = await dhcp.candidate_secondaries(conn) if row["dhcp_on"] else {}
    return VlanPage(vlan, racks, await settings.get_setting(conn, "dhcp_ha_mode"), candidates.get(vlan_id))
