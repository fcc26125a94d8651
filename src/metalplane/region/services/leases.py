"""DHCP lease events from racks, stored once per address.

Both racks of an HA pair report the same leases; an event only overwrites a
lease row when it is at least as recent, so duplicates and replays (a rack's
queue is at-least-once) change nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from ipaddress import ip_address, ip_network
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import dhcp_leases, subnets
from metalplane.region.services import consequences

STATES = {"commit": "active", "release": "released", "expiry": "expired", "decline": "released"}


def _time(value: Any) -> datetime | None:
    if value in (None, 0, ""):
        return None
    return datetime.fromtimestamp(float(value), tz=UTC)


def subnet_for(ip: str, networks: list[tuple[int, Any]]) -> int | None:
    """The most specific known subnet holding `ip`."""
    address = ip_address(ip)
    best: tuple[int, int] | None = None
    for subnet_id, network in networks:
        if address in network and (best is None or network.prefixlen > best[1]):
            best = (subnet_id, network.prefixlen)
    return best[0] if best else None


def event_time(event: dict[str, Any], state: str) -> datetime:
    """When the change happened, so that replays and the peer's copy order right:
    a commit at the client's last transmission, an expiry at the expiry, a
    release when the rack saw it."""
    if state == "active":
        moment = event.get("cltt")
    elif state == "expired":
        moment = event.get("expires")
    else:
        moment = event.get("time")
    return _time(moment) or _time(event.get("time")) or datetime.now(UTC)


def lease_row(event: dict[str, Any], networks: list[tuple[int, Any]], rack_id: int) -> dict[str, Any] | None:
    """The lease row an event from the rack's DHCP engine (rack.dhcp.leases) leads to."""
    state = STATES.get(str(event.get("action")))
    if state is None or not event.get("ip"):
        return None
    ip = str(ip_address(str(event["ip"])))
    return {
        "ip": ip,
        "mac": str(event.get("mac") or "").lower(),
        "hostname": str(event.get("hostname") or ""),
        "subnet_id": subnet_for(ip, networks),
        "state": state,
        "expires": _time(event.get("expires")) if state == "active" else None,
        "changed": event_time(event, state),
        "reported_by": rack_id,
    }


async def apply_events(conn: AsyncConnection, rack_id: int, events: list[dict[str, Any]]) -> int:
    """Store a batch; returns how many events changed a row."""
    networks = [(r.id, ip_network(str(r.cidr))) for r in await conn.execute(select(subnets.c.id, subnets.c.cidr))]
    changed = 0
    for event in events:
        row = lease_row(event, networks, rack_id)
        if row is None:
            continue
        excluded = insert(dhcp_leases).excluded
        statement = (
            insert(dhcp_leases)
            .values(**row)
            .on_conflict_do_update(
                index_elements=[dhcp_leases.c.ip],
                set_={k: excluded[k] for k in row if k != "ip"} | {"updated": func.now()},
                where=dhcp_leases.c.changed <= excluded.changed,
            )
            .returning(dhcp_leases.c.ip)
        )  # rowcount is not reliable for an INSERT: count what it returns
        changed += len((await conn.execute(statement)).all())
    if changed:
        consequences.region_services_changed(conn)  # a known machine's leased address is in DNS
    return changed


async def active_leases(conn: AsyncConnection, subnet_id: int | None = None) -> list[dict[str, Any]]:
    query = select(dhcp_leases).where(
        dhcp_leases.c.state == "active", (dhcp_leases.c.expires.is_(None)) | (dhcp_leases.c.expires > func.now())
    )
    if subnet_id is not None:
        query = query.where(dhcp_leases.c.subnet_id == subnet_id)
    return [dict(r._mapping) for r in await conn.execute(query.order_by(dhcp_leases.c.ip))]
