"""The fields every node form shares (MAAS's NodeForm): hostname, domain, zone, MACs, swap.

Pure checks first, then the lookups that need the database; each error is MAAS's
text under the field it is about.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region import validation
from metalplane.region.db.tables import domains, interfaces, nodes, zones
from metalplane.region.errors import Invalid, NotFound
from metalplane.region.services import domain_views
from metalplane.region.services.rows import execute_unique, first_row, insert_unique, update_unique

DEFAULT_DOMAIN = "maas"
DEFAULT_DOMAIN_ID = 0
NO_CHOICE = "Select a valid choice. That choice is not one of the available choices."
DUPLICATE_HOSTNAME = "Node with this Hostname already exists."
NONEXISTENT_DOMAIN = "Nonexistant domain."  # MAAS's text (and spelling) for host.<no such domain>


def clean_hostname(value: str) -> str:
    """The host label of `value` (a `.maas` suffix is the default domain); 400 otherwise."""
    value = value.strip()
    error = validation.hostname_problem(value)
    if error:
        raise Invalid.field("hostname", error)
    host, _, domain = value.partition(".")
    if domain and domain.rstrip(".") != DEFAULT_DOMAIN:
        raise Invalid.field("hostname", f"Unable to find domain {domain}")
    return host


async def hostname_and_domain(conn: AsyncConnection, value: str) -> tuple[str, int | None]:
    """MAAS's Node.clean_hostname_domain: a name with dots is an FQDN, its host label and the
    id of the domain the rest names (400 on hostname when there is none); a bare label: None."""
    value = value.strip()
    error = validation.hostname_problem(value)
    if error:
        raise Invalid.field("hostname", error)
    host, dot, domain = value.partition(".")
    if not dot:
        return host, None
    found = (await conn.execute(select(domains.c.id).where(domains.c.name == domain))).scalar()
    if found is None:
        raise Invalid.field("hostname", NONEXISTENT_DOMAIN)
    return host, int(found)


async def domain_id_for(conn: AsyncConnection, value: str | None, error: str | None = None) -> int | None:
    """MAAS's NodeForm.clean_domain: a domain given by id or by name (`domain_views.get_domain_row`);
    None when none is given. No such domain: 400 on domain (`error`, or NodeForm's text)."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        if validation.text_problem(text):
            raise NotFound("Domain")
        return int((await domain_views.get_domain_row(conn, text))["id"])
    except NotFound:
        raise Invalid.field("domain", error or f"Unable to find domain {value}") from None


async def naming_for_new(conn: AsyncConnection, fields: dict[str, Any]) -> tuple[str, int | None]:
    """A new node's hostname ("" when none is given) and domain id (None: the default domain,
    whichever it is): an FQDN hostname's domain wins over a `domain` given beside it, as in MAAS."""
    domain_id = await domain_id_for(conn, fields.get("domain"))
    if not (fields.get("hostname") or "").strip():
        return "", domain_id
    hostname, named = await hostname_and_domain(conn, fields["hostname"])
    return hostname, named if named is not None else domain_id


def parse_macs(values: list[str], field: str = "mac_addresses") -> list[str]:
    given = [m.strip() for m in values if m.strip()]
    macs = [validation.normalise_mac(m) for m in given]
    bad = [f"'{validation.shown(m)}' is not a valid MAC address." for m, mac in zip(given, macs) if mac is None]
    if len(bad) == 1 and len(macs) == 1:
        raise Invalid.field(field, bad[0])
    if bad:
        raise Invalid.field(field, f"One or more MAC addresses is invalid. ({' — '.join(bad)})")
    return list(dict.fromkeys(mac for mac in macs if mac is not None))


async def check_macs_free(
    conn: AsyncConnection, macs: list[str], node_id: int | None = None, field: str = "mac_addresses"
) -> None:
    """A MAC belongs to one node's interface in the whole MAAS (controllers included)."""
    if not macs:
        return
    query = (
        select(interfaces.c.mac, nodes.c.hostname)
        .join(nodes, nodes.c.id == interfaces.c.node_id)
        .where(interfaces.c.mac.in_(macs))
    )
    if node_id is not None:
        query = query.where(interfaces.c.node_id != node_id)
    taken = {r.mac: r.hostname for r in await conn.execute(query)}
    if taken:
        raise Invalid({field: [f"MAC address {mac} already in use on {taken[mac]}." for mac in macs if mac in taken]})


async def check_hostname_free(conn: AsyncConnection, hostname: str, node_id: int | None = None) -> None:
    query = select(nodes.c.id).where(nodes.c.hostname == hostname)
    if node_id is not None:
        query = query.where(nodes.c.id != node_id)
    if await first_row(conn, query.limit(1)):
        raise Invalid.field("hostname", DUPLICATE_HOSTNAME)


async def naming_changes(conn: AsyncConnection, fields: dict[str, Any], node_id: int) -> dict[str, Any]:
    """The columns an update of a node (machine or device) sets from hostname, domain and
    description, each given one checked: a hostname must be valid and free, a domain must
    exist (an FQDN hostname names the domain too, and wins)."""
    values: dict[str, Any] = {}
    if "domain" in fields:
        domain_id = await domain_id_for(conn, fields["domain"])
        if domain_id is not None:
            values["domain_id"] = domain_id
    if "hostname" in fields:
        values["hostname"], named = await hostname_and_domain(conn, fields["hostname"] or "")
        if named is not None:
            values["domain_id"] = named
        await check_hostname_free(conn, values["hostname"], node_id)
    if "description" in fields:
        values["description"] = fields["description"] or ""
    return values


async def zone_id_for(conn: AsyncConnection, name: str | None, field: str = "zone") -> int:
    """The zone named (the default zone when none is); 400 for `field` when there is none."""
    if name and "\x00" in name:
        raise Invalid.field(field, NO_CHOICE)
    row = await first_row(conn, select(zones.c.id).where(zones.c.name == (name or "default")))
    if row is None:
        raise Invalid.field(field, NO_CHOICE)
    return row.id


def parse_swap_size(value: str) -> int | None:
    """MAAS's swap_size: bytes, or a number with K, M, G or T (powers of 1000)."""
    value = value.strip()
    if value == "":
        return None
    factor = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}.get(value[-1:], 1)
    number = value[:-1] if factor != 1 else value
    try:
        size = int(number) * factor
    except ValueError:
        raise Invalid.field("swap_size", f"Invalid size for swap: {value}") from None
    if not 0 <= size < 2**63:
        raise Invalid.field("swap_size", f"Invalid size for swap: {value}")
    return size


def bounded_int(fields: dict[str, Any], name: str) -> int | None:
    """An integer form field stored in a PostgreSQL integer."""
    value = fields.get(name)
    if value is None:
        return None
    if not 0 <= value < 2**31:
        raise Invalid.field(
            name,
            "Ensure this value is greater than or equal to 0."
            if value < 0
            else f"Ensure this value is less than or equal to {2**31 - 1}.",
        )
    return value


async def update_node(conn: AsyncConnection, node_id: int, values: dict[str, Any]) -> None:
    """A node's row changed to `values`: the unique index decides a race for a hostname (MAAS's 400)."""
    await update_unique(conn, nodes, node_id, "hostname", DUPLICATE_HOSTNAME, **values)


async def insert_node(conn: AsyncConnection, values: dict[str, Any], macs: list[str]) -> int:
    """A new node's row and its interfaces eth0, eth1, ... on `macs`; its id. The unique indexes
    decide between concurrent creates: the loser gets MAAS's 400 naming the hostname or the MAC."""
    node_id = await insert_unique(conn, nodes, "hostname", DUPLICATE_HOSTNAME, **values)
    for n, mac in enumerate(macs):
        await execute_unique(
            conn,
            insert(interfaces).values(node_id=node_id, name=f"eth{n}", mac=mac, claims_mac=True),
            "mac_addresses",
            f"MAC address {mac} already in use.",
        )
    return node_id
