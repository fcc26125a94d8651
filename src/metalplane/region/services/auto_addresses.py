"""AUTO links' addresses (MAAS's Node.claim_auto_ips / release_interface_config).

A machine's interface linked to a subnet in mode AUTO has no address until its
deployment starts: then each such link gets the subnet's next free address
(ipaddresses.free_address, MAAS's rule), kept in the link's own row so its id
stays. Release sets it back to empty; the link stays AUTO. STATIC links keep
their address, DHCP links get what the DHCP server leases, LINK_UP none.

The subnets' rows are locked (in id order, so two deploys never wait on each
other crosswise) before any address is chosen: concurrent deploys on one subnet
take turns and never get the same address. A claimed address is a DHCP host
reservation and an A/AAAA record (consequences.node_addresses_changed).
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import interfaces, ip_addresses, subnets
from metalplane.region.services import consequences, ipaddresses
from metalplane.region.services.nodes import AUTO


def exhausted_message(system_id: str) -> str:
    """MAAS's words (api/nodes.py power_on) when a subnet has no address left for a deploy."""
    return f"{system_id}: Unable to allocate static IP due to address exhaustion."


async def claim(conn: AsyncConnection, node_id: int) -> list[str]:
    """Addresses for the node's AUTO links that have none (in link order); raises
    ipaddresses.Exhausted when a subnet is full (the caller's transaction then rolls back)."""
    links = (
        await conn.execute(
            select(ip_addresses.c.id, ip_addresses.c.subnet_id)
            .join(interfaces, interfaces.c.id == ip_addresses.c.interface_id)
            .where(
                interfaces.c.node_id == node_id,
                ip_addresses.c.alloc_type == AUTO,
                ip_addresses.c.ip.is_(None),
                ip_addresses.c.subnet_id.isnot(None),
            )
            .order_by(ip_addresses.c.id)
        )
    ).all()
    if not links:
        return []
    locked = await conn.execute(
        select(subnets).where(subnets.c.id.in_({x.subnet_id for x in links})).order_by(subnets.c.id).with_for_update()
    )
    by_id = {s.id: dict(s._mapping) for s in locked}
    claimed: list[str] = []
    for link in links:
        ip = await ipaddresses.free_address(conn, by_id[link.subnet_id])
        await conn.execute(update(ip_addresses).where(ip_addresses.c.id == link.id).values(ip=ip, updated=func.now()))
        claimed.append(ip)
    consequences.node_addresses_changed(conn)
    return claimed


async def release(conn: AsyncConnection, node_id: int) -> None:
    """The node's AUTO links lose their addresses (and with them the reservation and the record)."""
    done = await conn.execute(
        update(ip_addresses)
        .where(
            ip_addresses.c.alloc_type == AUTO,
            ip_addresses.c.ip.isnot(None),
            ip_addresses.c.interface_id.in_(select(interfaces.c.id).where(interfaces.c.node_id == node_id)),
        )
        .values(ip=None, updated=func.now())
    )
    if done.rowcount:
        consequences.node_addresses_changed(conn)
