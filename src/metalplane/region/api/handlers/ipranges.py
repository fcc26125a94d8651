"""ipranges/ and ipranges/{id}/."""

from __future__ import annotations

from metalplane.region.api import render
from metalplane.region.api.context import Ctx
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


@ipranges.read
async def list_ranges(ctx: Ctx) -> list:
    """List all IP ranges."""
    return render.ipranges(await ctx.run(subnet_svc.show_ranges))


@ipranges.action("POST", doc=CREATE_DOC)
async def create_range(ctx: Ctx) -> dict:
    fields = ctx.params.given(FIELDS)
    return render.ipranges(await ctx.run(subnet_svc.create_range, fields, ctx.me))[0]


@iprange.read
async def read_range(ctx: Ctx) -> dict:
    """Read an IP range."""
    range_id = ctx.path_int("id")
    return render.ipranges(await ctx.run(subnet_svc.show_ranges, range_id))[0]


@iprange.action("PUT", doc=UPDATE_DOC)
async def update_range(ctx: Ctx) -> dict:
    fields = ctx.params.given(FIELDS)
    range_id = ctx.path_int("id")
    return render.ipranges(await ctx.run(subnet_svc.update_range, range_id, fields, ctx.me))[0]


@iprange.delete
async def delete_range(ctx: Ctx) -> None:
    """Delete an IP range."""
    range_id = ctx.path_int("id")
    await ctx.run(subnet_svc.delete_range, range_id, ctx.me)
