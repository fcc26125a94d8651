"""Controllers' service statuses (a rack's services, a region's named and chronyd):
stored once per change, each change an event."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.ha.rack_health import status_changes
from metalplane.region.db.tables import nodes, service_status
from metalplane.region.services import events
from metalplane.region.services.rows import only_row

Statuses = dict[str, tuple[str, str]]  # service name -> (status, status_info)


class ServiceStatus(NamedTuple):
    """One entry of a controller's service_set."""

    name: str
    status: str
    info: str = ""


async def _stored(conn: AsyncConnection, node_id: int, *, lock: bool) -> Statuses:
    query = select(service_status.c.name, service_status.c.status, service_status.c.status_info).where(
        service_status.c.node_id == node_id
    )
    rows = await conn.execute(query.with_for_update() if lock else query)
    return {r.name: (r.status, r.status_info) for r in rows}


def _unchanged(stored: Statuses, wanted: Statuses) -> bool:
    return all(stored.get(name) == value for name, value in wanted.items())


async def store(
    conn: AsyncConnection, node_id: int, wanted: Statuses | Callable[[Statuses], Statuses]
) -> list[tuple[str, str, str]]:
    """Store a controller's `wanted` statuses (a rack's report, a region's regiond, named
    and chronyd), or those `wanted` makes of the stored ones (a lost rack's, from what it
    last reported), with its rows locked so two workers never judge the same rows at once.
    Each status change is a SERVICE_STATUS_CHANGED event; unchanged rows are not rewritten.

    Nearly every call changes nothing (each rack reports every few seconds, each region
    judges every region each second), and a row lock is a write in PostgreSQL: the rows
    are read unlocked first, and locked and read again only when something differs."""
    judge = wanted if callable(wanted) else (lambda stored: wanted)
    seen = await _stored(conn, node_id, lock=False)
    if _unchanged(seen, judge(seen)):
        return []
    before = await _stored(conn, node_id, lock=True)
    after = judge(before)
    for name, (status, info) in after.items():
        if before.get(name) == (status, info):
            continue
        values = dict(status=status, status_info=info)
        await conn.execute(
            insert(service_status)
            .values(node_id=node_id, name=name, **values)
            .on_conflict_do_update(index_elements=["node_id", "name"], set_={**values, "updated": func.now()})
        )
    changes = status_changes(before, after)
    if changes:
        node = (
            await only_row(conn, select(nodes.c.id, nodes.c.system_id, nodes.c.hostname).where(nodes.c.id == node_id))
        )._mapping
        for name, old, new in changes:
            info = after[name][1][:200]
            await events.record(
                conn, dict(node), "SERVICE_STATUS_CHANGED", f"{name}: {old} -> {new}" + (f" ({info})" if info else "")
            )
    return changes


async def of_nodes(conn: AsyncConnection, node_ids: list[int]) -> dict[int, dict[str, tuple[str, str]]]:
    rows = await conn.execute(select(service_status).where(service_status.c.node_id.in_(node_ids)))
    out: dict[int, dict[str, tuple[str, str]]] = {}
    for r in rows:
        out.setdefault(r.node_id, {})[r.name] = (r.status, r.status_info)
    return out
