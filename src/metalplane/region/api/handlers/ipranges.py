"""ipranges/ and ipranges/{id}/."""

from __future__ import annotations

from metalplane.region.api import render
from metalplane.region.api.context import Ctx
from metalplane.region.api.crud import Crud, first
from metalplane.region.api.framework import Handler
from metalplane.region.services import subnets as subnet_svc

RANGE_DOC = """
:param type: Type of this range: `dynamic` or `reserved`.
:type type: unicode
:param start_ip: Start IP address of this range (inclusive).
:type start_ip: unicode
:param end_ip: End IP address of this range (inclusive).
:type end_ip: unicode
"""
FIELDS = {"type": "str", "start_ip": "str", "end_ip": "str", "subnet": "str", "comment": "str"}
CREATE_DOC = (
    "Create an IP range.\n"
    + RANGE_DOC
    + """:param subnet: Subnet (id or CIDR) for this range; found from start_ip when omitted.
:type subnet: unicode
:param comment: A description of this range.
:type comment: unicode
"""
)
UPDATE_DOC = (
    "Update an IP range.\n"
    + RANGE_DOC
    + """:param subnet: Subnet (id or CIDR) this range belongs to.
:type subnet: unicode
:param comment: A description of this range.
:type comment: unicode
"""
)

ipranges = Handler("IPRangesHandler", "ipranges/", "Manage IP ranges.")
iprange = Handler("IPRangeHandler", "ipranges/{id}/", "Manage IP range.")


def _range_id(ctx: Ctx) -> int:
    return ctx.path_int("id")


crud = Crud(ipranges, (iprange,), first(render.ipranges), render.ipranges, key=_range_id, admin=False)
crud.list_all(subnet_svc.show_ranges, "List all IP ranges.")
crud.read(subnet_svc.show_ranges, "Read an IP range.")


@ipranges.action("POST", doc=CREATE_DOC)
async def create_range(ctx: Ctx) -> dict:
    fields = ctx.params.given(FIELDS)
    return crud.shape(await ctx.run(subnet_svc.create_range, fields, ctx.me))


@iprange.action("PUT", doc=UPDATE_DOC)
async def update_range(ctx: Ctx) -> dict:
    fields = ctx.params.given(FIELDS)
    return crud.shape(await ctx.run(subnet_svc.update_range, _range_id(ctx), fields, ctx.me))


@iprange.delete
async def delete_range(ctx: Ctx) -> None:
    """Delete an IP range."""
    await ctx.run(subnet_svc.delete_range, _range_id(ctx), ctx.me)
