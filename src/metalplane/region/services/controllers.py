"""Controllers in the database: region registration, worker processes, heartbeats."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.identity import new_system_id as new_system_id  # re-exported for machines, the supervisor
from metalplane.region.budget import RegionNeed
from metalplane.region.db.locks import Lock, xact_lock
from metalplane.region.db.tables import controller_info, nodes, region_processes, service_status, zones
from metalplane.region.errors import NotFound
from metalplane.region.services import domain_views, service_statuses
from metalplane.rpc.nodes import CONTROLLER_TYPES, RACK_TYPES, REGION_TYPES, NodeType

# A worker heartbeats every HEARTBEAT_INTERVAL; one silent for PROCESS_TIMEOUT is gone.
HEARTBEAT_INTERVAL = 1.0
PROCESS_TIMEOUT = 4.0
# A worker process whose heartbeat is recent enough to count as alive.
fresh_process = region_processes.c.updated > func.now() - text(f"interval '{PROCESS_TIMEOUT} seconds'")


def combined_type(existing: int, adding: int) -> NodeType:
    """A host that is both region and rack is one node of type 4, as in MAAS."""
    if existing == adding:
        return NodeType(existing)
    if {existing, adding} <= set(CONTROLLER_TYPES):
        return NodeType.REGION_AND_RACK_CONTROLLER
    return NodeType(adding)


@dataclass(frozen=True)
class Process:
    pid: int
    worker_index: int
    rpc_host: str
    rpc_port: int
    updated: datetime


async def ensure_controller_node(conn: AsyncConnection, system_id: str, hostname: str, role: int, version: str) -> int:
    """Create or update a controller's node; safe when two connections register at once."""
    await conn.execute(
        insert(nodes)
        .values(
            system_id=system_id,
            hostname=hostname,
            node_type=role,
            version=version,
            zone_id=select(zones.c.id).where(zones.c.name == "default").scalar_subquery(),
        )
        .on_conflict_do_nothing(index_elements=[nodes.c.system_id])
    )
    row = (
        await conn.execute(
            select(nodes.c.id, nodes.c.node_type).where(nodes.c.system_id == system_id).with_for_update()
        )
    ).one()
    await conn.execute(
        update(nodes)
        .where(nodes.c.id == row.id)
        .values(
            hostname=hostname,
            node_type=combined_type(row.node_type, role),
            version=version,
            updated=func.now(),
        )
    )
    return row.id


@dataclass(frozen=True)
class RegionInfo:
    """What a region reports about itself at start (its controller_info row): its workers,
    the database connections they need, and where its API, named and chronyd listen."""

    num_workers: int
    connections_needed: int
    api_port: int
    maas_url: str | None = None
    address: str | None = None
    dns_port: int = 0
    ntp_port: int = 0


async def register_region(conn: AsyncConnection, system_id: str, hostname: str, version: str, info: RegionInfo) -> int:
    """Record the region; `info.address` and the ports are where racks reach its named and chronyd
    (a change there changes the zones' NS addresses and every rack's forwarders)."""
    node_id = await ensure_controller_node(conn, system_id, hostname, NodeType.REGION_CONTROLLER, version)
    values = asdict(info)
    await conn.execute(
        insert(controller_info)
        .values(node_id=node_id, **values)
        .on_conflict_do_update(index_elements=[controller_info.c.node_id], set_={**values, "updated": func.now()})
    )
    return node_id


async def register_process(
    conn: AsyncConnection, region_id: int, worker_index: int, pid: int, rpc_host: str, rpc_port: int, pool_size: int
) -> None:
    values = dict(pid=pid, rpc_host=rpc_host, rpc_port=rpc_port, pool_size=pool_size)
    await conn.execute(
        insert(region_processes)
        .values(region_id=region_id, worker_index=worker_index, **values)
        .on_conflict_do_update(
            index_elements=[region_processes.c.region_id, region_processes.c.worker_index],
            set_={**values, "created": func.now(), "updated": func.now()},
        )
    )


async def heartbeat_process(conn: AsyncConnection, region_id: int, worker_index: int, pid: int) -> bool:
    """False when the row is gone or belongs to another pid (we were replaced)."""
    result = await conn.execute(
        update(region_processes)
        .where(
            region_processes.c.region_id == region_id,
            region_processes.c.worker_index == worker_index,
            region_processes.c.pid == pid,
        )
        .values(updated=func.now())
    )
    return result.rowcount == 1


async def heartbeat_live_processes(conn: AsyncConnection, region_id: int, pids: list[int]) -> None:
    """The supervisor vouches for the workers it sees running. A worker's own beat can
    stall behind a busy event loop (hundreds of racks handshaking); reaping it then
    would cut its racks' connections out of the model and set off rebalancing."""
    if pids:
        await conn.execute(
            update(region_processes)
            .where(region_processes.c.region_id == region_id, region_processes.c.pid.in_(pids))
            .values(updated=func.now())
        )


async def remove_process(conn: AsyncConnection, region_id: int, worker_index: int, pid: int | None = None) -> None:
    """Forget a worker (it stopped, or its supervisor saw it die), under the rebalance lock
    taken first, as reap_stale_processes does: a rebalance holds that lock while it writes
    rows that reference process rows, so deleting one before taking the lock deadlocks."""
    await xact_lock(conn, Lock.REBALANCE)
    query = delete(region_processes).where(
        region_processes.c.region_id == region_id, region_processes.c.worker_index == worker_index
    )
    if pid is not None:
        query = query.where(region_processes.c.pid == pid)
    await conn.execute(query)


async def remove_region_processes(conn: AsyncConnection, region_id: int) -> None:
    await xact_lock(conn, Lock.REBALANCE)  # see remove_process
    await conn.execute(delete(region_processes).where(region_processes.c.region_id == region_id))


async def live_processes(conn: AsyncConnection, region_id: int) -> list[Process]:
    rows = await conn.execute(
        select(region_processes)
        .where(
            region_processes.c.region_id == region_id,
            fresh_process,
        )
        .order_by(region_processes.c.worker_index)
    )
    return [Process(r.pid, r.worker_index, r.rpc_host, r.rpc_port, r.updated) for r in rows]


async def region_needs(conn: AsyncConnection) -> list[RegionNeed]:
    rows = await conn.execute(
        select(nodes.c.hostname, nodes.c.system_id, controller_info.c.connections_needed)
        .join(controller_info, controller_info.c.node_id == nodes.c.id)
        .where(nodes.c.node_type.in_(REGION_TYPES))
    )
    return [RegionNeed(f"{r.hostname}({r.system_id})", r.connections_needed) for r in rows]


async def connection_limits(conn: AsyncConnection) -> tuple[int, int]:
    """max_connections and the slots reserved for superusers (and, on 16+, reserved roles)."""
    rows = await conn.execute(
        text(
            "SELECT name, setting FROM pg_settings "
            "WHERE name IN ('max_connections', 'superuser_reserved_connections', 'reserved_connections')"
        )
    )
    settings = {r.name: int(r.setting) for r in rows}
    reserved = settings.get("superuser_reserved_connections", 0) + settings.get("reserved_connections", 0)
    return settings["max_connections"], reserved


async def list_controllers(
    conn: AsyncConnection,
    types: tuple[int, ...],
    system_ids: list[str] | None = None,
    hostnames: list[str] | None = None,
) -> list[dict]:
    query = (
        select(
            nodes,
            zones.c.name.label("zone_name"),
            zones.c.description.label("zone_description"),
            zones.c.id.label("zone_ref"),
        )
        .join(zones, zones.c.id == nodes.c.zone_id)
        .where(nodes.c.node_type.in_(types))
        .order_by(nodes.c.id)
    )
    if system_ids:
        query = query.where(nodes.c.system_id.in_(system_ids))
    if hostnames:
        query = query.where(nodes.c.hostname.in_(hostnames))
    return [dict(r._mapping) for r in await conn.execute(query)]


#: A region's services as region-controllers read shows them (MAAS's names).
REGION_SERVICES = ("regiond", "bind9", "ntp_region")


@dataclass(frozen=True)
class RegionView:
    node: dict
    processes: list[Process]  # its live workers
    services: list[tuple[str, str, str]]  # (name, status, status_info): regiond, bind9, ntp_region
    domain: Any = None  # its DomainView


def regiond_status(live: int, wanted: int) -> tuple[str, str]:
    """The region's own health, from its workers' heartbeats (a silent one is gone in 4 s)."""
    if live == 0:
        return "dead", "no live worker: the region is not running"
    if live < wanted:
        return "degraded", f"{live} of {wanted} workers live"
    return "running", f"{live} worker{'' if live == 1 else 's'} live"


def _regiond_row(live: int, wanted: int | None) -> Callable[[service_statuses.Statuses], service_statuses.Statuses]:
    """regiond's row from its live workers; none yet for a region that has never run one
    (it is being set up, not dead)."""

    def judged(before: service_statuses.Statuses) -> service_statuses.Statuses:
        if live == 0 and "regiond" not in before:
            return {}
        return {"regiond": regiond_status(live, wanted or live)}

    return judged


async def record_regiond_statuses(conn: AsyncConnection) -> list[tuple[int, str, str, str]]:
    """Store each region's regiond status, judged from its workers' heartbeats, as its
    service row, so that a change (a region dying or returning, a worker lost) is an event
    like any other service's. Every live region's heartbeat runs this: whichever sees a
    change first records it; the others find the row already changed (it is locked)."""
    counted = await conn.execute(
        select(region_processes.c.region_id, func.count().label("n"))
        .where(fresh_process)
        .group_by(region_processes.c.region_id)
    )
    live: dict[int, int] = {r.region_id: r.n for r in counted}
    regions = await conn.execute(
        select(nodes.c.id, controller_info.c.num_workers)
        .join(controller_info, controller_info.c.node_id == nodes.c.id)
        .where(nodes.c.node_type.in_(REGION_TYPES))
        .order_by(nodes.c.id)
    )
    changes: list[tuple[int, str, str, str]] = []
    for node_id, wanted in regions.all():
        changed = await service_statuses.store(conn, node_id, _regiond_row(live.get(node_id, 0), wanted))
        changes += [(node_id, *change) for change in changed]
    return changes


async def _region_view(conn: AsyncConnection, node: dict) -> RegionView:
    processes = await live_processes(conn, node["id"])
    wanted = (
        await conn.execute(select(controller_info.c.num_workers).where(controller_info.c.node_id == node["id"]))
    ).scalar() or len(processes)
    regiond = regiond_status(len(processes), wanted)
    rows = await conn.execute(
        select(service_status.c.name, service_status.c.status, service_status.c.status_info).where(
            service_status.c.node_id == node["id"]
        )
    )
    reported = {r.name: (r.status, r.status_info) for r in rows}
    services = [("regiond", *regiond)]
    for name in REGION_SERVICES[1:]:
        status, info = reported.get(name, ("unknown", ""))
        if regiond[0] == "dead" and status != "off":  # its daemons die with it (and cannot say so)
            status, info = "dead", "the region is not running"
        services.append((name, status, info))
    return RegionView(node, processes, services, (await domain_views.node_domains(conn, [node])).get(node["id"]))


async def show_regions(
    conn: AsyncConnection, system_ids: list[str] | None = None, hostnames: list[str] | None = None
) -> list[RegionView]:
    return [
        await _region_view(conn, node) for node in await list_controllers(conn, REGION_TYPES, system_ids, hostnames)
    ]


async def show_region(conn: AsyncConnection, system_id: str) -> RegionView:
    return await _region_view(conn, await get_controller(conn, REGION_TYPES, system_id))


async def get_controller(conn: AsyncConnection, types: tuple[int, ...], system_id: str) -> dict:
    found = await list_controllers(conn, types, system_ids=[system_id]) if "\x00" not in system_id else []
    if not found:
        raise NotFound("RackController" if set(types) <= set(RACK_TYPES) else "RegionController")
    return found[0]


async def system_id_of(conn: AsyncConnection, node_id: int) -> str:
    return (await conn.execute(select(nodes.c.system_id).where(nodes.c.id == node_id))).scalar_one()
