"""dnsresources/, dnsresources/{id}/, dnsresourcerecords/ and dnsresourcerecords/{id}/
(MAAS's DNSResource(s)Handler and DNSResourceRecord(s)Handler)."""

from __future__ import annotations

from metalplane.region.api import render
from metalplane.region.api.context import Ctx
from metalplane.region.api.crud import Crud, given
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


def _dns_filter(ctx: Ctx) -> svc.DnsFilter:
    """The LIST_FILTERS_DOC parameters."""
    p = ctx.params
    return svc.DnsFilter(p.str("fqdn"), p.str("domain"), p.str("name"), p.str("rrtype"))


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
        found = await svc.list_resources(conn, _dns_filter(ctx), bool(p.bool("all", False)))
        return [render.dnsresource(r) for r in found]


resources_crud = Crud(resources, (resource,), render.dnsresource)
resources_crud.create(svc.create_resource, given(RESOURCE_FIELDS), "Create a DNS resource.\n" + RESOURCE_DOC)
resources_crud.read(svc.show_resource, "Read a DNS resource.")
resources_crud.update(svc.update_resource, given(RESOURCE_FIELDS), "Update a DNS resource.\n" + RESOURCE_DOC)
resources_crud.delete(svc.delete_resource, "Delete a DNS resource.")


@records.action("GET", doc="List all DNS resource records.\n" + LIST_FILTERS_DOC)
async def list_records(ctx: Ctx) -> list:
    async with ctx.tx() as conn:
        found = await svc.list_records(conn, _dns_filter(ctx))
        return [render.dnsresource_record(r) for r in found]


records_crud = Crud(records, (record,), render.dnsresource_record)
records_crud.create(
    svc.create_record,
    given({"fqdn": "str", "name": "str", "domain": "str", "rrtype": "str", "rrdata": "str", "ttl": "str"}),
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
    """,
)
records_crud.read(svc.get_record, "Read a DNS resource record.")
records_crud.update(
    svc.update_record,
    given({"rrtype": "str", "rrdata": "str", "ttl": "str"}),
    """Update a DNS resource record.

    :param rrtype: The resource record type.
    :type rrtype: unicode
    :param rrdata: The resource record data.
    :type rrdata: unicode
    :param ttl: The TTL of the record.
    :type ttl: unicode
    """,
)
records_crud.delete(svc.delete_record, "Delete a DNS resource record.")
