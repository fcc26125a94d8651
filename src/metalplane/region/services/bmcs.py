"""BMC ownership: one live rack per BMC, spread evenly, moved when a rack dies.

Candidates for a BMC are the live racks on its layer-2 subnet; failing those,
live racks that have proven they reach it (a successful call); failing those,
every live rack (one of them will prove itself). `ha.bmc_owners` decides both
the candidates and the owners (keeping current owners when it can and moving
the fewest BMCs); this module feeds it from the database and stores the plan.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.ha import bmc_owners
from metalplane.hostport import split_host_port
from metalplane.region.db.locks import Lock, xact_lock
from metalplane.region.db.tables import bmc_routes, bmcs, interfaces, nodes, subnets
from metalplane.region.db.transaction import Transaction, on_commit
from metalplane.region.services import connections, settings
from metalplane.region.services.rows import first_row
from metalplane.rpc import power_schema as schema
from metalplane.rpc.nodes import RACK_TYPES


def bmc_host(power_type: str, params: dict[str, Any]) -> str | None:
    """The BMC's host, to find its subnet (None for webhook/manual or a bad address)."""
    address = schema.bmc_address(power_type, params)
    if not address:
        return None
    if "://" in address:
        return urlsplit(address).hostname
    try:
        host, _ = split_host_port(address, 623)
    except ValueError:
        return None
    return host


async def _racks_by_vlan(conn: AsyncConnection) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for r in await conn.execute(
        select(interfaces.c.vlan_id, interfaces.c.node_id)
        .join(nodes, nodes.c.id == interfaces.c.node_id)
        .where(nodes.c.node_type.in_(RACK_TYPES), interfaces.c.vlan_id.isnot(None))
    ):
        out.setdefault(r.vlan_id, set()).add(r.node_id)
    return out


async def candidates(
    conn: AsyncConnection, exclude: frozenset[int] = frozenset()
) -> tuple[dict[int, set[int]], dict[int, int | None]]:
    """(BMC id -> candidate rack ids, BMC id -> current owner). `exclude`: racks known
    dead a moment before the database hears of it (a call just lost them)."""
    live = set(await connections.connected_regions(conn)) - exclude
    nets = [
        (r.vlan_id, ipaddress.ip_network(str(r.cidr)))
        for r in await conn.execute(select(subnets.c.vlan_id, subnets.c.cidr))
    ]
    by_vlan = await _racks_by_vlan(conn)
    owners: dict[int, int | None] = {}
    hosts: dict[int, str | None] = {}
    for b in await conn.execute(select(bmcs)):
        owners[b.id] = b.owner_rack_id
        hosts[b.id] = bmc_host(b.power_type, b.power_parameters)
    proven: dict[int, set[int]] = {}
    for r in await conn.execute(select(bmc_routes)):
        proven.setdefault(r.bmc_id, set()).add(r.rack_id)
    on_subnet = bmc_owners.racks_on_subnet(hosts, nets, by_vlan)
    return bmc_owners.choose_candidates(list(owners), on_subnet, proven, live), owners


async def reassign(conn: AsyncConnection, threshold: float, exclude: frozenset[int] = frozenset()) -> int:
    """Give every BMC a live owner with the fewest moves; tell racks whose set changed."""
    await xact_lock(conn, Lock.BMC_OWNERS)
    cands, owners = await candidates(conn, exclude)
    current = {b: o for b, o in owners.items() if o is not None}
    plan = bmc_owners.plan_owners(list(owners), cands, current, threshold)
    changed_racks: set[int] = set()
    moved = 0
    for bmc_id, old in owners.items():
        new = plan.get(bmc_id)
        if new != old:
            await conn.execute(update(bmcs).where(bmcs.c.id == bmc_id).values(owner_rack_id=new, updated=func.now()))
            changed_racks.update(r for r in (old, new) if r is not None)
            moved += old is not None
    if changed_racks:
        ids = [r.system_id for r in await conn.execute(select(nodes.c.system_id).where(nodes.c.id.in_(changed_racks)))]
        await connections.announce_rack_event(conn, "bmcs", "", racks=ids)
    return moved


def owners_changed(conn: AsyncConnection) -> None:
    """Queue a recheck of every BMC's owner on this transaction (BMCs or machines changed)."""

    async def recheck(tx: Transaction) -> None:
        await reassign(tx.conn, tx.region_config.balance_threshold)

    on_commit(conn, "bmc owners", recheck)


async def needs_reassignment(conn: AsyncConnection) -> bool:
    """Cheap check for the supervisor: an unowned BMC, or one whose owner is not live."""
    live = set(await connections.connected_regions(conn))
    for r in await conn.execute(select(bmcs.c.owner_rack_id)):
        if r.owner_rack_id is None or r.owner_rack_id not in live:
            return bool(live)
    return False


async def owner_of(conn: AsyncConnection, bmc_id: int) -> tuple[int, str] | None:
    row = await first_row(
        conn,
        select(nodes.c.id, nodes.c.system_id).join(bmcs, bmcs.c.owner_rack_id == nodes.c.id).where(bmcs.c.id == bmc_id),
    )
    return (row.id, row.system_id) if row else None


async def record_result(conn: AsyncConnection, rack_id: int, bmc_id: int, error: str | None) -> None:
    """A call's outcome: success proves the route; failure marks the BMC with the error."""
    if error is None:
        await conn.execute(
            insert(bmc_routes)
            .values(bmc_id=bmc_id, rack_id=rack_id)
            .on_conflict_do_update(index_elements=["bmc_id", "rack_id"], set_={"updated": func.now()})
        )
        await conn.execute(
            update(bmcs).where(bmcs.c.id == bmc_id, bmcs.c.failing.is_(True)).values(failing=False, last_error="")
        )
    else:
        await conn.execute(update(bmcs).where(bmcs.c.id == bmc_id).values(failing=True, last_error=error[:1000]))


async def poll_targets(conn: AsyncConnection, rack_id: int) -> dict[str, Any]:
    """The machines behind the BMCs this rack owns, with their full power parameters,
    and the polling settings."""
    rows = await conn.execute(
        select(
            *nodes.c["system_id", "instance_power_parameters"],
            bmcs.c.id.label("bmc_id"),
            *bmcs.c["power_type", "power_parameters"],
        )
        .join(bmcs, bmcs.c.id == nodes.c.bmc_id)
        .where(bmcs.c.owner_rack_id == rack_id)
        .order_by(nodes.c.system_id)
    )
    targets = [
        {
            "system_id": r.system_id,
            "bmc_id": r.bmc_id,
            "power_type": r.power_type,
            "params": {**r.power_parameters, **r.instance_power_parameters},
        }
        for r in rows
    ]
    return {
        "targets": targets,
        "settings": {
            "poll_interval": await settings.get_setting(conn, "power_poll_interval"),
            "max_concurrency": await settings.get_setting(conn, "power_max_concurrency"),
        },
    }


async def overview(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Every BMC with its owner and candidates, for the API."""
    cands, _ = await candidates(conn)
    names = dict(
        (await conn.execute(select(nodes.c.id, nodes.c.system_id).where(nodes.c.node_type.in_(RACK_TYPES)))).all()
    )
    machines: dict[int, list[str]] = {}
    for r in await conn.execute(select(nodes.c.bmc_id, nodes.c.system_id).where(nodes.c.bmc_id.isnot(None))):
        machines.setdefault(r.bmc_id, []).append(r.system_id)
    out = []
    for b in await conn.execute(select(bmcs).order_by(bmcs.c.id)):
        out.append(
            {
                "id": b.id,
                "power_type": b.power_type,
                "address": schema.bmc_address(b.power_type, b.power_parameters),
                "owner": names.get(b.owner_rack_id),
                "candidates": sorted(names[r] for r in cands.get(b.id, set()) if r in names),
                "machines": sorted(machines.get(b.id, [])),
                "failing": b.failing,
                "last_error": b.last_error,
            }
        )
    return out


async def ownership(conn: AsyncConnection) -> dict[str, Any]:
    """Every BMC with its owner and candidates, and how evenly owners are spread."""
    rows = await overview(conn)
    return {"bmcs": rows, **owner_spread(rows)}


def owner_spread(rows: list[dict[str, Any]]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for b in rows:
        for c in b["candidates"]:
            counts.setdefault(c, 0)
        if b["owner"]:
            counts[b["owner"]] = counts.get(b["owner"], 0) + 1
    mean = sum(counts.values()) / len(counts) if counts else 0
    return {"owners": counts, "max_over_mean": round(max(counts.values()) / mean, 4) if mean else 1.0}
