"""ipranges/ and ipranges/{id}/."""

from __future__ import annotations

from metalplane.region.api import render
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.services import dhcp, network
from metalplane.region.services import users as user_svc

FIELDS = {"type": "str", "start_ip": "str", "end_ip": "str", "subnet": "str", "comment": "str"}

ipranges = Handler("IPRangesHandler", "ipranges/", "Manage IP ranges.")
iprange = Handler("IPRangeHandler", "ipranges/{id}/", "Manage IP range.")


async def render_ranges(conn, rows: list[dict]) -> list[dict]:
    by_id = {v["id"]: v for v in await network.list_vlans(conn)}
    subnets = {s["id"]: render.subnet(s, by_id) for s in await network.list_subnets(conn)}
    owners = {u.id: u for u in await user_svc.list_users(conn)}
    return [render.iprange(r, subnets[r["subnet_id"]], owners.get(r["user_id"])) for r in rows]


@ipranges.read
async def list_ranges(ctx: Ctx) -> list:
    """List all IP ranges."""
    async with ctx.tx() as conn:
        return await render_ranges(conn, await network.list_ranges(conn))


@ipranges.create
async def create_range(ctx: Ctx) -> dict:
    """Create an IP range.

    :param type: Type of this range: `dynamic` or `reserved`.
    :type type: unicode
    :param start_ip: Start IP address of this range (inclusive).
    :type start_ip: unicode
    :param end_ip: End IP address of this range (inclusive).
    :type end_ip: unicode
    :param subnet: Subnet (id or CIDR) for this range; found from start_ip when omitted.
    :type subnet: unicode
    :param comment: A description of this range.
    :type comment: unicode
    """
    async with ctx.tx() as conn:
        row = await network.create_range(conn, ctx.params.given(FIELDS), ctx.me.id, ctx.me.is_superuser)
        await dhcp.announce_change(conn)  # racks serving DHCP refetch their state
        return (await render_ranges(conn, [row]))[0]


@iprange.read
async def read_range(ctx: Ctx) -> dict:
    """Read an IP range."""
    async with ctx.tx() as conn:
        return (await render_ranges(conn, [await network.get_range(conn, ctx.path_int("id"))]))[0]


@iprange.update
async def update_range(ctx: Ctx) -> dict:
    """Update an IP range.

    :param start_ip: Start IP address of this range (inclusive).
    :type start_ip: unicode
    :param end_ip: End IP address of this range (inclusive).
    :type end_ip: unicode
    :param comment: A description of this range.
    :type comment: unicode
    """
    fields = ctx.params.given({k: FIELDS[k] for k in ("start_ip", "end_ip", "comment")})
    async with ctx.tx() as conn:
        row = await network.update_range(conn, ctx.path_int("id"), fields, ctx.me.id, ctx.me.is_superuser)
        await dhcp.announce_change(conn)  # racks serving DHCP refetch their state
        return (await render_ranges(conn, [row]))[0]


@iprange.delete
async def delete_range(ctx: Ctx) -> None:
    """Delete an IP range."""
    async with ctx.tx() as conn:
        await network.delete_range(conn, ctx.path_int("id"), ctx.me.id, ctx.me.is_superuser)
        await dhcp.announce_change(conn)  # racks serving DHCP refetch their state
