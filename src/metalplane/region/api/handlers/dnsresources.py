"""dnsresources/, dnsresources/{id}/, dnsresourcerecords/ and dnsresourcerecords/{id}/
(MAAS's DNSResource(s)Handler and DNSResourceRecord(s)Handler)."""

from __future__ import annotations

from metalplane.region.api import render
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.services import dnsresources as svc

resources = Handler("DNSResourcesHandler", "dnsresources/", "Manage dnsresources.")
resource = Handler("DNSResourceHandler", "dnsresources/{id}/", "Manage dnsresource.")
records = Handler(
    "DNSResourceRecordsHandler", "dnsresourcerecords/", "Manage DNS resource records (e.g. CNAME, MX, NS, SRV, TXT)"
)
record = Handler("DNSResourceRecordHandler", "dnsresourcerecords/{id}/", "Manage dnsresourcerecord.")

RESOURCE_FIELDS = {"fqdn": "str", "name": "str", "domain": "str", "address_ttl": "str", "ip_addresses": "str"}
LIST_FILTERS_DOC = """
:param fqdn: Restricts the listing to entries for the fqdn.
:type fqdn: unicode
:param domain: Restricts the listing to entries for the domain.
:type domain: unicode
:param name: Restricts the listing to entries of the given name.
:type name: unicode
:param rrtype: Restricts the listing to entries which have records of the given rrtype.
:type rrtype: unicode
"""
RESOURCE_DOC = """
:param fqdn: Hostname (with domain) for the dnsresource.
:type fqdn: unicode
:param name: Hostname (without domain).
:type name: unicode
:param domain: Domain (name or id).
:type domain: unicode
:param address_ttl: Default TTL for entries in this zone.
:type address_ttl: unicode
:param ip_addresses: Address (ip or id) to assign to the dnsresource.
:type ip_addresses: unicode
"""


@resources.action(
    "GET",
    doc="List resources.\n"
    + LIST_FILTERS_DOC
    + """:param all: Include implicit DNS records created for nodes registered in MAAS if true.
:type all: boolean
""",
)
async def list_resources(ctx: Ctx) -> list:
    p = ctx.params
    async with ctx.tx() as conn:
        found = await svc.list_resources(
            conn, p.str("fqdn"), p.str("domain"), p.str("name"), p.str("rrtype"), bool(p.bool("all", False))
        )
        return [render.dnsresource(r) for r in found]


@resources.action("POST", admin=True, doc="Create a DNS resource.\n" + RESOURCE_DOC)
async def create_resource(ctx: Ctx) -> dict:
    fields = ctx.params.given(RESOURCE_FIELDS)
    return render.dnsresource(await ctx.run(svc.create_resource, fields))


@resource.read
async def read_resource(ctx: Ctx) -> dict:
    """Read a DNS resource."""
    return render.dnsresource(await ctx.run(svc.show_resource, ctx.path["id"]))


@resource.action("PUT", admin=True, doc="Update a DNS resource.\n" + RESOURCE_DOC)
async def update_resource(ctx: Ctx) -> dict:
    fields = ctx.params.given(RESOURCE_FIELDS)
    return render.dnsresource(await ctx.run(svc.update_resource, ctx.path["id"], fields))


@resource.action("DELETE", admin=True)
async def delete_resource(ctx: Ctx) -> None:
    """Delete a DNS resource."""
    await ctx.run(svc.delete_resource, ctx.path["id"])


@records.action("GET", doc="List all DNS resource records.\n" + LIST_FILTERS_DOC)
async def list_records(ctx: Ctx) -> list:
    p = ctx.params
    async with ctx.tx() as conn:
        found = await svc.list_records(conn, p.str("fqdn"), p.str("domain"), p.str("name"), p.str("rrtype"))
        return [render.dnsresource_record(r) for r in found]


@records.action("POST", admin=True)
async def create_record(ctx: Ctx) -> dict:
    """Create a DNS resource record.

    :param fqdn: Hostname (with domain) for the dnsresource.
    :type fqdn: unicode
    :param name: The name (or hostname without a domain) of the DNS resource record.
    :type name: unicode
    :param domain: The domain (name or id) where to create the DNS resource record.
    :type domain: unicode
    :param rrtype: The resource record type (e.g ``cname``, ``mx``, ``ns``, ``srv``, ``sshfp``, ``txt``).
    :type rrtype: unicode
    :param rrdata: The resource record data (e.g. 'fqdn.example.com', 'mx.example.com', ...).
    :type rrdata: unicode
    :param ttl: The TTL of the record (none: the domain's).
    :type ttl: unicode
    """
    fields = ctx.params.given(
        {"fqdn": "str", "name": "str", "domain": "str", "rrtype": "str", "rrdata": "str", "ttl": "str"}
    )
    return render.dnsresource_record(await ctx.run(svc.create_record, fields))


@record.read
async def read_record(ctx: Ctx) -> dict:
    """Read a DNS resource record."""
    return render.dnsresource_record(await ctx.run(svc.get_record, ctx.path["id"]))


@record.action("PUT", admin=True)
async def update_record(ctx: Ctx) -> dict:
    """Update a DNS resource record.

    :param rrtype: The resource record type.
    :type rrtype: unicode
    :param rrdata: The resource record data.
    :type rrdata: unicode
    :param ttl: The TTL of the record.
    :type ttl: unicode
    """
    fields = ctx.params.given({"rrtype": "str", "rrdata": "str", "ttl": "str"})
    return render.dnsresource_record(await ctx.run(svc.update_record, ctx.path["id"], fields))


@record.action("DELETE", admin=True)
async def delete_record(ctx: Ctx) -> None:
    """Delete a DNS resource record."""
    await ctx.run(svc.delete_record, ctx.path["id"])
