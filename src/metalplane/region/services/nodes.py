"""Nodes as MAAS shows them: one composition for machines, devices, controllers and nodes/.

`show` gathers, for a list of node rows, everything their JSON shows: each
node's interfaces with their links, the VLANs and subnets those are on, its
disks and partitions, tags, BMC, current commissioning results, newest status
event and DHCP leases. Renderers only shape it (region/api/render_nodes.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from metalplane.region.db.tables import (
    block_devices,
    bmcs,
    dhcp_leases,
    interfaces,
    ip_addresses,
    node_tags,
    nodes,
    partitions,
    resource_pools,
    script_results,
    script_sets,
    tags,
    users,
    zones,
)
from metalplane.region.errors import NotFound
from metalplane.region.services import bmcs as bmcs_service
from metalplane.region.services import domain_views, events, network
from metalplane.region.services import subnets as subnets_service
from metalplane.region.services.domain_views import DomainView
from metalplane.region.services.rows import Row, grouped, labelled, one, rows
from metalplane.region.services.users import User
from metalplane.rpc.nodes import NodeType

# MAAS's StaticIPAddress alloc_type.
AUTO, STICKY, USER_RESERVED, DHCP, DISCOVERED = 0, 1, 4, 5, 6
# MAAS's model names for 404s, by node type.
MODEL_NAMES = {
    NodeType.MACHINE: "Machine",
    NodeType.DEVICE: "Device",
    NodeType.RACK_CONTROLLER: "RackController",
    NodeType.REGION_CONTROLLER: "RegionController",
    NodeType.REGION_AND_RACK_CONTROLLER: "RackController",
}
ALL_TYPES = tuple(int(t) for t in NodeType)

parent_nodes = aliased(nodes, name="parent_nodes")


def node_select(types: tuple[int, ...] = ALL_TYPES) -> Select:
    """Node rows with their zone, pool, owner, parent and BMC."""
    return (
        select(
            nodes,
            *labelled(zones, zone_name="name", zone_description="description", zone_ref="id"),
            *labelled(resource_pools, pool_name="name", pool_description="description"),
            users.c.username.label("owner_name"),
            parent_nodes.c.system_id.label("parent_system_id"),
            *bmcs.c["power_type", "owner_rack_id"],
            *labelled(bmcs, bmc_parameters="power_parameters", bmc_failing="failing", bmc_error="last_error"),
        )
        .join(zones, zones.c.id == nodes.c.zone_id)
        .outerjoin(resource_pools, resource_pools.c.id == nodes.c.pool_id)
        .outerjoin(users, users.c.id == nodes.c.owner_id)
        .outerjoin(parent_nodes, parent_nodes.c.id == nodes.c.parent_id)
        .outerjoin(bmcs, bmcs.c.id == nodes.c.bmc_id)
        .where(nodes.c.node_type.in_(types))
        .order_by(nodes.c.id)
    )


def visible_to(query: Select, viewer: User | None) -> Select:
    """MAAS's view permission: admins see every node; others unowned ones and their own."""
    if viewer is None or viewer.is_superuser:
        return query
    return query.where(or_(nodes.c.owner_id.is_(None), nodes.c.owner_id == viewer.id))


async def list_nodes(
    conn: AsyncConnection,
    types: tuple[int, ...] = ALL_TYPES,
    viewer: User | None = None,
    system_ids: list[str] | None = None,
) -> list[Row]:
    query = visible_to(node_select(types), viewer)
    if system_ids:
        query = query.where(nodes.c.system_id.in_(system_ids))
    return rows(await conn.execute(query))


async def get_node(
    conn: AsyncConnection,
    system_id: str,
    types: tuple[int, ...] = ALL_TYPES,
    viewer: User | None = None,
    lock: bool = False,
    model: str = "Node",
) -> Row:
    """One node; 404 in MAAS's words for `model` when it is not there or not visible."""
    if "\x00" in system_id:  # PostgreSQL text cannot hold NUL: no node has such an id
        raise NotFound(model)
    query = visible_to(node_select(types), viewer).where(nodes.c.system_id == system_id)
    if lock:
        query = query.with_for_update(of=nodes)
    return one(await conn.execute(query), model)


async def interfaces_of(conn: AsyncConnection, node_ids: list[int]) -> dict[int, list[Row]]:
    """node id -> its interfaces, each with "links": [{id, alloc_type, ip, subnet_id}] in order."""
    if not node_ids:
        return {}
    found = rows(
        await conn.execute(
            select(interfaces).where(interfaces.c.node_id.in_(node_ids)).order_by(interfaces.c.node_id, interfaces.c.id)
        )
    )
    addresses = await conn.execute(
        select(*ip_addresses.c["id", "interface_id", "alloc_type", "ip", "subnet_id"])
        .where(ip_addresses.c.interface_id.in_([i["id"] for i in found]))
        .order_by(ip_addresses.c.id)
    )
    links = grouped(
        (
            a.interface_id,
            {
                "id": a.id,
                "alloc_type": a.alloc_type,
                "ip": str(a.ip) if a.ip is not None else None,
                "subnet_id": a.subnet_id,
            },
        )
        for a in addresses
    )
    return grouped((i["node_id"], {**i, "links": links.get(i["id"], [])}) for i in found)


async def block_devices_of(conn: AsyncConnection, node_ids: list[int]) -> dict[int, list[Row]]:
    """node id -> its disks, each with "partitions" in order."""
    if not node_ids:
        return {}
    disks = rows(
        await conn.execute(
            select(block_devices)
            .where(block_devices.c.node_id.in_(node_ids))
            .order_by(block_devices.c.node_id, block_devices.c.id)
        )
    )
    found = await conn.execute(
        select(partitions)
        .where(partitions.c.block_device_id.in_([d["id"] for d in disks]))
        .order_by(partitions.c.block_device_id, partitions.c.number)
    )
    parts = grouped((p.block_device_id, dict(p._mapping)) for p in found)
    return grouped((d["node_id"], {**d, "partitions": parts.get(d["id"], [])}) for d in disks)


async def tags_of(conn: AsyncConnection, node_ids: list[int]) -> dict[int, list[str]]:
    if not node_ids:
        return {}
    found = await conn.execute(
        select(node_tags.c.node_id, tags.c.name)
        .join(tags, tags.c.id == node_tags.c.tag_id)
        .where(node_tags.c.node_id.in_(node_ids))
        .order_by(tags.c.name)
    )
    return grouped((r.node_id, r.name) for r in found)


async def current_script_sets(conn: AsyncConnection, node_ids: list[int]) -> dict[int, dict[int, Row]]:
    """node id -> result_type -> its newest script set, with "results" (name, exit_status)."""
    if not node_ids:
        return {}
    newest = (
        select(script_sets.c.id)
        .ext(distinct_on(script_sets.c.node_id, script_sets.c.result_type))
        .where(script_sets.c.node_id.in_(node_ids))
        .order_by(script_sets.c.node_id, script_sets.c.result_type, script_sets.c.id.desc())
    )
    sets = rows(await conn.execute(select(script_sets).where(script_sets.c.id.in_(newest))))
    found = await conn.execute(
        select(script_results.c.script_set_id, script_results.c.name, script_results.c.exit_status).where(
            script_results.c.script_set_id.in_([s["id"] for s in sets])
        )
    )
    results = grouped((r.script_set_id, dict(r._mapping)) for r in found)
    out: dict[int, dict[int, Row]] = {}
    for s in sets:
        out.setdefault(s["node_id"], {})[s["result_type"]] = {**s, "results": results.get(s["id"], [])}
    return out


async def leases_of(conn: AsyncConnection, macs: list[str]) -> dict[str, list[str]]:
    """MAC -> addresses it holds by an active DHCP lease."""
    if not macs:
        return {}
    found = await conn.execute(
        select(dhcp_leases.c.mac, dhcp_leases.c.ip)
        .where(dhcp_leases.c.mac.in_(macs), dhcp_leases.c.state == "active")
        .order_by(dhcp_leases.c.ip)
    )
    return grouped((r.mac, str(r.ip)) for r in found)


@dataclass(frozen=True)
class NodesView:
    """Nodes as shown, with everything their JSON includes."""

    nodes: list[Row]
    interfaces: dict[int, list[Row]] = field(default_factory=dict)  # node id -> interfaces with links
    vlans: dict[int, Row] = field(default_factory=dict)
    subnets: dict[int, Row] = field(default_factory=dict)
    fabrics: dict[int, Row] = field(default_factory=dict)
    disks: dict[int, list[Row]] = field(default_factory=dict)  # node id -> block devices with partitions
    tags: dict[int, list[str]] = field(default_factory=dict)
    bmcs: dict[int, Row] = field(default_factory=dict)  # BMC id -> bmcs.overview entry
    script_sets: dict[int, dict[int, Row]] = field(default_factory=dict)
    shown_events: dict[int, Row] = field(default_factory=dict)  # node id -> newest INFO+ event
    leases: dict[str, list[str]] = field(default_factory=dict)  # MAC -> leased addresses
    domains: dict[int, DomainView] = field(default_factory=dict)  # node id -> its domain (own or default)

    def domain_name(self, node: Row) -> str:
        found = self.domains.get(node["id"])
        return str(found.row["name"]) if found is not None else "maas"

    def facts(self, node: Row) -> dict[str, Any]:
        """What machines read filters look at (services.node_filters.matches)."""
        ifaces = self.interfaces.get(node["id"], [])
        vlan_rows = [self.vlans[i["vlan_id"]] for i in ifaces if i["vlan_id"] in self.vlans]
        return {
            "system_id": node["system_id"],
            "hostname": node["hostname"],
            "domain": self.domain_name(node),
            "zone": node["zone_name"],
            "pool": node["pool_name"],
            "status": node["status"],
            "architecture": node["architecture"],
            "tags": self.tags.get(node["id"], []),
            "agent_name": node["agent_name"],
            "owner": node["owner_name"],
            "cpu_count": node["cpu_count"],
            "memory": node["memory"],
            "cpu_speed": node["cpu_speed"],
            "power_state": node["power_state"],
            "macs": [i["mac"] for i in ifaces if i["mac"]],
            "fabrics": [v["fabric_name"] for v in vlan_rows],
            "fabric_classes": [c for v in vlan_rows if (c := self.fabrics.get(v["fabric_id"], {}).get("class_type"))],
            "vlans": [v["id"] for v in vlan_rows],
            "subnets": [link["subnet_id"] for i in ifaces for link in i["links"] if link["subnet_id"]],
            "link_speeds": [i["link_speed"] for i in ifaces],
        }


async def show(conn: AsyncConnection, shown: list[Row]) -> NodesView:
    ids = [n["id"] for n in shown]
    ifaces = await interfaces_of(conn, ids)
    macs = [i["mac"] for items in ifaces.values() for i in items if i["mac"]]
    bmc_ids = {n["bmc_id"] for n in shown if n.get("bmc_id")}
    return NodesView(
        nodes=shown,
        interfaces=ifaces,
        vlans={v["id"]: v for v in await network.list_vlans(conn)},
        subnets={s["id"]: s for s in await subnets_service.list_subnets(conn)},
        fabrics={f["id"]: f for f in await network.list_fabrics(conn)},
        disks=await block_devices_of(conn, ids),
        tags=await tags_of(conn, ids),
        bmcs={b["id"]: b for b in await bmcs_service.overview(conn)} if bmc_ids else {},
        script_sets=await current_script_sets(conn, ids),
        shown_events=await events.latest_shown(conn, ids),
        leases=await leases_of(conn, macs),
        domains=await domain_views.node_domains(conn, shown),
    )


async def system_ids_matching(conn: AsyncConnection, hostnames: list[str], macs: list[str]) -> set[int]:
    """Node ids with one of these hostnames or MACs (the events and nodes/ filters)."""
    conditions = []
    if hostnames:
        conditions.append(nodes.c.hostname.in_(hostnames))
    if macs:
        conditions.append(nodes.c.id.in_(select(interfaces.c.node_id).where(interfaces.c.mac.in_(macs))))
    if not conditions:
        return set()
    return set((await conn.execute(select(nodes.c.id).where(and_(or_(*conditions))))).scalars())
