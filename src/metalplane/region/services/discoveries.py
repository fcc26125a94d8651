"""Network discovery: what racks saw in ARP, stored and shown as MAAS's discoveries.

A rack reports observations (rack.discovery: a binding that is new, moved to
another MAC, or seen again after a while) in batches, at least once and in
order (`ReportDiscoveries`). The region keeps one row per (rack, interface,
address) with the MAC seen last; a late or replayed observation never undoes
a newer one. Shown as MAAS's Discovery view: one entry per (MAC, address), the
most recent sighting first, with its observer (the rack and its interface)
and the fabric of the interface's VLAN.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region import validation
from metalplane.region.db.tables import dhcp_leases, discoveries, fabrics, interfaces, ip_addresses, nodes, vlans
from metalplane.region.errors import Invalid, NotFound, Refused


@dataclass(frozen=True)
class Discovery:
    ip: str
    mac: str
    vid: int | None
    first_seen: datetime
    last_seen: datetime
    rack_system_id: str
    rack_hostname: str
    interface_id: int | None
    interface_name: str
    fabric_name: str | None

    @property
    def discovery_id(self) -> str:
        """MAAS's: base64 of "ip,mac"."""
        return discovery_id(self.ip, self.mac)


def discovery_id(ip: str, mac: str) -> str:
    return base64.b64encode(f"{ip},{mac}".encode()).decode()


def parse_discovery_id(value: str) -> tuple[str, str]:
    try:
        ip, _, mac = base64.b64decode(value.encode(), validate=True).decode().partition(",")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise NotFound("Discovery") from None
    address = validation.parse_ip(ip)
    if address is None:
        raise NotFound("Discovery")
    return str(address), mac.lower()


async def record(conn: AsyncConnection, rack_id: int, observations: list[dict[str, Any]]) -> int:
    """Store a batch of observations from rack `rack_id`; returns the rows changed."""
    changed = 0
    for obs in observations:
        seen = datetime.fromtimestamp(float(obs.get("time") or 0) or datetime.now(UTC).timestamp(), UTC)
        values = dict(
            rack_id=rack_id,
            interface=str(obs["interface"]),
            vid=obs.get("vid"),
            ip=str(obs["ip"]),
            mac=str(obs["mac"]).lower(),
            first_seen=seen,
            last_seen=seen,
        )
        excluded = insert(discoveries).excluded
        statement = (
            insert(discoveries)
            .values(**values)
            .on_conflict_do_update(
                index_elements=[discoveries.c.rack_id, discoveries.c.interface, discoveries.c.ip],
                set_={"mac": excluded.mac, "vid": excluded.vid, "last_seen": excluded.last_seen},
                where=discoveries.c.last_seen <= excluded.last_seen,
            )
            .returning(discoveries.c.id)
        )  # rowcount is not reliable for an INSERT: count what it returns
        changed += len((await conn.execute(statement)).all())
    return changed


def _shown_query() -> Any:
    """The sightings, each row named as Discovery's fields."""
    rack = nodes.alias("rack")
    return (
        select(
            *discoveries.c["ip", "mac", "vid", "first_seen", "last_seen"],
            rack.c.system_id.label("rack_system_id"),
            rack.c.hostname.label("rack_hostname"),
            interfaces.c.id.label("interface_id"),
            discoveries.c.interface.label("interface_name"),
            fabrics.c.name.label("fabric_name"),
        )
        .join(rack, rack.c.id == discoveries.c.rack_id)
        .outerjoin(
            interfaces, (interfaces.c.node_id == discoveries.c.rack_id) & (interfaces.c.name == discoveries.c.interface)
        )
        .outerjoin(vlans, vlans.c.id == interfaces.c.vlan_id)
        .outerjoin(fabrics, fabrics.c.id == vlans.c.fabric_id)
    )


def _views(rows: Any) -> list[Discovery]:
    """One per (mac, ip): the most recent sighting (MAAS's DISTINCT ON), newest first."""
    best: dict[tuple[str, str], Discovery] = {}
    for r in rows:
        d = Discovery(**{**r._mapping, "ip": str(r.ip)})
        key = (d.mac, d.ip)
        if key not in best or d.last_seen > best[key].last_seen:
            best[key] = d
    return sorted(best.values(), key=lambda d: d.last_seen, reverse=True)


async def list_discoveries(
    conn: AsyncConnection, unknown_mac: bool = False, unknown_ip: bool = False
) -> list[Discovery]:
    """Every discovery, newest first; optionally only those whose MAC (an interface MAAS
    knows) or address (a node's, or a MAAS DHCP lease's) MAAS does not know."""
    query = _shown_query()
    if unknown_mac:
        known_macs = select(func.lower(interfaces.c.mac)).where(interfaces.c.mac.isnot(None))
        query = query.where(discoveries.c.mac.not_in(known_macs))
    if unknown_ip:
        known_ips = select(ip_addresses.c.ip).union(select(dhcp_leases.c.ip).where(dhcp_leases.c.state == "active"))
        query = query.where(discoveries.c.ip.not_in(known_ips))
    return _views(await conn.execute(query))


async def get_discovery(conn: AsyncConnection, ident: str) -> Discovery:
    ip, mac = parse_discovery_id(ident)
    found = _views(await conn.execute(_shown_query().where(discoveries.c.ip == ip, discoveries.c.mac == mac)))
    if not found:
        raise NotFound("Discovery")
    return found[0]


async def clear(conn: AsyncConnection, everything: bool, mdns: bool, neighbours: bool) -> None:
    """MAAS's clear: neighbours (or all) deletes every observation; metalplane keeps no mDNS."""
    if not (everything or mdns or neighbours):
        raise Refused(
            "Bad request: could not determine what data to clear.\n"
            "Must specify mdns=True, neighbours=True, or all=True."
        )
    if everything or neighbours:
        await conn.execute(delete(discoveries))


async def clear_by_mac_and_ip(conn: AsyncConnection, ip: str, mac: str) -> None:
    address = validation.parse_ip(ip.strip())  # no IPv6 zone ids: inet refuses them
    if address is None:
        raise Invalid.field("ip", "Enter a valid IPv4 or IPv6 address.")
    ip = str(address)
    result = await conn.execute(
        delete(discoveries).where(discoveries.c.ip == ip, discoveries.c.mac == mac.strip().lower())
    )
    if not result.rowcount:
        raise NotFound("Discovery")
