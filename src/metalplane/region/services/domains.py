"""DNS domains, as MAAS's domains/ and domains/{id}/ manage them.

The default domain (MAAS's GlobalDefault; "maas", id 0, at first) holds every
node that has no domain of its own, so `set_default` moves them all. Every
write is checked against the whole DNS model in its own transaction (a domain
named like a subnet's reverse zone is refused) and announced to the regions,
which rebuild their zones (consequences.region_services_changed), to the racks'
resolvers (the set of zones may change) and to their DHCP (the search list names
every authoritative domain).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import config, domains, nodes
from metalplane.region.errors import FieldErrors, Invalid, Refused, raise_if
from metalplane.region.services import consequences, dns_model
from metalplane.region.services.domain_views import (
    DEFAULT_DOMAIN_KEY,
    DomainView,
    default_domain_id,
    get_domain_row,
    show_domain,
)
from metalplane.region.services.rows import delete_row, insert_unique, update_unique

# MAAS's NAMESPEC (maascommon.utils.dns): labels of letters, digits and inner hyphens.
_LABEL = r"[a-zA-Z0-9]([-a-zA-Z0-9]{0,62}[a-zA-Z0-9]){0,1}"
NAMESPEC = re.compile(rf"^({_LABEL}[.])*{_LABEL}[.]?$")
MAX_TTL = 604800  # DomainForm: ttl between 1 and 604800
DUPLICATE = "Domain with this Name already exists."
IS_DEFAULT = "This domain is the default domain, it cannot be deleted."


def check_name(name: str) -> FieldErrors:
    if not name.strip():
        return {"name": ["This field is required."]}
    if len(name) > 255:
        return {"name": ["Domain name length cannot exceed 255 characters."]}
    if not NAMESPEC.match(name):
        if re.sub(r"[a-zA-Z0-9.-]*", "", name):
            return {"name": ["Domain name contains invalid characters."]}
        return {"name": [f"Invalid domain name: {name}."]}
    return {}


def check_ttl(ttl: int | None) -> FieldErrors:
    if ttl is None:
        return {}
    if not 1 <= ttl <= MAX_TTL:
        return {
            "ttl": [
                f"Ensure this value is {'greater' if ttl < 1 else 'less'} than or equal to {1 if ttl < 1 else MAX_TTL}."
            ]
        }
    return {}


async def _changed(conn: AsyncConnection, checked: str | None = None) -> None:
    """A write is done: given `checked`, the DNS model is checked first (refused on that field)."""
    if checked is not None:
        await dns_model.check(conn, checked)
    consequences.region_services_changed(conn)
    consequences.rack_services_changed(conn)  # the zones the racks forward may change
    consequences.dhcp_changed(conn)  # DHCP's domain name and search list (MAAS's option 119) may change


async def create_domain(conn: AsyncConnection, fields: dict[str, Any]) -> DomainView:
    name = (fields.get("name") or "").strip().rstrip(".").lower()
    raise_if(check_name(fields.get("name") or "") | check_ttl(fields.get("ttl")))
    values = {"name": name, "ttl": fields.get("ttl")}
    if fields.get("authoritative") is not None:
        values["authoritative"] = fields["authoritative"]
    domain_id = await insert_unique(conn, domains, "name", DUPLICATE, **values)
    await _changed(conn, "name")
    return await show_domain(conn, domain_id)


async def update_domain(conn: AsyncConnection, ident: str, fields: dict[str, Any]) -> DomainView:
    row = await get_domain_row(conn, ident, lock=True)
    values: dict[str, Any] = {}
    if "name" in fields:
        raise_if(check_name(fields["name"] or ""))
        values["name"] = fields["name"].strip().rstrip(".").lower()
    if "ttl" in fields:
        raise_if(check_ttl(fields["ttl"]))
        values["ttl"] = fields["ttl"]
    if fields.get("authoritative") is not None:
        values["authoritative"] = fields["authoritative"]
    if values:
        await update_unique(conn, domains, row["id"], "name", DUPLICATE, **values)
        await _changed(conn, "name")
    return await show_domain(conn, row["id"])


async def set_default(conn: AsyncConnection, ident: str) -> DomainView:
    """Make the domain the default: every node without a domain of its own is now in it."""
    row = await get_domain_row(conn, ident, lock=True)
    if not row["authoritative"]:
        raise Refused(f"Domain {row['name']} is not authoritative; the default domain must be.")
    await conn.execute(
        pg_insert(config)
        .values(name=DEFAULT_DOMAIN_KEY, value=row["id"])
        .on_conflict_do_update(index_elements=["name"], set_={"value": row["id"]})
    )
    await _changed(conn, "id")
    return await show_domain(conn, row["id"])


async def delete_domain(conn: AsyncConnection, ident: str) -> None:
    row = await get_domain_row(conn, ident, lock=True)
    if row["id"] == await default_domain_id(conn):
        raise Refused(IS_DEFAULT)
    in_use = (
        await conn.execute(select(func.count()).select_from(nodes).where(nodes.c.domain_id == row["id"]))
    ).scalar_one()
    if in_use:
        raise Refused(f"Cannot delete domain {row['name']}: {in_use} node(s) are in it; move them first.")
    await delete_row(conn, domains, row["id"])
    await _changed(conn)


def check_forward_servers(value: str | None) -> None:
    """metalplane's domains are served by MAAS only: forward_dns_servers is refused, not ignored."""
    if value:
        raise Invalid.field(
            "forward_dns_servers", "Forwarding a domain to other DNS servers is not supported; leave it empty."
        )
