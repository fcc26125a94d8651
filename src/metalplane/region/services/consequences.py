"""What a change means for the racks and the rest of the cluster, for services to queue.

Each function queues one consequence on the caller's transaction
(region.db.transaction.on_commit): it runs once per transaction, however many
writes asked for it, as the transaction's last work before COMMIT, so it commits
with the change or not at all. The announcements are NOTIFYs on
`metalplane_rack_events`, which PostgreSQL delivers to every region's workers
only on COMMIT; each worker passes them to the racks it holds; and on
`metalplane_region_services`, which every region's supervisor hears (its named
and chronyd).
BMC owners are rechecked by bmcs.owners_changed (it needs bmcs itself).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.transaction import Transaction, on_commit
from metalplane.region.services import connections

#: Each region's supervisor LISTENs here and rebuilds its named's zones and chronyd's sources.
REGION_SERVICES_CHANNEL = "metalplane_region_services"


def dhcp_changed(conn: AsyncConnection) -> None:
    """Every rack refetches its DHCP state (VLANs, subnets, ranges, DHCP settings, known hosts)."""

    async def announce(tx: Transaction) -> None:
        await connections.announce_rack_event(tx.conn, "dhcp", "")

    on_commit(conn, "dhcp changed", announce)


def region_services_changed(conn: AsyncConnection) -> None:
    """Every region rebuilds what its named and chronyd serve (DNS records, domains, subnets'
    reverse zones, the regions themselves, default_dns_ttl, ntp_servers); a region whose zones
    changed then tells the racks to forget them (region.host_services)."""

    async def announce(tx: Transaction) -> None:
        await tx.conn.execute(text("SELECT pg_notify(:c, '')"), {"c": REGION_SERVICES_CHANNEL})

    on_commit(conn, "region services changed", announce)


def node_addresses_changed(conn: AsyncConnection) -> None:
    """A node's name or addresses changed: DHCP (host reservations) and DNS (its records) follow."""
    dhcp_changed(conn)
    region_services_changed(conn)


def rack_services_changed(conn: AsyncConnection) -> None:
    """Every rack refetches its resolver, NTP and discovery configuration (GetServicesConfig)."""

    async def announce(tx: Transaction) -> None:
        await connections.announce_rack_event(tx.conn, "services", "")

    on_commit(conn, "rack services changed", announce)


def images_changed(conn: AsyncConnection) -> None:
    """Every rack syncs its image cache with the region's complete boot resources."""

    async def announce(tx: Transaction) -> None:
        await connections.announce_rack_event(tx.conn, "images", "")

    on_commit(conn, "images changed", announce)


def power_settings_changed(conn: AsyncConnection) -> None:
    """Every rack refetches its power targets and polling settings."""

    async def announce(tx: Transaction) -> None:
        await connections.announce_rack_event(tx.conn, "bmcs", "", racks=list(await connections.rack_ids(tx.conn)))

    on_commit(conn, "power settings changed", announce)


def rack_deleted(conn: AsyncConnection, system_id: str) -> None:
    """The rack's region workers tell it to stop."""

    async def announce(tx: Transaction) -> None:
        await connections.announce_rack_event(tx.conn, "deleted", system_id)

    on_commit(conn, ("rack deleted", system_id), announce)


def connections_to_rebalance(conn: AsyncConnection) -> None:
    """A balance check of every rack's connections (the seeds: a network change triggers one)."""

    async def rebalance(tx: Transaction) -> None:
        config = tx.region_config
        await connections.rebalance(tx.conn, config.rpc_connections_per_rack, config.balance_threshold)

    on_commit(conn, "rebalance", rebalance)
