"""Controllers as people look at them: status, services, connections, duties.

A rack's services come from `racks.service_sets`, as the API's rack
`service_set` does, so "running", "degraded" and "dead" mean the same thing
everywhere. Every query is bounded by the page of controllers asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane import __version__
from metalplane.ha.dhcp_peers import ha_state_status, kea_ha_state, kea_instance_name, role_on_vlan
from metalplane.region.db.tables import (
    bmcs,
    controller_info,
    fabrics,
    nodes,
    region_processes,
    rpc_connections,
    service_status,
    subnets,
    vlans,
)
from metalplane.region.services import connections, controllers, racks, settings
from metalplane.region.services.controllers import get_controller
from metalplane.region.services.rows import only_row
from metalplane.region.services.service_statuses import ServiceStatus
from metalplane.rpc import power_schema
from metalplane.rpc.nodes import CONTROLLER_TYPES, RACK_TYPES, REGION_TYPES, NodeType

# Worst first: a controller's status is the worst of its services'.
STATUS_ORDER = ("dead", "degraded", "unknown", "running", "off")


@dataclass
class ControllerRow:
    id: int
    system_id: str
    hostname: str
    node_type: int
    version: str
    services: list[ServiceStatus] = field(default_factory=list)
    connections: list[str] = field(default_factory=list)
    last_seen: datetime | None = None
    maas_url: str | None = None

    @property
    def type_name(self) -> str:
        return NodeType(self.node_type).label

    @property
    def is_region(self) -> bool:
        return self.node_type in REGION_TYPES

    @property
    def is_rack(self) -> bool:
        return self.node_type in RACK_TYPES

    @property
    def status(self) -> str:
        return overall_status(self.services)


def overall_status(services: list[ServiceStatus]) -> str:
    """The worst status among services that are meant to run ("off" ones do not count)."""
    statuses = [s.status for s in services if s.status != "off"]
    if not statuses:
        return "unknown"
    return min(statuses, key=lambda s: STATUS_ORDER.index(s) if s in STATUS_ORDER else 2)


def regiond_status(live_workers: int, num_workers: int) -> ServiceStatus:
    return ServiceStatus("regiond", *controllers.regiond_status(live_workers, num_workers))


def version_check(version: str, mine: str = __version__) -> tuple[bool, str]:
    """(compatible, text): the RPC handshake refuses a different major.minor."""
    if not version:
        return False, "unknown version"
    if version.split(".")[:2] == mine.split(".")[:2]:
        same = "the same as" if version == mine else "compatible with"
        return True, f"{version}: {same} this region ({mine})"
    return False, f"{version}: this region runs {mine}; major.minor must match"


async def _region_workers(conn: AsyncConnection, region_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Each region's live workers with the number of rack connections each holds."""
    held = (
        select(rpc_connections.c.process_id, func.count().label("racks"))
        .group_by(rpc_connections.c.process_id)
        .subquery()
    )
    rows = await conn.execute(
        select(
            *region_processes.c["region_id", "worker_index", "pid", "rpc_port", "updated"],
            func.coalesce(held.c.racks, 0).label("racks"),
        )
        .outerjoin(held, held.c.process_id == region_processes.c.id)
        .where(region_processes.c.region_id.in_(region_ids), connections.fresh_process)
        .order_by(region_processes.c.region_id, region_processes.c.worker_index)
    )
    out: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r.region_id, []).append(dict(r._mapping))
    return out


async def _rack_links(conn: AsyncConnection, rack_ids: list[int]) -> dict[int, list[str]]:
    """For each rack: "region-host · worker N" for every live connection it holds."""
    region = nodes.alias("region")
    rows = await conn.execute(
        select(rpc_connections.c.rack_id, region.c.hostname, region_processes.c.worker_index)
        .join(region_processes, region_processes.c.id == rpc_connections.c.process_id)
        .join(region, region.c.id == region_processes.c.region_id)
        .where(rpc_connections.c.rack_id.in_(rack_ids), connections.fresh_process)
        .order_by(region.c.hostname, region_processes.c.worker_index)
    )
    out: dict[int, list[str]] = {}
    for r in rows:
        out.setdefault(r.rack_id, []).append(f"{r.hostname} · worker {r.worker_index}")
    return out


async def _rack_last_seen(conn: AsyncConnection, rack_ids: list[int]) -> dict[int, datetime]:
    """When each rack last reported its services (every 5 s while connected)."""
    rows = await conn.execute(
        select(service_status.c.node_id, func.max(service_status.c.updated).label("seen"))
        .where(service_status.c.node_id.in_(rack_ids))
        .group_by(service_status.c.node_id)
    )
    return {r.node_id: r.seen for r in rows}


async def _rows(conn: AsyncConnection, node_rows: Sequence[Any]) -> list[ControllerRow]:
    out = [
        ControllerRow(
            r.id, r.system_id, r.hostname, r.node_type, r.version or "", maas_url=r.maas_url, last_seen=r.info_updated
        )
        for r in node_rows
    ]
    region_ids = [c.id for c in out if c.is_region]
    rack_ids = [c.id for c in out if c.is_rack]
    workers = await _region_workers(conn, region_ids) if region_ids else {}
    service_sets = await racks.service_sets(conn, rack_ids)
    links = await _rack_links(conn, rack_ids) if rack_ids else {}
    reported = await _rack_last_seen(conn, rack_ids) if rack_ids else {}
    num_workers = {r.id: r.num_workers or 0 for r in node_rows}
    for c in out:
        seen = [c.last_seen]  # when its controller_info row last changed (registration; a region's heartbeat)
        if c.is_region:
            mine = workers.get(c.id, [])
            c.services.append(regiond_status(len(mine), num_workers[c.id]))
            c.connections.extend(
                f"worker {w['worker_index']}: {w['racks']} rack{'s' if w['racks'] != 1 else ''}" for w in mine
            )
            seen.extend(w["updated"] for w in mine)
        if c.is_rack:
            c.services.extend(service_sets[c.id])
            c.connections.extend(links.get(c.id, []))
            seen.append(reported.get(c.id))
        c.last_seen = max(filter(None, seen), default=None)
    return out


def _controller_select():
    return (
        select(
            *nodes.c["id", "system_id", "hostname", "node_type", "version"],
            *controller_info.c["num_workers", "maas_url"],
            controller_info.c.updated.label("info_updated"),
        )
        .outerjoin(controller_info, controller_info.c.node_id == nodes.c.id)
        .where(nodes.c.node_type.in_(CONTROLLER_TYPES))
    )


async def controller_page(conn: AsyncConnection, offset: int = 0, limit: int = 50) -> tuple[list[ControllerRow], int]:
    """One page of controllers by hostname, and how many there are in all."""
    total = (
        await conn.execute(select(func.count()).select_from(nodes).where(nodes.c.node_type.in_(CONTROLLER_TYPES)))
    ).scalar_one()
    page = (
        await conn.execute(
            _controller_select().order_by(nodes.c.hostname, nodes.c.id).offset(max(offset, 0)).limit(limit)
        )
    ).all()
    return await _rows(conn, page), total


async def region_urls(conn: AsyncConnection) -> list[str]:
    """Every region's maas_url, as each region recorded it when it started."""
    rows = await conn.execute(
        select(controller_info.c.maas_url)
        .join(nodes, nodes.c.id == controller_info.c.node_id)
        .where(nodes.c.node_type.in_(REGION_TYPES), controller_info.c.maas_url.isnot(None))
        .order_by(nodes.c.hostname)
    )
    return list(dict.fromkeys(r.maas_url for r in rows))


async def _dhcp_vlans(conn: AsyncConnection, rack: ControllerRow) -> list[dict[str, Any]]:
    """The VLANs the rack serves DHCP on, its role there, and the Kea HA state it last
    reported for that VLAN's Kea process (the text of its dhcpd service)."""
    duties = await racks.dhcp_duties(conn, rack.id)
    peer_ids = {d["primary_rack_id"] for d in duties} | {d["secondary_rack_id"] for d in duties}
    hostnames = dict(
        (
            await conn.execute(select(nodes.c.id, nodes.c.hostname).where(nodes.c.id.in_(peer_ids - {None, rack.id})))
        ).all()
    )
    mode = await settings.get_setting(conn, "dhcp_ha_mode")
    report = next((s.info for s in rack.services if s.name == "dhcpd"), "")
    out = []
    for duty in duties:
        vlan = await only_row(conn, select(vlans.c.vid, vlans.c.fabric_id).where(vlans.c.id == duty["id"]))
        role = role_on_vlan(rack.id, duty["primary_rack_id"], duty["secondary_rack_id"])
        peer = duty["secondary_rack_id"] if role == "primary" else duty["primary_rack_id"]
        ha_state = None
        if role in ("primary", "secondary"):
            ha_state = kea_ha_state(report, kea_instance_name(role, hostnames.get(peer), mode))
        out.append(
            {
                "vlan_id": duty["id"],
                "vid": vlan.vid,
                "fabric_id": vlan.fabric_id,
                "label": racks.dhcp_vlan_label(duty["fabric_name"], duty["name"]),
                "role": role,
                "peer": hostnames.get(peer) if role != "standalone" else None,
                "ha_state": ha_state,
                "ha_status": ha_state_status(ha_state),
            }
        )
    return out


async def _owned_bmcs(conn: AsyncConnection, node_id: int, limit: int = 200) -> list[dict[str, Any]]:
    machines = (
        select(nodes.c.bmc_id, func.count().label("machines"))
        .where(nodes.c.bmc_id.isnot(None))
        .group_by(nodes.c.bmc_id)
        .subquery()
    )
    rows = await conn.execute(
        select(bmcs, func.coalesce(machines.c.machines, 0).label("machines"))
        .outerjoin(machines, machines.c.bmc_id == bmcs.c.id)
        .where(bmcs.c.owner_rack_id == node_id)
        .order_by(bmcs.c.id)
        .limit(limit)
    )
    return [
        {
            "id": b.id,
            "power_type": b.power_type,
            "address": power_schema.bmc_address(b.power_type, b.power_parameters),
            "machines": b.machines,
            "failing": b.failing,
            "last_error": b.last_error,
        }
        for b in rows
    ]


async def _interfaces(conn: AsyncConnection, node_id: int) -> list[dict[str, Any]]:
    found = (await racks.interfaces_of(conn, [node_id])).get(node_id, [])
    subnet_ids = {link["subnet_id"] for i in found for link in i["links"] if link["subnet_id"]}
    vlan_ids = {i["vlan_id"] for i in found if i["vlan_id"]}
    cidrs = dict((await conn.execute(select(subnets.c.id, subnets.c.cidr).where(subnets.c.id.in_(subnet_ids)))).all())
    labels = {
        r.id: f"{r.fabric_name}.{r.name or ('untagged' if r.vid == 0 else r.vid)}"
        for r in await conn.execute(
            select(vlans.c.id, vlans.c.name, vlans.c.vid, fabrics.c.name.label("fabric_name"))
            .join(fabrics, fabrics.c.id == vlans.c.fabric_id)
            .where(vlans.c.id.in_(vlan_ids))
        )
    }
    return [
        {
            "name": i["name"],
            "mac": i["mac"],
            "type": i["type"],
            "enabled": i["enabled"],
            "vlan": labels.get(i["vlan_id"], ""),
            "addresses": [f"{link['ip']} ({cidrs.get(link['subnet_id'], 'no subnet')})" for link in i["links"]],
        }
        for i in found
    ]


async def controller_detail(conn: AsyncConnection, system_id: str) -> dict[str, Any]:
    """Everything the controller page shows; NotFound when no controller has this system_id."""
    node = await get_controller(conn, CONTROLLER_TYPES, system_id)
    info = await only_row(conn, _controller_select().where(nodes.c.id == node["id"]))
    (row,) = await _rows(conn, [info])
    compatible, version_text = version_check(row.version)
    detail: dict[str, Any] = {
        "controller": row,
        "version_ok": compatible,
        "version_text": version_text,
        "workers": [],
        "dhcp_vlans": [],
        "bmcs": [],
        "interfaces": [],
    }
    if row.is_region:
        detail["workers"] = (await _region_workers(conn, [row.id])).get(row.id, [])
    if row.is_rack:
        detail["dhcp_vlans"] = await _dhcp_vlans(conn, row)
        detail["bmcs"] = await _owned_bmcs(conn, row.id)
        detail["interfaces"] = await _interfaces(conn, row.id)
    return detail
