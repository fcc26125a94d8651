"""Rack connection bookkeeping in the database: endpoints, live connections, balance targets.

The decision of who connects where is ha.connections'; this module feeds it the
database's view and stores its answer. Workers hear about new targets through
NOTIFY and push them to the racks they hold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.ha import connections as ha_connections
from metalplane.region.db.locks import Lock, xact_lock
from metalplane.region.db.tables import nodes, region_processes, rpc_connections, rpc_targets, vlans
from metalplane.region.services import cluster, controllers
from metalplane.region.services.controllers import fresh_process
from metalplane.rpc.endpoint import Endpoint
from metalplane.rpc.nodes import RACK_TYPES
from metalplane.rpc.tls import make_cluster_tls

TLS_KEY = "rpc_tls"
TARGETS_CHANNEL = "metalplane_rpc_targets"
RACK_EVENTS_CHANNEL = "metalplane_rack_events"


@dataclass(frozen=True)
class EndpointRow:
    """A live worker's endpoint, with its process row and its region's hostname."""

    process_id: int
    region_hostname: str
    endpoint: Endpoint

    @property
    def key(self) -> ha_connections.Endpoint:
        """The connection planner's name for it (ha/ keeps its own (region, worker) key)."""
        return ha_connections.Endpoint(self.endpoint.region, self.endpoint.worker)


async def cluster_tls(conn: AsyncConnection) -> dict[str, str]:
    uuid = await cluster.cluster_uuid(conn)
    existing = await cluster.get_value(conn, TLS_KEY)
    if existing:
        return existing
    return await cluster.get_or_create(conn, TLS_KEY, make_cluster_tls(uuid))


async def live_endpoints(conn: AsyncConnection) -> list[EndpointRow]:
    rows = await conn.execute(
        select(
            *region_processes.c["id", "worker_index", "rpc_host", "rpc_port"],
            *nodes.c["system_id", "hostname"],
        )
        .join(nodes, nodes.c.id == region_processes.c.region_id)
        .where(fresh_process)
        .order_by(nodes.c.system_id, region_processes.c.worker_index)
    )
    return [EndpointRow(r.id, r.hostname, Endpoint(r.system_id, r.worker_index, r.rpc_host, r.rpc_port)) for r in rows]


async def process_id(conn: AsyncConnection, region_id: int, worker_index: int) -> int | None:
    return (
        await conn.execute(
            select(region_processes.c.id).where(
                region_processes.c.region_id == region_id, region_processes.c.worker_index == worker_index
            )
        )
    ).scalar_one_or_none()


async def add_connection(conn: AsyncConnection, rack_id: int, process: int) -> None:
    await conn.execute(pg_insert(rpc_connections).values(rack_id=rack_id, process_id=process).on_conflict_do_nothing())


async def remove_connection(conn: AsyncConnection, rack_id: int, process: int) -> None:
    await conn.execute(
        delete(rpc_connections).where(rpc_connections.c.rack_id == rack_id, rpc_connections.c.process_id == process)
    )


async def forget_connection(conn: AsyncConnection, rack_id: int, region_system_id: str, worker: int) -> None:
    process = (
        select(region_processes.c.id)
        .join(nodes, nodes.c.id == region_processes.c.region_id)
        .where(nodes.c.system_id == region_system_id, region_processes.c.worker_index == worker)
        .scalar_subquery()
    )
    await conn.execute(
        delete(rpc_connections).where(rpc_connections.c.rack_id == rack_id, rpc_connections.c.process_id == process)
    )


async def match_process_connections(
    conn: AsyncConnection, process: int, held: set[int], linked_system_ids: set[str], seen_system_ids: set[str]
) -> int:
    """Make `process`'s connection rows follow the racks it holds; how many rows were added
    or removed. `held`: node ids of the racks registered on it (their rows must exist);
    `linked_system_ids`: every rack with a connection open to it, registered or still
    joining; `seen_system_ids`: every rack that has linked to it since it started. Only
    rows of racks seen here and with no connection here now go: a joining rack's row may
    be written before its session knows its node id, and a row this worker never had
    cause to write is not its own to judge."""
    rows = await conn.execute(
        select(rpc_connections.c.rack_id, nodes.c.system_id)
        .join(nodes, nodes.c.id == rpc_connections.c.rack_id)
        .where(rpc_connections.c.process_id == process)
    )
    existing = {r.rack_id: r.system_id for r in rows}
    stale = [
        rack_id
        for rack_id, system_id in existing.items()
        if system_id in seen_system_ids and system_id not in linked_system_ids
    ]
    if stale:
        await conn.execute(
            delete(rpc_connections).where(rpc_connections.c.process_id == process, rpc_connections.c.rack_id.in_(stale))
        )
    missing = sorted(held - set(existing))
    if missing:
        # A rack deleted meanwhile has no node row: nothing to insert for it.
        present = set((await conn.execute(select(nodes.c.id).where(nodes.c.id.in_(missing)))).scalars())
        missing = [r for r in missing if r in present]
    if missing:
        await conn.execute(
            pg_insert(rpc_connections)
            .values([{"rack_id": r, "process_id": process} for r in missing])
            .on_conflict_do_nothing()
        )
    return len(stale) + len(missing)


async def clear_process_connections(conn: AsyncConnection, process: int) -> None:
    await conn.execute(delete(rpc_connections).where(rpc_connections.c.process_id == process))


async def reap_stale_processes(conn: AsyncConnection) -> int:
    """Forget workers whose heartbeat stopped (a killed region); their connections go too.

    The rows go under the rebalance lock, taken first: rebalancing (which holds that
    lock) references process rows, so deleting them before the lock deadlocks."""
    if not (await conn.execute(select(func.count()).select_from(region_processes).where(~fresh_process))).scalar_one():
        return 0
    await xact_lock(conn, Lock.REBALANCE)
    result = await conn.execute(delete(region_processes).where(~fresh_process))
    return result.rowcount


async def forget_process(
    conn: AsyncConnection, region_id: int, worker_index: int, pid: int, per_rack: int, threshold: float
) -> None:
    """A supervisor saw its worker exit: forget it at once (not after its heartbeat times
    out) and re-plan, so its racks are placed on the live workers."""
    await controllers.remove_process(conn, region_id, worker_index, pid)
    await rebalance(conn, per_rack, threshold)


async def connections_by_rack(conn: AsyncConnection) -> dict[str, set[ha_connections.Endpoint]]:
    rack, region = nodes.alias("rack"), nodes.alias("region")
    rows = await conn.execute(
        select(rack.c.system_id.label("rack"), region.c.system_id.label("region"), region_processes.c.worker_index)
        .select_from(rpc_connections)
        .join(rack, rack.c.id == rpc_connections.c.rack_id)
        .join(region_processes, region_processes.c.id == rpc_connections.c.process_id)
        .join(region, region.c.id == region_processes.c.region_id)
        .where(fresh_process)
    )
    out: dict[str, set[ha_connections.Endpoint]] = {}
    for r in rows:
        out.setdefault(r.rack, set()).add(ha_connections.Endpoint(r.region, r.worker_index))
    return out


async def rebalance(conn: AsyncConnection, per_rack: int, threshold: float) -> dict[str, frozenset]:
    """Plan every rack's connections from the live state, store it, and tell the workers."""
    await xact_lock(conn, Lock.REBALANCE)
    endpoints = await live_endpoints(conn)
    current = await connections_by_rack(conn)
    plan = ha_connections.plan_connections(
        list(current), [e.key for e in endpoints], current, per_rack, threshold, on_duty=await dhcp_duty_racks(conn)
    )
    by_key = {e.key: e.process_id for e in endpoints}
    rack_ids = dict(
        (await conn.execute(select(nodes.c.system_id, nodes.c.id).where(nodes.c.system_id.in_(list(plan))))).all()
    )
    wanted = {(rack_ids[rack], by_key[e]) for rack, eps in plan.items() for e in eps if rack in rack_ids}
    stored = {(r.rack_id, r.process_id) for r in await conn.execute(select(rpc_targets))}
    for rack_id, process in stored - wanted:
        await conn.execute(
            delete(rpc_targets).where(rpc_targets.c.rack_id == rack_id, rpc_targets.c.process_id == process)
        )
    added = [{"rack_id": r, "process_id": p} for r, p in wanted - stored]
    if added:
        await conn.execute(insert(rpc_targets), added)
    if added or stored - wanted:
        await conn.execute(text("SELECT pg_notify(:c, '')"), {"c": TARGETS_CHANNEL})
    return plan


async def dhcp_duty_node_ids(conn: AsyncConnection) -> set[int]:
    """Node ids of the racks that are primary or secondary on a VLAN with DHCP on."""
    rows = await conn.execute(
        select(vlans.c.primary_rack_id, vlans.c.secondary_rack_id).where(vlans.c.dhcp_on.is_(True))
    )
    return {rack_id for row in rows for rack_id in row if rack_id is not None}


async def dhcp_duty_racks(conn: AsyncConnection) -> set[str]:
    """System ids of the racks on DHCP duty: the planner keeps them on two regions
    (ha.connections.links_wanted)."""
    ids = await dhcp_duty_node_ids(conn)
    if not ids:
        return set()
    return set((await conn.execute(select(nodes.c.system_id).where(nodes.c.id.in_(ids)))).scalars())


async def holders_of(conn: AsyncConnection, rack_system_id: str) -> list[EndpointRow]:
    """The live worker endpoints a rack is connected to right now."""
    rows = await conn.execute(
        select(rpc_connections.c.process_id)
        .join(nodes, nodes.c.id == rpc_connections.c.rack_id)
        .where(nodes.c.system_id == rack_system_id)
    )
    held = {r.process_id for r in rows}
    return [e for e in await live_endpoints(conn) if e.process_id in held]


async def targets_for(
    conn: AsyncConnection, rack_system_ids: list[str], live: list[EndpointRow] | None = None
) -> dict[str, list[Endpoint]]:
    """Each rack's targets on live workers; `live`: live_endpoints(conn), when already read."""
    endpoints = {e.process_id: e.endpoint for e in (live if live is not None else await live_endpoints(conn))}
    rows = await conn.execute(
        select(nodes.c.system_id, rpc_targets.c.process_id)
        .join(nodes, nodes.c.id == rpc_targets.c.rack_id)
        .where(nodes.c.system_id.in_(rack_system_ids))
    )
    out: dict[str, list[Endpoint]] = {}
    for r in rows:
        if r.process_id in endpoints:
            out.setdefault(r.system_id, []).append(endpoints[r.process_id])
    for targets in out.values():
        targets.sort(key=lambda t: (t.region, t.worker))
    return out


async def announce_rack_event(conn: AsyncConnection, kind: str, system_id: str, **extra: Any) -> None:
    payload = json.dumps({"kind": kind, "system_id": system_id, **extra})
    await conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": RACK_EVENTS_CHANNEL, "p": payload})


async def connected_regions(conn: AsyncConnection, rack_ids: list[int] | None = None) -> dict[int, set[str]]:
    """For each rack node id (all, or those in `rack_ids`): the regions it holds a live connection to."""
    region = nodes.alias("region")
    query = (
        select(rpc_connections.c.rack_id, region.c.system_id)
        .join(region_processes, region_processes.c.id == rpc_connections.c.process_id)
        .join(region, region.c.id == region_processes.c.region_id)
        .where(fresh_process)
    )
    if rack_ids is not None:
        query = query.where(rpc_connections.c.rack_id.in_(rack_ids))
    rows = await conn.execute(query)
    out: dict[int, set[str]] = {}
    for r in rows:
        out.setdefault(r.rack_id, set()).add(r.system_id)
    return out


async def live_region_count(conn: AsyncConnection) -> int:
    return (
        await conn.execute(select(func.count(func.distinct(region_processes.c.region_id))).where(fresh_process))
    ).scalar_one()


async def rack_ids(conn: AsyncConnection) -> dict[str, int]:
    return dict(
        (await conn.execute(select(nodes.c.system_id, nodes.c.id).where(nodes.c.node_type.in_(RACK_TYPES)))).all()
    )
