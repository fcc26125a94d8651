"""DNS domains as shown: each with its resource record count and whether it is the default,
and the domain of each node (its own, or the default one). Reads only, so that any
service may show a node's domain (writes are region.services.domains)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import config, dnsdata, dnsresources, domains
from metalplane.region.errors import NotFound
from metalplane.region.services.rows import Row, one

#: The `config` row naming the default domain (MAAS's GlobalDefault); absent: the domain with id 0.
DEFAULT_DOMAIN_KEY = "default_domain_id"


async def default_domain_id(conn: AsyncConnection) -> int:
    stored = (await conn.execute(select(config.c.value).where(config.c.name == DEFAULT_DOMAIN_KEY))).scalar()
    return int(stored) if stored is not None else 0


async def default_domain_name(conn: AsyncConnection) -> str:
    """The default domain's name (what DHCP hands out as the machines' domain, as MAAS does)."""
    name = (await conn.execute(select(domains.c.name).where(domains.c.id == await default_domain_id(conn)))).scalar()
    return name or "maas"


async def search_list(conn: AsyncConnection, first: str) -> list[str]:
    """MAAS's DNS search list: `first` (a machine's domain, or the default one for DHCP), then
    every other authoritative domain by name (get_dns_search_paths)."""
    names = (await conn.execute(select(domains.c.name).where(domains.c.authoritative.is_(True)))).scalars()
    return [first, *sorted(n for n in set(names) if n and n != first)]


@dataclass(frozen=True)
class DomainView:
    """A domain as shown: its row, its resource record count and whether it is the default."""

    row: Row
    resource_record_count: int
    is_default: bool


async def _views(conn: AsyncConnection, rows: list[Row]) -> list[DomainView]:
    default = await default_domain_id(conn)
    ids = [r["id"] for r in rows]
    counts: dict[int, int] = {}
    if ids:
        # MAAS counts a domain's DNS data and addresses of its resources (not its nodes).
        data = await conn.execute(
            select(dnsresources.c.domain_id, func.count(dnsdata.c.id))
            .join(dnsdata, dnsdata.c.dnsresource_id == dnsresources.c.id)
            .where(dnsresources.c.domain_id.in_(ids))
            .group_by(dnsresources.c.domain_id)
        )
        for domain_id, n in data:
            counts[domain_id] = counts.get(domain_id, 0) + n
        ips = await conn.execute(
            select(dnsresources.c.domain_id, func.sum(func.cardinality(dnsresources.c.ips)))
            .where(dnsresources.c.domain_id.in_(ids))
            .group_by(dnsresources.c.domain_id)
        )
        for domain_id, n in ips:
            counts[domain_id] = counts.get(domain_id, 0) + int(n or 0)
    return [DomainView(r, counts.get(r["id"], 0), r["id"] == default) for r in rows]


async def list_domains(conn: AsyncConnection) -> list[DomainView]:
    rows = [dict(r._mapping) for r in await conn.execute(select(domains).order_by(domains.c.id))]
    return await _views(conn, rows)


async def get_domain_row(conn: AsyncConnection, ident: str | int, lock: bool = False) -> Row:
    """By id, or by name (MAAS's specifiers: "name:maas" or a plain name)."""
    text = str(ident).strip()
    if text.startswith("name:"):
        clause = domains.c.name == text[5:]
    elif text.lstrip("-").isdigit():
        if not -(2**31) <= int(text) < 2**31:
            raise NotFound("Domain")
        clause = domains.c.id == int(text)
    else:
        clause = domains.c.name == text
    query = select(domains).where(clause)
    return one(await conn.execute(query.with_for_update() if lock else query), "Domain")


async def node_domains(conn: AsyncConnection, node_rows: list[Row]) -> dict[int, DomainView]:
    """node id -> its domain (its own, or the default one), for showing nodes."""
    default = await default_domain_id(conn)

    def domain_id(r: Row) -> int:
        return default if r.get("domain_id") is None else r["domain_id"]

    rows = [
        dict(r._mapping)
        for r in await conn.execute(select(domains).where(domains.c.id.in_({domain_id(r) for r in node_rows})))
    ]
    views = {v.row["id"]: v for v in await _views(conn, rows)}
    return {r["id"]: views[domain_id(r)] for r in node_rows if domain_id(r) in views}


async def show_domain(conn: AsyncConnection, ident: str | int) -> DomainView:
    return (await _views(conn, [await get_domain_row(conn, ident)]))[0]
