"""domains/ and domains/{id}/ (MAAS's DomainsHandler, DomainHandler)."""

from __future__ import annotations

from typing import Any

from metalplane.region.api import render
from metalplane.region.api.context import Ctx
from metalplane.region.api.crud import Crud
from metalplane.region.api.framework import Handler, param_doc
from metalplane.region.services import domain_views
from metalplane.region.services import domains as svc

domains = Handler("DomainsHandler", "domains/", "Manage domains.")
domain = Handler("DomainHandler", "domains/{id}/", "Manage domain.")


def _fields(ctx: Ctx) -> dict[str, Any]:
    fields = ctx.params.given({"name": "str", "authoritative": "bool"})
    if "ttl" in ctx.params:
        fields["ttl"] = ctx.params.int("ttl")
    svc.check_forward_servers(ctx.params.str("forward_dns_servers"))
    return fields


def _new_fields(ctx: Ctx) -> dict[str, Any]:
    ctx.params.str("name", required=True)
    return _fields(ctx)


def _doc(summary: str, authoritative: str, forward_dns_servers: str) -> str:
    """Create's and update's parameters: the same, two of them worded differently (as MAAS does)."""
    return (
        f"{summary}\n\n"
        + param_doc("name", "Name of the domain.")
        + param_doc("authoritative", authoritative)
        + param_doc("ttl", "The default TTL for this domain.", "int")
        + param_doc("forward_dns_servers", forward_dns_servers)
    )


crud = Crud(domains, (domain,), render.domain)
crud.list_all(domain_views.list_domains, "List all domains.")
crud.create(
    svc.create_domain,
    _new_fields,
    _doc(
        "Create a domain.",
        "Class type of the domain.",
        "List of forward dns server IP addresses when MAAS is not authoritative.",
    ),
)
crud.read(domain_views.show_domain, "Read domain.")
crud.update(
    svc.update_domain,
    _fields,
    _doc(
        "Update a domain.",
        "True if we are authoritative for this domain.",
        "List of IP addresses for forward DNS servers when MAAS is not authoritative.",
    ),
)
crud.delete(svc.delete_domain, "Delete domain.")


@domain.action("POST", "set_default", admin=True)
async def set_default(ctx: Ctx) -> dict:
    """Set domain as default.

    Every node without a domain of its own is now in this domain.

    :param id: The domain's id (in the URL).
    :type id: int
    """
    return render.domain(await ctx.run(svc.set_default, ctx.path["id"]))
