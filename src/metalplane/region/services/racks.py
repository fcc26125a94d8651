"""Rack controllers in the database: registration, interfaces, services, deletion."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from ipaddress import ip_interface
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.ha import connections as ha_connections
from metalplane.ha.rack_health import rackd_status, unreachable_services, with_rack_report
from metalplane.region.db.locks import Lock, xact_lock
from metalplane.region.db.tables import (
    controller_info,
    fabrics,
    interfaces,
    ip_addresses,
    nodes,
    rpc_connections,
    rpc_targets,
    service_status,
    subnets,
    vlans,
)
from metalplane.region.db.transaction import Work, region_config
from metalplane.region.errors import Refused
from metalplane.region.services import connections, consequences, domain_views, events, network, service_statuses
from metalplane.region.services import subnets as subnets_service
from metalplane.region.services.controllers import ensure_controller_node, get_controller, list_controllers
from metalplane.region.services.nodes import interfaces_of
from metalplane.region.services.rows import Row, first_row
from metalplane.region.services.service_statuses import ServiceStatus
from metalplane.rpc.messages import Ping
from metalplane.rpc.nodes import RACK_TYPES, NodeType

STICKY = 1  # MAAS's alloc_type for a controller's own configured address
RACK_SERVICES = ("rackd", "dhcpd", "dhcpd6", "tftp", "http", "ntp_rack", "dns_rack")
SERVICE_STATES = ("running", "degraded", "dead", "off", "unknown")


async def register_rack(
    conn: AsyncConnection, system_id: str, hostname: str, version: str, reported: list[dict[str, Any]]
) -> int:
    """Create or update the rack node and its interfaces; MAAS creates the fabrics,
    VLANs and subnets a rack sees when they are missing, and so do we. When its
    interfaces changed, the regions' DNS (its name's addresses) and its own services
    configuration (what it listens on and serves) follow."""
    node_id = await ensure_controller_node(conn, system_id, hostname, NodeType.RACK_CONTROLLER, version)
    await conn.execute(
        insert(controller_info)
        .values(node_id=node_id, refusal=None)
        .on_conflict_do_update(index_elements=["node_id"], set_={"refusal": None, "updated": func.now()})
    )
    before = await interfaces_of(conn, [node_id])
    # Every link of every rack registers, and a rack reconnects after any hiccup: when
    # the report matches what is stored there is nothing to write, and the cluster-wide
    # registration lock (held to COMMIT) is not taken. 1,000 racks' 2,000 registrations
    # queued on it, up to ~35 at once (bench/rack_connections_bench.py).
    wanted = _as_stored(reported, await _subnets_of(conn, reported))
    if wanted is not None and wanted == _stored(before.get(node_id, [])):
        return node_id
    await sync_interfaces(conn, node_id, reported)
    if _shape(before) != _shape(await interfaces_of(conn, [node_id])):
        consequences.region_services_changed(conn)
        consequences.rack_services_changed(conn)
    return node_id


@dataclass(frozen=True)
class Rejoin:
    """A rack's Register, as register_known_racks reads it."""

    system_id: str
    hostname: str
    version: str
    reported: list[dict[str, Any]]


async def register_known_racks(
    conn: AsyncConnection, process: int, joining: list[Rejoin]
) -> tuple[dict[str, int], set[str]]:
    """Register, in one go, racks that come back unchanged: known as racks, same hostname
    and version, no refusal on record and the same interfaces. Records each one's
    connection to `process` and answers system_id -> node id for those, and which of them
    were connected to a region already (their liveness, hence BMC ownership, is unchanged);
    the others (new, changed, refused before) are left out, for register_rack one by one.

    Every link of every rack registers, and a killed worker's racks all link again to the
    others at once: one by one, 250 Registers were ~9 statements and 2 commits each on an
    8-connection pool; here a whole burst is 4 statements and one commit."""
    if not joining:
        return {}, set()
    found = {
        r.system_id: r
        for r in await conn.execute(
            select(nodes.c.id, nodes.c.system_id, nodes.c.hostname, nodes.c.version, nodes.c.node_type)
            .join(controller_info, controller_info.c.node_id == nodes.c.id)
            .where(nodes.c.system_id.in_([j.system_id for j in joining]), controller_info.c.refusal.is_(None))
        )
    }
    candidates = [
        (j, found[j.system_id])
        for j in joining
        if j.system_id in found
        and found[j.system_id].node_type in RACK_TYPES
        and (found[j.system_id].hostname, found[j.system_id].version) == (j.hostname, j.version)
    ]
    if not candidates:
        return {}, set()
    before = await interfaces_of(conn, [row.id for _, row in candidates])
    subnets_known = await _subnets_of(conn, [item for j, _ in candidates for item in j.reported])
    same = {}
    for j, row in candidates:
        wanted = _as_stored(j.reported, subnets_known)
        if wanted is not None and wanted == _stored(before.get(row.id, [])):
            same[j.system_id] = row.id
    if not same:
        return {}, set()
    live = await connections.connected_regions(conn, list(same.values()))
    await conn.execute(
        insert(rpc_connections)
        .values([{"rack_id": node_id, "process_id": process} for node_id in sorted(set(same.values()))])
        .on_conflict_do_nothing()
    )
    return same, {sid for sid, node_id in same.items() if node_id in live}


def _addresses(item: dict[str, Any]) -> list[Any]:
    """The addresses of a reported interface that sync_interfaces places (no IPv6 link-local)."""
    found = [ip_interface(str(a)) for a in item.get("addresses", [])]
    return [a for a in found if not (a.version == 6 and a.ip.is_link_local)]


async def _subnets_of(conn: AsyncConnection, reported: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """cidr -> (subnet id, VLAN id) of the known subnets the reported addresses are on."""
    cidrs = {str(a.network) for item in reported for a in _addresses(item)}
    if not cidrs:
        return {}
    found = await conn.execute(select(subnets.c.cidr, subnets.c.id, subnets.c.vlan_id).where(subnets.c.cidr.in_(cidrs)))
    return {str(r.cidr): (r.id, r.vlan_id) for r in found}


def _as_stored(reported: list[dict[str, Any]], known: dict[str, tuple[int, int]]) -> list[tuple[Any, ...]] | None:
    """The interfaces sync_interfaces would leave for `reported`, as `_stored` shows them;
    None when it would create something (an unknown subnet, a new fabric) or cannot tell."""
    out = []
    for item in reported:
        placed = []
        for a in _addresses(item):
            if str(a.network) not in known:
                return None
            placed.append((str(a.ip), *known[str(a.network)]))
        vlan = placed[0][2] if placed else None  # else it keeps its VLAN: compared below
        out.append(
            (
                str(item["name"]),
                item.get("mac"),
                item.get("type", "physical"),
                bool(item.get("enabled", True)),
                vlan,
                tuple(sorted((ip, subnet) for ip, subnet, _ in placed)),
            )
        )
    return sorted(out, key=lambda i: i[0])


def _stored(found: list[dict[str, Any]]) -> list[tuple[Any, ...]] | None:
    """A node's interfaces as `_as_stored` describes them; an interface without addresses
    shows its VLAN as None (sync_interfaces keeps it), unless it has none (it would get one)."""
    out = []
    for i in found:
        links = i["links"]
        if i["vlan_id"] is None or any(link["alloc_type"] != STICKY for link in links):
            return None
        out.append(
            (
                i["name"],
                i["mac"],
                i["type"],
                i["enabled"],
                i["vlan_id"] if links else None,
                tuple(sorted((link["ip"], link["subnet_id"]) for link in links)),
            )
        )
    return sorted(out, key=lambda i: i[0])


def _shape(found: dict[int, list[dict[str, Any]]]) -> list[tuple[Any, ...]]:
    """What of a node's interfaces the services depend on: names, MACs, VLANs, addresses."""
    return sorted(
        (i["name"], i["mac"], i["vlan_id"], tuple(sorted(link["ip"] for link in i["links"])))
        for rows in found.values()
        for i in rows
    )


async def is_rack(conn: AsyncConnection, system_id: str) -> bool:
    """Whether the region has a rack (or region+rack) controller with this system_id."""
    found = await conn.execute(
        select(nodes.c.id).where(nodes.c.system_id == system_id, nodes.c.node_type.in_(RACK_TYPES))
    )
    return found.first() is not None


async def record_refusal(conn: AsyncConnection, system_id: str, hostname: str, version: str, reason: str) -> None:
    if not system_id:
        return
    node_id = await ensure_controller_node(conn, system_id, hostname or system_id, NodeType.RACK_CONTROLLER, version)
    await conn.execute(
        insert(controller_info)
        .values(node_id=node_id, refusal=reason)
        .on_conflict_do_update(index_elements=["node_id"], set_={"refusal": reason, "updated": func.now()})
    )


async def _vlan_for_addresses(conn: AsyncConnection, addresses: list[str]) -> tuple[int | None, list[tuple[str, int]]]:
    """The VLAN of the first known subnet; unknown subnets get a new fabric."""
    vlan_id: int | None = None
    placed: list[tuple[str, int]] = []
    for address in addresses:
        iface = ip_interface(address)
        if iface.version == 6 and iface.ip.is_link_local:
            continue
        cidr = str(iface.network)
        row = await first_row(conn, select(subnets.c.id, subnets.c.vlan_id).where(subnets.c.cidr == cidr))
        if row is None:
            target_vlan = vlan_id
            if target_vlan is None:
                target_vlan = await network.new_fabric_vlan(conn)
            created = await subnets_service.insert_subnet(conn, {"cidr": cidr, "vlan": str(target_vlan)})
            row_id, row_vlan = created["id"], created["vlan_id"]
        else:
            row_id, row_vlan = row.id, row.vlan_id
        vlan_id = vlan_id or row_vlan
        placed.append((str(iface.ip), row_id))
    return vlan_id, placed


async def sync_interfaces(conn: AsyncConnection, node_id: int, reported: list[dict[str, Any]]) -> None:
    await xact_lock(conn, Lock.RACK_REGISTRATION)
    existing = {r.name: r for r in await conn.execute(select(interfaces).where(interfaces.c.node_id == node_id))}
    for item in reported:
        name = str(item["name"])
        vlan_id, placed = await _vlan_for_addresses(conn, [str(a) for a in item.get("addresses", [])])
        if vlan_id is None:
            old = existing.get(name)
            vlan_id = old.vlan_id if old is not None and old.vlan_id is not None else None
        if vlan_id is None:
            vlan_id = await network.new_fabric_vlan(conn)
        values = dict(
            mac=item.get("mac"),
            type=item.get("type", "physical"),
            enabled=bool(item.get("enabled", True)),
            vlan_id=vlan_id,
        )
        interface_id = (
            await conn.execute(
                insert(interfaces)
                .values(node_id=node_id, name=name, **values)
                .on_conflict_do_update(index_elements=["node_id", "name"], set_={**values, "updated": func.now()})
                .returning(interfaces.c.id)
            )
        ).scalar_one()
        await conn.execute(delete(ip_addresses).where(ip_addresses.c.interface_id == interface_id))
        for ip, subnet_id in placed:
            await conn.execute(
                insert(ip_addresses).values(ip=ip, subnet_id=subnet_id, alloc_type=STICKY, interface_id=interface_id)
            )
    gone = set(existing) - {str(i["name"]) for i in reported}
    if gone:
        await conn.execute(delete(interfaces).where(interfaces.c.node_id == node_id, interfaces.c.name.in_(gone)))


async def update_services(conn: AsyncConnection, node_id: int, services: list[dict[str, Any]]) -> None:
    """Store what the rack reports (rackd: its own health, combined with the region's
    judgement when read); each status change is an event."""
    reported: dict[str, tuple[str, str]] = {}
    for item in services:
        name, status = str(item["name"]), str(item.get("status", "unknown"))
        if name not in RACK_SERVICES:
            continue
        reported[name] = (status if status in SERVICE_STATES else "unknown", str(item.get("status_info", ""))[:500])
    await service_statuses.store(conn, node_id, reported)


async def mark_unreachable(conn: AsyncConnection, node_id: int) -> list[tuple[str, str, str]]:
    """The rack's last connection is gone: rackd dead, its other services unknown (with
    events). Idempotent: the rows are locked first, so of two workers losing the rack's
    two links at once, the second finds nothing left to change."""
    return await service_statuses.store(conn, node_id, lambda before: unreachable_services(RACK_SERVICES, before))


async def record_isolation(conn: AsyncConnection, node_id: int, seconds: float) -> None:
    """The rack says it served alone (degraded mode) for `seconds`: an event, since nobody
    could see its status meanwhile."""
    node = (
        (await conn.execute(select(nodes.c.id, nodes.c.system_id, nodes.c.hostname).where(nodes.c.id == node_id)))
        .one()
        ._mapping
    )
    await events.record(
        conn,
        dict(node),
        "RACK_DEGRADED_MODE",
        f"degraded: no region controller for {seconds:.0f} s; DHCP, TFTP and HTTP kept "
        "serving their last configuration",
    )


async def refusals_of(conn: AsyncConnection, node_ids: list[int]) -> dict[int, str]:
    rows = await conn.execute(
        select(controller_info.c.node_id, controller_info.c.refusal).where(
            controller_info.c.node_id.in_(node_ids), controller_info.c.refusal.isnot(None)
        )
    )
    return {r.node_id: r.refusal for r in rows}


async def service_sets(conn: AsyncConnection, node_ids: list[int]) -> dict[int, list[ServiceStatus]]:
    """Each rack's services, rackd first: `rackd` judged from its live connections against the
    region's rpc_connections_per_rack (worsened by the rack's own report of itself), the rest
    as the rack reported them. Every query is
    bounded by the racks asked for (a page of the UI, the racks an API call names)."""
    if not node_ids:
        return {}
    per_rack = region_config(conn).rpc_connections_per_rack
    reported = await service_statuses.of_nodes(conn, node_ids)
    refusals = await refusals_of(conn, node_ids)
    connected = await connections.connected_regions(conn, node_ids)
    live = await connections.live_region_count(conn)
    on_duty = await connections.dhcp_duty_node_ids(conn)
    out: dict[int, list[ServiceStatus]] = {}
    for node_id in node_ids:
        mine = reported.get(node_id, {})
        wanted = ha_connections.links_wanted(per_rack, live, node_id in on_duty) or per_rack
        rackd = with_rack_report(
            rackd_status(len(connected.get(node_id, ())), live, wanted, refusals.get(node_id)), mine.get("rackd")
        )
        if rackd[0] == "dead":  # whatever it last reported is stale now (kept in the info)
            mine = unreachable_services(RACK_SERVICES, mine)
        out[node_id] = [ServiceStatus("rackd", *rackd)] + [
            ServiceStatus(name, *shown_status(name, mine)) for name in RACK_SERVICES if name != "rackd"
        ]
    return out


@dataclass(frozen=True)
class RackView:
    node: Row
    services: list[ServiceStatus]  # rackd (the region's judgement) first
    interfaces: list[Row]  # with their "links" (services.nodes.interfaces_of)
    domain: Any = None  # its DomainView


@dataclass(frozen=True)
class Racks:
    """Rack controllers as shown, with the VLANs and subnets their interfaces are on."""

    racks: list[RackView]
    vlans: dict[int, Row]
    subnets: dict[int, Row]


async def show_racks(
    conn: AsyncConnection, system_ids: list[str] | None = None, hostnames: list[str] | None = None
) -> Racks:
    """Racks (all, or those named), each with every service's status; `rackd` is judged
    from its live connections against the region's rpc_connections_per_rack."""
    return await _racks(conn, await list_controllers(conn, RACK_TYPES, system_ids, hostnames))


async def show_rack(conn: AsyncConnection, system_id: str) -> Racks:
    return await _racks(conn, [await get_controller(conn, RACK_TYPES, system_id)])


async def _racks(conn: AsyncConnection, nodes_shown: list[Row]) -> Racks:
    ids = [r["id"] for r in nodes_shown]
    statuses = await service_sets(conn, ids)
    rack_interfaces = await interfaces_of(conn, ids)
    vlans_by_id = {v["id"]: v for v in await network.list_vlans(conn)}
    subnets_by_id = {s["id"]: s for s in await subnets_service.list_subnets(conn)}
    in_domains = await domain_views.node_domains(conn, nodes_shown)
    shown = [
        RackView(node, statuses[node["id"]], rack_interfaces.get(node["id"], []), in_domains.get(node["id"]))
        for node in nodes_shown
    ]
    return Racks(shown, vlans_by_id, subnets_by_id)


def shown_status(name: str, reported: dict[str, tuple[str, str]]) -> tuple[str, str]:
    """A rack service's status; on a host that is region and rack, one chronyd (the region's)
    serves the rack's networks too, so ntp_rack is what the region says of it."""
    region_ntp = reported.get("ntp_region")
    if (
        name == "ntp_rack"
        and region_ntp is not None
        and region_ntp[0] != "off"
        and reported.get("ntp_rack", ("off", ""))[0] == "off"
    ):
        return region_ntp[0], f"the region's chronyd on this host: {region_ntp[1]}"
    return reported.get(name, ("unknown", ""))


async def connection_spread(work: Work, rpc_server: Any, check: bool) -> dict[str, Any]:
    """How rack RPC connections are spread over the region workers: per worker and per
    region, each rack's connections, the max/mean ratio over workers and the balance
    threshold. With `check`, whether each rack answers a ping over RPC from here."""
    async with work.tx() as conn:
        endpoints = await connections.live_endpoints(conn)
        current = await connections.connections_by_rack(conn)
        all_racks = list(await connections.rack_ids(conn)) if check else []
    names = {e.endpoint.region: e.region_hostname for e in endpoints}
    spread = ha_connections.spread({k: frozenset(v) for k, v in current.items()}, [e.key for e in endpoints])
    loads = {(e.endpoint.region, e.endpoint.worker): spread.endpoint_loads.get(e.key, 0) for e in endpoints}
    return {
        "workers": [
            {
                "region": w.region,
                "hostname": names[w.region],
                "worker": w.worker,
                "host": w.host,
                "port": w.port,
                "connections": loads[(w.region, w.worker)],
            }
            for w in (e.endpoint for e in endpoints)
        ],
        "regions": [
            {
                "region": region,
                "hostname": hostname,
                "connections": sum(n for (r, _), n in loads.items() if r == region),
            }
            for region, hostname in sorted(names.items())
        ],
        "racks": {
            rack: sorted(f"{names.get(e.region, e.region)}:{e.worker}" for e in eps)
            for rack, eps in sorted(current.items())
        },
        "max_over_mean": spread.max_over_mean,
        "threshold": work.region_config.balance_threshold,
        **({"reachable": await _reachable(rpc_server, all_racks)} if all_racks else {}),
    }


async def _reachable(rpc_server: Any, system_ids: list[str]) -> dict[str, bool]:
    """Ping every rack over RPC from this region, at once."""

    async def ping(system_id: str) -> bool:
        try:
            return await rpc_server.call_rack(system_id, Ping(), timeout=2) == "pong"
        except Exception:
            return False

    results = await asyncio.gather(*(ping(s) for s in system_ids))
    return dict(zip(system_ids, results))


def dhcp_vlan_label(fabric_name: str, vlan_name: str | None) -> str:
    return f"{fabric_name}.{vlan_name or 'untagged'}"


async def dhcp_duties(conn: AsyncConnection, node_id: int) -> list[dict[str, Any]]:
    """VLANs with DHCP on where this rack is primary or secondary."""
    rows = await conn.execute(
        select(
            *vlans.c["id", "name", "primary_rack_id", "secondary_rack_id"],
            fabrics.c.name.label("fabric_name"),
        )
        .join(fabrics, fabrics.c.id == vlans.c.fabric_id)
        .where(vlans.c.dhcp_on.is_(True), (vlans.c.primary_rack_id == node_id) | (vlans.c.secondary_rack_id == node_id))
        .order_by(vlans.c.id)
    )
    return [dict(r._mapping) for r in rows]


async def delete_rack(conn: AsyncConnection, system_id: str, force: bool) -> Row:
    """Refuse while the rack serves DHCP (unless forced); a region+rack host stays a region.
    The rack is told to stop, and the other racks' connections are rebalanced. Returns the
    rack as it was."""
    node = await get_controller(conn, RACK_TYPES, system_id)
    duties = await dhcp_duties(conn, node["id"])
    if duties and not force:
        labels = ", ".join(dhcp_vlan_label(d["fabric_name"], d["name"]) for d in duties)
        raise Refused(
            f"Unable to delete '{node['hostname']}'; it is currently set as a primary or secondary rack "
            f"controller on VLANs {labels} with DHCP on. Disable DHCP HA first: move primary_rack/"
            f"secondary_rack to another rack or set dhcp_on=false on those VLANs, or delete with force=true "
            f"(which turns DHCP off on VLANs where it is primary)."
        )
    for duty in duties:
        if duty["primary_rack_id"] == node["id"]:
            await conn.execute(
                update(vlans)
                .where(vlans.c.id == duty["id"])
                .values(dhcp_on=False, primary_rack_id=None, secondary_rack_id=None, updated=func.now())
            )
        else:
            await conn.execute(
                update(vlans).where(vlans.c.id == duty["id"]).values(secondary_rack_id=None, updated=func.now())
            )
    await conn.execute(update(vlans).where(vlans.c.primary_rack_id == node["id"]).values(primary_rack_id=None))
    await conn.execute(update(vlans).where(vlans.c.secondary_rack_id == node["id"]).values(secondary_rack_id=None))
    if node["node_type"] == NodeType.REGION_AND_RACK_CONTROLLER:
        await conn.execute(update(nodes).where(nodes.c.id == node["id"]).values(node_type=NodeType.REGION_CONTROLLER))
        await conn.execute(delete(interfaces).where(interfaces.c.node_id == node["id"]))
        await conn.execute(
            delete(service_status).where(
                service_status.c.node_id == node["id"], service_status.c.name.in_(RACK_SERVICES)
            )
        )
        await conn.execute(delete(rpc_connections).where(rpc_connections.c.rack_id == node["id"]))
        await conn.execute(delete(rpc_targets).where(rpc_targets.c.rack_id == node["id"]))
    else:
        await conn.execute(delete(nodes).where(nodes.c.id == node["id"], nodes.c.node_type.in_(RACK_TYPES)))
    consequences.rack_deleted(conn, node["system_id"])
    consequences.connections_to_rebalance(conn)
    return node
