"""domains/ and domains/{id}/ (MAAS's DomainsHandler, DomainHandler)."""

from __future__ import annotations

from typing import Any

from metalplane.region.api import render
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
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


@domains.read
async def list_domains(ctx: Ctx) -> list:
    """List all domains."""
    return [render.domain(d) for d in await ctx.run(domain_views.list_domains)]


@domains.action("POST", admin=True)
async def create_domain(ctx: Ctx) -> dict:
    """Create a domain.

    :param name: Name of the domain.
    :type name: unicode
    :param authoritative: Class type of the domain.
    :type authoritative: unicode
    :param ttl: The default TTL for this domain.
    :type ttl: int
    :param forward_dns_servers: List of forward dns server IP addresses when MAAS is not authoritative.
    :type forward_dns_servers: unicode
    """
    ctx.params.str("name", required=True)
    fields = _fields(ctx)
    return render.domain(await ctx.run(svc.create_domain, fields))


@domain.read
async def read_domain(ctx: Ctx) -> dict:
    """Read domain."""
    return render.domain(await ctx.run(domain_views.show_domain, ctx.path["id"]))


@domain.action("PUT", admin=True)
async def update_domain(ctx: Ctx) -> dict:
    """Update a domain.

    :param name: Name of the domain.
    :type name: unicode
    :param authoritative: True if we are authoritative for this domain.
    :type authoritative: unicode
    :param ttl: The default TTL for this domain.
    :type ttl: int
    :param forward_dns_servers: List of IP addresses for forward DNS servers when MAAS is not authoritative.
    :type forward_dns_servers: unicode
    """
    fields = _fields(ctx)
    return render.domain(await ctx.run(svc.update_domain, ctx.path["id"], fields))


@domain.action("POST", "set_default", admin=True)
async def set_default(ctx: Ctx) -> dict:
    """Set domain as default.

    Every node without a domain of its own is now in this domain.

    :param id: The domain's id (in the URL).
    :type id: int
    """
    return render.domain(await ctx.run(svc.set_default, ctx.path["id"]))


@domain.action("DELETE", admin=True)
async def delete_domain(ctx: Ctx) -> None:
    """Delete domain."""
    await ctx.run(svc.delete_domain, ctx.path["id"])
