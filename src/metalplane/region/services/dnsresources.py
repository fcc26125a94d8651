"""DNS resources (names with addresses) and their records (MAAS's DNSData), as
dnsresources/ and dnsresourcerecords/ manage them.

A resource is a name in a domain ("@" is the domain itself) with addresses (A
and AAAA records, `address_ttl`) and records of the other types. MAAS's rules:
a name is unique in its domain; a CNAME stands alone on its name (no address,
no other record, no node of that name); record data has its type's shape. Every
write is checked against the whole DNS model in its transaction and announced
to the regions, which rebuild their zones within seconds of the commit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region import validation
from metalplane.region.db.tables import dnsdata, dnsresources, domains, nodes
from metalplane.region.dns.zones import RRTYPES
from metalplane.region.errors import FieldErrors, Invalid, NotFound, raise_if
from metalplane.region.services import consequences, dns_model, settings
from metalplane.region.services.domain_views import default_domain_id, get_domain_row
from metalplane.region.services.domains import NAMESPEC
from metalplane.region.services.rows import Row, delete_row, first_row, insert_row, one, update_row

#: What dnsresourcerecords take (addresses are the resource's ip_addresses).
RECORD_TYPES = tuple(t for t in RRTYPES if t not in ("A", "AAAA"))
# MAAS's messages (maasserver/models/dnsdata.py, dnsresource.py), word for word.
CNAME_AND_OTHER = "CNAME records for a name cannot coexist with non-CNAME records."
MULTI_CNAME = "Only one CNAME can be associated with a name."
CNAME_PRESENT = "Cannot add address: CNAME present."
NOT_UNIQUE = "Labels must be unique within their zone."
INVALID_RRDATA = {
    "CNAME": "Invalid CNAME: Should be '<server>'.",
    "MX": "Invalid MX: Should be '<preference> <server>'. Range for preference is 0-65535.",
    "SRV": (
        "Invalid SRV: Should be '<priority> <weight> <port> <server>'. Range for priority, weight, "
        "and port are 0-65536."
    ),
    "SSHFP": "Invalid SSHFP: Should be '<algorithm> <fptype> <fingerprint>'.",
    "NS": "Invalid NS: Should be '<server>'.",
    "TXT": "Invalid TXT: Should be printable text on one line.",
}
_CNAME_LABEL = r"[_a-zA-Z0-9]([-_a-zA-Z0-9]{0,62}[_a-zA-Z0-9]){0,1}"
_SERVER = rf"({_CNAME_LABEL}\.)*{_CNAME_LABEL}\.?"
_U16 = r"(\d{1,5})"
_RRDATA = {
    "CNAME": re.compile(rf"^{_SERVER}$"),
    "NS": re.compile(rf"^{_SERVER}$"),
    "MX": re.compile(rf"^{_U16}\s+{_SERVER}$"),
    "SRV": re.compile(rf"^{_U16}\s+{_U16}\s+{_U16}\s+{_SERVER}$"),
    "SSHFP": re.compile(r"^\d{1,3}\s+\d{1,3}\s+[0-9a-fA-F]+$"),
}
# SRV owners are _service._proto[.name] (MAAS's SRV_LHS).
_SRV_NAME = re.compile(r"^_[a-zA-Z0-9-]{1,62}\._(tcp|udp|sctp|dccp)(\.([a-zA-Z0-9-]{1,62}))*$")


# --------------------------------------------------------------------------- pure checks


def check_resource_name(name: str, rrtype: str | None = None) -> FieldErrors:
    if name == "@":
        return {}
    spec = _SRV_NAME if rrtype == "SRV" else NAMESPEC
    if not name or not spec.match(name):
        return {"name": [f"Invalid dnsresource name: {name}."]}
    return {}


def check_rrdata(rrtype: str, rrdata: str) -> FieldErrors:
    if rrtype not in RECORD_TYPES:
        return {"rrtype": [f"{rrtype} is not one of {' '.join(sorted(RECORD_TYPES))}."]}
    data = rrdata.strip()
    if rrtype == "TXT":
        ok = bool(data) and not any(ord(c) < 32 for c in data) and len(data) <= 65000
    else:
        numbers = data.split()[:-1] if rrtype in ("MX", "SRV") else []
        ok = _RRDATA[rrtype].match(data) is not None and all(int(n) <= 65535 for n in numbers)
    return {} if ok else {"rrdata": [INVALID_RRDATA[rrtype]]}


def parse_ttl(name: str, value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        ttl = int(value)
    except (TypeError, ValueError):
        raise Invalid.field(name, "Enter a whole number.") from None
    if not 0 <= ttl <= 2**31 - 1:
        raise Invalid.field(name, "Ensure this value is between 0 and 2147483647.")
    return ttl


def parse_addresses(value: str | None) -> list[str]:
    """MAAS's ip_addresses: addresses separated by spaces or commas."""
    out = []
    for part in re.split(r"[,\s]+", (value or "").strip()):
        if not part:
            continue
        address = validation.parse_ip(part)  # no IPv6 zone ids: inet refuses them
        if address is None:
            raise Invalid.field("ip_addresses", f"'{validation.shown(part)}' is not a valid IP address.")
        out.append(str(address))
    return list(dict.fromkeys(out))


def split_fqdn(fqdn: str, domain_names: list[str], rrtype: str | None = None) -> tuple[str, str] | None:
    """(name, domain) of `fqdn`: "@" when it is a domain itself; an SRV name keeps its two
    underscore labels; otherwise the first label is the name (MAAS's separate_fqdn)."""
    fqdn = fqdn.strip().rstrip(".").lower()
    if fqdn in domain_names:
        return "@", fqdn
    labels = fqdn.split(".")
    take = 2 if rrtype == "SRV" and len(labels) > 2 and labels[0].startswith("_") else 1
    name, domain = ".".join(labels[:take]), ".".join(labels[take:])
    return (name, domain) if name and domain else None


# --------------------------------------------------------------------------- views


@dataclass(frozen=True)
class Resource:
    """A DNS resource as shown (id -1: a node's implied records, MAAS's `all=true`)."""

    id: int
    name: str
    domain: str
    address_ttl: int | None
    ips: list[str] | None
    records: list[Row]  # dnsdata rows with "fqdn" (or implied {"rrtype", "rrdata", "ttl"})

    @property
    def fqdn(self) -> str:
        return self.domain if self.name == "@" else f"{self.name}.{self.domain}"


def fqdn_of(name: str, domain: str) -> str:
    return domain if name == "@" else f"{name}.{domain}"


async def _domain_names(conn: AsyncConnection) -> dict[int, str]:
    return {r.id: r.name for r in await conn.execute(select(domains.c.id, domains.c.name))}


async def _records(conn: AsyncConnection, resource_ids: list[int]) -> dict[int, list[Row]]:
    out: dict[int, list[Row]] = {}
    if resource_ids:
        rows = await conn.execute(
            select(dnsdata).where(dnsdata.c.dnsresource_id.in_(resource_ids)).order_by(dnsdata.c.rrtype, dnsdata.c.id)
        )
        for r in rows:
            out.setdefault(r.dnsresource_id, []).append(dict(r._mapping))
    return out


async def _resources(conn: AsyncConnection, rows: list[Row]) -> list[Resource]:
    names = await _domain_names(conn)
    records = await _records(conn, [r["id"] for r in rows])
    out = []
    for r in rows:
        domain = names[r["domain_id"]]
        recs = [{**d, "fqdn": fqdn_of(r["name"], domain)} for d in records.get(r["id"], [])]
        out.append(Resource(r["id"], r["name"], domain, r["address_ttl"], [str(ip) for ip in r["ips"]], recs))
    return out


@dataclass(frozen=True)
class DnsFilter:
    """MAAS's read filters for DNS resources and records: an fqdn, or a domain and/or a name;
    and an rrtype (any case)."""

    fqdn: str | None = None
    domain: str | None = None
    name: str | None = None
    rrtype: str | None = None

    @property
    def kind(self) -> str | None:
        return self.rrtype.upper() if self.rrtype else None


async def _narrowed(conn: AsyncConnection, query: Any, where: DnsFilter) -> tuple[Any, int | None, str | None]:
    """`query` on dnsresources narrowed to the filter's domain and name (an fqdn is split
    into the two against the known domains), with the domain id and name it used."""
    name, domain = where.name, where.domain
    if domain is None and name is None and where.fqdn is not None:
        split = split_fqdn(where.fqdn, list((await _domain_names(conn)).values()), where.kind)
        if split is None:
            raise NotFound("DNSResource")
        name, domain = split
    domain_id = (await get_domain_row(conn, domain))["id"] if domain is not None else None
    if domain_id is not None:
        query = query.where(dnsresources.c.domain_id == domain_id)
    if name is not None:
        query = query.where(dnsresources.c.name == name)
    return query, domain_id, name


async def list_resources(
    conn: AsyncConnection, where: DnsFilter = DnsFilter(), implied: bool = False
) -> list[Resource]:
    """MAAS's dnsresources read; `implied` (all=true) adds each node's address records."""
    rrtype = where.kind
    query, domain_id, name = await _narrowed(
        conn, select(dnsresources).order_by(dnsresources.c.domain_id, dnsresources.c.name), where
    )
    if rrtype is not None:
        query = query.where(dnsresources.c.id.in_(select(dnsdata.c.dnsresource_id).where(dnsdata.c.rrtype == rrtype)))
    shown = await _resources(conn, [dict(r._mapping) for r in await conn.execute(query)])
    if implied:
        shown += await _node_resources(conn, domain_id, name, rrtype)
    return shown


async def _node_resources(
    conn: AsyncConnection, domain_id: int | None, name: str | None, rrtype: str | None
) -> list[Resource]:
    names = await _domain_names(conn)
    default = await default_domain_id(conn)
    ttl = int(await settings.get_setting(conn, "default_dns_ttl"))
    addresses = await dns_model.node_addresses(conn)
    out = []
    for n in await conn.execute(select(nodes.c.id, nodes.c.hostname, nodes.c.domain_id).order_by(nodes.c.hostname)):
        node_domain = n.domain_id if n.domain_id in names else default
        if (domain_id is not None and node_domain != domain_id) or (name is not None and n.hostname != name):
            continue
        recs = [
            {"rrtype": "A" if ip_address(ip).version == 4 else "AAAA", "rrdata": ip, "ttl": ttl}
            for ip in sorted(addresses.get(n.id, ()))
        ]
        recs = [r for r in recs if rrtype is None or r["rrtype"] == rrtype]
        if recs:
            out.append(Resource(-1, n.hostname, names[node_domain], None, None, recs))
    return out


async def get_resource_row(conn: AsyncConnection, ident: str | int, lock: bool = False) -> Row:
    text = str(ident)
    if not text.isdigit() or int(text) >= 2**31:
        raise NotFound("DNSResource")
    query = select(dnsresources).where(dnsresources.c.id == int(text))
    return one(await conn.execute(query.with_for_update() if lock else query), "DNSResource")


async def show_resource(conn: AsyncConnection, ident: str | int) -> Resource:
    return (await _resources(conn, [await get_resource_row(conn, ident)]))[0]


async def _changed(conn: AsyncConnection, checked: str | None = None) -> None:
    """A write is done: given `checked`, the DNS model is checked first (refused on that field)."""
    if checked is not None:
        await dns_model.check(conn, checked)
    consequences.region_services_changed(conn)


async def _update(conn: AsyncConnection, table: Table, row_id: int, checked: str, values: dict[str, Any]) -> None:
    """The stamped UPDATE of one resource or record, then the DNS model checked (refused on `checked`)."""
    await update_row(conn, table, row_id, **values)
    await _changed(conn, checked)


async def _node_named(conn: AsyncConnection, name: str, domain_id: int) -> bool:
    default = await default_domain_id(conn)
    in_domain = nodes.c.domain_id == domain_id
    if domain_id == default:
        in_domain = in_domain | nodes.c.domain_id.is_(None)
    found = await conn.execute(select(nodes.c.id).where(func.lower(nodes.c.hostname) == name.lower(), in_domain))
    return found.first() is not None


async def _target(conn: AsyncConnection, fields: dict[str, Any], rrtype: str | None) -> tuple[str, int]:
    """(name, domain id) from name/domain or fqdn; the default domain when none is given."""
    name, domain = fields.get("name"), fields.get("domain")
    if name is None and domain is None and fields.get("fqdn"):
        split = split_fqdn(fields["fqdn"], list((await _domain_names(conn)).values()), rrtype)
        if split is None:
            raise Invalid.field("fqdn", f"Invalid fqdn: {fields['fqdn']}.")
        name, domain = split
    if not name:
        raise Invalid.field("name", "This field is required.")
    name = name.strip().lower()
    try:
        domain_id = (await get_domain_row(conn, domain))["id"] if domain else await default_domain_id(conn)
    except NotFound:
        raise Invalid.field("domain", f"Select a valid choice. {domain} is not one of the available choices.") from None
    raise_if(check_resource_name(name, rrtype))
    return name, domain_id


async def _insert_resource(
    conn: AsyncConnection, name: str, domain_id: int, address_ttl: int | None, ips: list[str]
) -> int:
    exists = await conn.execute(
        select(dnsresources.c.id).where(dnsresources.c.name == name, dnsresources.c.domain_id == domain_id)
    )
    if exists.first() is not None:
        raise Invalid.field("name", NOT_UNIQUE)
    return await insert_row(conn, dnsresources, name=name, domain_id=domain_id, address_ttl=address_ttl, ips=ips)


async def _has_cname(conn: AsyncConnection, resource_id: int) -> bool:
    found = await conn.execute(
        select(dnsdata.c.id).where(dnsdata.c.dnsresource_id == resource_id, dnsdata.c.rrtype == "CNAME")
    )
    return found.first() is not None


async def create_resource(conn: AsyncConnection, fields: dict[str, Any]) -> Resource:
    name, domain_id = await _target(conn, fields, None)
    ips = parse_addresses(fields.get("ip_addresses"))
    resource_id = await _insert_resource(
        conn, name, domain_id, parse_ttl("address_ttl", fields.get("address_ttl")), ips
    )
    await _changed(conn, "name")
    return await show_resource(conn, resource_id)


async def update_resource(conn: AsyncConnection, ident: str, fields: dict[str, Any]) -> Resource:
    row = await get_resource_row(conn, ident, lock=True)
    values: dict[str, Any] = {}
    if any(fields.get(k) is not None for k in ("name", "domain", "fqdn")):
        merged = {
            "name": fields.get("name") or (None if fields.get("fqdn") and not fields.get("domain") else row["name"]),
            "domain": fields.get("domain")
            or (None if fields.get("fqdn") and not fields.get("name") else str(row["domain_id"])),
            "fqdn": fields.get("fqdn"),
        }
        name, domain_id = await _target(conn, merged, None)
        if (name, domain_id) != (row["name"], row["domain_id"]):
            clash = await conn.execute(
                select(dnsresources.c.id).where(
                    dnsresources.c.name == name, dnsresources.c.domain_id == domain_id, dnsresources.c.id != row["id"]
                )
            )
            if clash.first() is not None:
                raise Invalid.field("name", NOT_UNIQUE)
            values.update(name=name, domain_id=domain_id)
    if "address_ttl" in fields:
        values["address_ttl"] = parse_ttl("address_ttl", fields["address_ttl"])
    if fields.get("ip_addresses") is not None:
        values["ips"] = parse_addresses(fields["ip_addresses"])
        if values["ips"] and await _has_cname(conn, row["id"]):
            raise Invalid.field("ip_addresses", CNAME_PRESENT)
    if values:
        await _update(conn, dnsresources, row["id"], "name", values)
    return await show_resource(conn, row["id"])


async def delete_resource(conn: AsyncConnection, ident: str) -> None:
    row = await get_resource_row(conn, ident, lock=True)
    await delete_row(conn, dnsresources, row["id"])
    await _changed(conn)


# --------------------------------------------------------------------------- records (DNSData)


async def list_records(conn: AsyncConnection, where: DnsFilter = DnsFilter()) -> list[Row]:
    query, _, _ = await _narrowed(
        conn,
        select(dnsdata, dnsresources.c.name, domains.c.name.label("domain_name"))
        .join(dnsresources, dnsresources.c.id == dnsdata.c.dnsresource_id)
        .join(domains, domains.c.id == dnsresources.c.domain_id)
        .order_by(dnsresources.c.domain_id, dnsresources.c.name, dnsdata.c.id),
        where,
    )
    if where.kind is not None:
        query = query.where(dnsdata.c.rrtype == where.kind)
    return [_record_row(r) for r in await conn.execute(query)]


def _record_row(r: Any) -> Row:
    m = dict(r._mapping)
    return {
        "id": m["id"],
        "ttl": m["ttl"],
        "rrtype": m["rrtype"],
        "rrdata": m["rrdata"],
        "fqdn": fqdn_of(m["name"], m["domain_name"]),
    }


async def get_record(conn: AsyncConnection, ident: str | int, lock: bool = False) -> Row:
    text = str(ident)
    if not text.isdigit() or int(text) >= 2**31:
        raise NotFound("DNSData")
    query = (
        select(dnsdata, dnsresources.c.name, domains.c.name.label("domain_name"))
        .join(dnsresources, dnsresources.c.id == dnsdata.c.dnsresource_id)
        .join(domains, domains.c.id == dnsresources.c.domain_id)
        .where(dnsdata.c.id == int(text))
    )
    row = await first_row(conn, query.with_for_update(of=dnsdata) if lock else query)
    if row is None:
        raise NotFound("DNSData")
    return {**_record_row(row), "dnsresource_id": row.dnsresource_id}


async def _check_cname_rules(conn: AsyncConnection, resource: Row, rrtype: str, exclude: int | None) -> None:
    others = select(dnsdata.c.rrtype).where(dnsdata.c.dnsresource_id == resource["id"])
    if exclude is not None:
        others = others.where(dnsdata.c.id != exclude)
    types = [t for (t,) in await conn.execute(others)]
    if rrtype == "CNAME":
        if "CNAME" in types:
            raise Invalid.field("rrtype", MULTI_CNAME)
        if types or resource["ips"] or await _node_named(conn, resource["name"], resource["domain_id"]):
            raise Invalid.field("rrtype", CNAME_AND_OTHER)
    elif "CNAME" in types:
        raise Invalid.field("rrtype", CNAME_AND_OTHER)


async def create_record(conn: AsyncConnection, fields: dict[str, Any]) -> Row:
    rrtype = (fields.get("rrtype") or "").upper()
    if not rrtype:
        raise Invalid.field("rrtype", "This field is required.")
    rrdata = fields.get("rrdata")
    if not rrdata:
        raise Invalid.field("rrdata", "This field is required.")
    raise_if(check_rrdata(rrtype, rrdata))
    ttl = parse_ttl("ttl", fields.get("ttl"))
    name, domain_id = await _target(conn, fields, rrtype)
    found = await first_row(
        conn,
        select(dnsresources)
        .where(dnsresources.c.name == name, dnsresources.c.domain_id == domain_id)
        .with_for_update(),
    )
    if found is None:
        resource_id = await _insert_resource(conn, name, domain_id, None, [])
        resource = await get_resource_row(conn, resource_id)
    else:
        resource = dict(found._mapping)
    await _check_cname_rules(conn, resource, rrtype, None)
    record_id = await insert_row(
        conn,
        dnsdata,
        dnsresource_id=resource["id"],
        rrtype=rrtype,
        rrdata=" ".join(rrdata.split()) if rrtype != "TXT" else rrdata.strip(),
        ttl=ttl,
    )
    await _changed(conn, "rrdata")
    return await get_record(conn, record_id)


async def update_record(conn: AsyncConnection, ident: str, fields: dict[str, Any]) -> Row:
    record = await get_record(conn, ident, lock=True)
    rrtype = (fields.get("rrtype") or record["rrtype"]).upper()
    rrdata: str = fields["rrdata"] if fields.get("rrdata") is not None else record["rrdata"]
    raise_if(check_rrdata(rrtype, rrdata))
    values: dict[str, Any] = {"rrtype": rrtype, "rrdata": rrdata if rrtype == "TXT" else " ".join(rrdata.split())}
    if "ttl" in fields:
        values["ttl"] = parse_ttl("ttl", fields["ttl"])
    resource = await get_resource_row(conn, record["dnsresource_id"], lock=True)
    await _check_cname_rules(conn, resource, rrtype, record["id"])
    await _update(conn, dnsdata, record["id"], "rrdata", values)
    return await get_record(conn, record["id"])


async def delete_record(conn: AsyncConnection, ident: str) -> None:
    """Delete the record; its resource goes too when nothing is left on it (MAAS)."""
    record = await get_record(conn, ident, lock=True)
    await delete_row(conn, dnsdata, record["id"])
    resource = await get_resource_row(conn, record["dnsresource_id"])
    rest = await conn.execute(select(dnsdata.c.id).where(dnsdata.c.dnsresource_id == resource["id"]))
    if rest.first() is None and not resource["ips"]:
        await delete_row(conn, dnsresources, resource["id"])
    await _changed(conn)
