"""Rack controllers in the database: registration, interfaces, services, deletion."""

from __future__ import annotations

from ipaddress import ip_interface
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

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
from metalplane.region.errors import BadRequest
from metalplane.region.services import network, rpc
from metalplane.region.services.controllers import (
    RACK,
    RACK_TYPES,
    REGION,
    REGION_AND_RACK,
    ensure_controller_node,
    get_controller,
)

STICKY = 1  # MAAS's alloc_type for a controller's own configured address
RACK_SERVICES = ("rackd", "dhcpd", "dhcpd6", "tftp", "http", "ntp_rack", "dns_rack")
SERVICE_STATES = ("running", "degraded", "dead", "off", "unknown")
REGISTRATION_LOCK = 7002


async def register_rack(conn: AsyncConnection, system_id: str, hostname: str, version: str,
                        reported: list[dict[str, Any]]) -> int:
    """Create or update the rack node and its interfaces; MAAS creates the fabrics,
    VLANs and subnets a rack sees when they are missing, and so do we."""
    node_id = await ensure_controller_node(conn, system_id, hostname, RACK, version)
    await conn.execute(
        insert(controller_info).values(node_id=node_id, refusal=None)
        .on_conflict_do_update(index_elements=["node_id"], set_={"refusal": None, "updated": func.now()})
    )
    await sync_interfaces(conn, node_id, reported)
    return node_id


async def record_refusal(conn: AsyncConnection, system_id: str, hostname: str, version: str, reason: str) -> None:
    if not system_id:
        return
    node_id = await ensure_controller_node(conn, system_id, hostname or system_id, RACK, version)
    await conn.execute(
        insert(controller_info).values(node_id=node_id, refusal=reason)
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
        row = (await conn.execute(select(subnets.c.id, subnets.c.vlan_id).where(subnets.c.cidr == cidr))).first()
        if row is None:
            target_vlan = vlan_id
            if target_vlan is None:
                fabric = await network.create_fabric(conn, None, "", None)
                target_vlan = (await conn.execute(
                    select(func.min(vlans.c.id)).where(vlans.c.fabric_id == fabric["id"]))).scalar_one()
            created = await network.create_subnet(conn, {"cidr": cidr, "vlan": str(target_vlan)})
            row_id, row_vlan = created["id"], created["vlan_id"]
        else:
            row_id, row_vlan = row.id, row.vlan_id
        vlan_id = vlan_id or row_vlan
        placed.append((str(iface.ip), row_id))
    return vlan_id, placed


async def sync_interfaces(conn: AsyncConnection, node_id: int, reported: list[dict[str, Any]]) -> None:
    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": REGISTRATION_LOCK})
    existing = {r.name: r for r in await conn.execute(select(interfaces).where(interfaces.c.node_id == node_id))}
    for item in reported:
        name = str(item["name"])
        vlan_id, placed = await _vlan_for_addresses(conn, [str(a) for a in item.get("addresses", [])])
        if vlan_id is None:
            old = existing.get(name)
            vlan_id = old.vlan_id if old is not None and old.vlan_id is not None else None
        if vlan_id is None:
            fabric = await network.create_fabric(conn, None, "", None)
            vlan_id = (await conn.execute(
                select(func.min(vlans.c.id)).where(vlans.c.fabric_id == fabric["id"]))).scalar_one()
        values = dict(mac=item.get("mac"), type=item.get("type", "physical"), enabled=bool(item.get("enabled", True)),
                      vlan_id=vlan_id)
        interface_id = (await conn.execute(
            insert(interfaces).values(node_id=node_id, name=name, **values)
            .on_conflict_do_update(index_elements=["node_id", "name"], set_={**values, "updated": func.now()})
            .returning(interfaces.c.id)
        )).scalar_one()
        await conn.execute(delete(ip_addresses).where(ip_addresses.c.interface_id == interface_id))
        for ip, subnet_id in placed:
            await conn.execute(insert(ip_addresses).values(ip=ip, subnet_id=subnet_id, alloc_type=STICKY,
                                                           interface_id=interface_id))
    gone = set(existing) - {str(i["name"]) for i in reported}
    if gone:
        await conn.execute(delete(interfaces).where(interfaces.c.node_id == node_id, interfaces.c.name.in_(gone)))


async def update_services(conn: AsyncConnection, node_id: int, services: list[dict[str, Any]]) -> None:
    for item in services:
        name, status = str(item["name"]), str(item.get("status", "unknown"))
        if name not in RACK_SERVICES or name == "rackd":
            continue  # rackd is the region's judgement, not the rack's
        if status not in SERVICE_STATES:
            status = "unknown"
        values = dict(status=status, status_info=str(item.get("status_info", ""))[:500])
        await conn.execute(
            insert(service_status).values(node_id=node_id, name=name, **values)
            .on_conflict_do_update(index_elements=["node_id", "name"], set_={**values, "updated": func.now()})
        )


async def services_of(conn: AsyncConnection, node_ids: list[int]) -> dict[int, dict[str, tuple[str, str]]]:
    rows = await conn.execute(select(service_status).where(service_status.c.node_id.in_(node_ids)))
    out: dict[int, dict[str, tuple[str, str]]] = {}
    for r in rows:
        out.setdefault(r.node_id, {})[r.name] = (r.status, r.status_info)
    return out


async def interfaces_of(conn: AsyncConnection, node_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    rows = await conn.execute(
        select(interfaces).where(interfaces.c.node_id.in_(node_ids)).order_by(interfaces.c.node_id, interfaces.c.name))
    addresses = await conn.execute(
        select(ip_addresses.c.interface_id, ip_addresses.c.ip, ip_addresses.c.subnet_id)
        .join(interfaces, interfaces.c.id == ip_addresses.c.interface_id)
        .where(interfaces.c.node_id.in_(node_ids)).order_by(ip_addresses.c.id))
    by_interface: dict[int, list[dict[str, Any]]] = {}
    for a in addresses:
        by_interface.setdefault(a.interface_id, []).append({"ip": str(a.ip), "subnet_id": a.subnet_id})
    out: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r.node_id, []).append({**dict(r._mapping), "links": by_interface.get(r.id, [])})
    return out


async def refusals_of(conn: AsyncConnection, node_ids: list[int]) -> dict[int, str]:
    rows = await conn.execute(select(controller_info.c.node_id, controller_info.c.refusal)
                              .where(controller_info.c.node_id.in_(node_ids), controller_info.c.refusal.isnot(None)))
    return {r.node_id: r.refusal for r in rows}


def dhcp_vlan_label(fabric_name: str, vlan_name: str | None) -> str:
    return f"{fabric_name}.{vlan_name or 'untagged'}"


async def dhcp_duties(conn: AsyncConnection, node_id: int) -> list[dict[str, Any]]:
    """VLANs with DHCP on where this rack is primary or secondary."""
    rows = await conn.execute(
        select(vlans.c.id, vlans.c.name, vlans.c.primary_rack_id, vlans.c.secondary_rack_id,
               fabrics.c.name.label("fabric_name"))
        .join(fabrics, fabrics.c.id == vlans.c.fabric_id)
        .where(vlans.c.dhcp_on.is_(True),
               (vlans.c.primary_rack_id == node_id) | (vlans.c.secondary_rack_id == node_id))
        .order_by(vlans.c.id)
    )
    return [dict(r._mapping) for r in rows]


async def delete_rack(conn: AsyncConnection, node: dict[str, Any], force: bool) -> None:
    """Refuse while the rack serves DHCP (unless forced); a region+rack host stays a region."""
    duties = await dhcp_duties(conn, node["id"])
    if duties and not force:
        labels = ", ".join(dhcp_vlan_label(d["fabric_name"], d["name"]) for d in duties)
        raise BadRequest(
            f"Unable to delete '{node['hostname']}'; it is currently set as a primary or secondary rack "
            f"controller on VLANs {labels} with DHCP on. Disable DHCP HA first: move primary_rack/"
            f"secondary_rack to another rack or set dhcp_on=false on those VLANs, or delete with force=true "
            f"(which turns DHCP off on VLANs where it is primary)."
        )
    for duty in duties:
        if duty["primary_rack_id"] == node["id"]:
            await conn.execute(update(vlans).where(vlans.c.id == duty["id"]).values(
                dhcp_on=False, primary_rack_id=None, secondary_rack_id=None, updated=func.now()))
        else:
            await conn.execute(update(vlans).where(vlans.c.id == duty["id"]).values(
                secondary_rack_id=None, updated=func.now()))
    await conn.execute(update(vlans).where(vlans.c.primary_rack_id == node["id"]).values(primary_rack_id=None))
    await conn.execute(update(vlans).where(vlans.c.secondary_rack_id == node["id"]).values(secondary_rack_id=None))
    if node["node_type"] == REGION_AND_RACK:
        await conn.execute(update(nodes).where(nodes.c.id == node["id"]).values(node_type=REGION))
        await conn.execute(delete(interfaces).where(interfaces.c.node_id == node["id"]))
        await conn.execute(delete(service_status).where(service_status.c.node_id == node["id"]))
        await conn.execute(delete(rpc_connections).where(rpc_connections.c.rack_id == node["id"]))
        await conn.execute(delete(rpc_targets).where(rpc_targets.c.rack_id == node["id"]))
    else:
        await conn.execute(delete(nodes).where(nodes.c.id == node["id"], nodes.c.node_type.in_(RACK_TYPES)))


async def remove_rack(conn: AsyncConnection, system_id: str, force: bool, per_rack: int,
                      threshold: float) -> dict[str, Any]:
    """Delete a rack (the API's `rack-controller delete` and the UI's Delete): refused while
    it serves DHCP unless forced; the rack is told to stop and connections are rebalanced."""
    node = await get_controller(conn, RACK_TYPES, system_id)
    await delete_rack(conn, node, force)
    await rpc.announce_rack_event(conn, "deleted", node["system_id"])
    await rpc.rebalance(conn, per_rack, threshold)
    return node
