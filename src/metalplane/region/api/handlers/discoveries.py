"""discovery/ and discovery/{discovery_id}/ (MAAS's DiscoveriesHandler, DiscoveryHandler):
what the racks saw in ARP (region.services.discoveries)."""

from __future__ import annotations

from metalplane.region.api import render
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.errors import PermissionDenied
from metalplane.region.services import discoveries as svc

discoveries = Handler("DiscoveriesHandler", "discovery/", "Query observed discoveries.")
discovery = Handler("DiscoveryHandler", "discovery/{discovery_id}/", "Read or delete an observed discovery.")
NOT_ADMIN = "Must be an administrator to clear discovery entries."


async def _listed(ctx: Ctx, unknown_mac: bool = False, unknown_ip: bool = False) -> list:
    return [render.discovery(d) for d in await ctx.run(svc.list_discoveries, unknown_mac, unknown_ip)]


@discoveries.read
async def list_discoveries(ctx: Ctx) -> list:
    """List all discovered devices, the most recently seen first."""
    return await _listed(ctx)


@discoveries.action("GET", "by_unknown_mac")
async def by_unknown_mac(ctx: Ctx) -> list:
    """List all discovered devices with unknown MAC: none of MAAS's interfaces has it."""
    return await _listed(ctx, unknown_mac=True)


@discoveries.action("GET", "by_unknown_ip")
async def by_unknown_ip(ctx: Ctx) -> list:
    """List all discovered devices with an unknown IP address: no node has it, no MAAS DHCP lease."""
    return await _listed(ctx, unknown_ip=True)


@discoveries.action("GET", "by_unknown_ip_and_mac")
async def by_unknown_ip_and_mac(ctx: Ctx) -> list:
    """Lists all discovered devices completely unknown to MAAS (neither the MAC nor the address)."""
    return await _listed(ctx, unknown_mac=True, unknown_ip=True)


def _admin(ctx: Ctx) -> None:
    if ctx.user is None or not ctx.user.is_superuser:
        raise PermissionDenied(NOT_ADMIN)


@discoveries.action("POST", "clear")
async def clear(ctx: Ctx) -> None:
    """Delete all discovered neighbours.

    One of mdns, neighbours or all must be true.

    :param mdns: Delete all mDNS entries.
    :type mdns: boolean
    :param neighbours: Delete all neighbour entries.
    :type neighbours: boolean
    :param all: Delete all discovery data.
    :type all: boolean
    """
    everything, mdns, neighbours = (bool(ctx.params.bool(n, False)) for n in ("all", "mdns", "neighbours"))
    _admin(ctx)
    await ctx.run(svc.clear, everything, mdns, neighbours)


@discoveries.action("POST", "clear_by_mac_and_ip")
async def clear_by_mac_and_ip(ctx: Ctx) -> None:
    """Delete discoveries that match a MAC and IP.

    :param ip: IP address
    :type ip: unicode
    :param mac: MAC address
    :type mac: unicode
    """
    ip, mac = ctx.params.str("ip", required=True) or "", ctx.params.str("mac", required=True) or ""
    _admin(ctx)
    await ctx.run(svc.clear_by_mac_and_ip, ip, mac)


@discovery.read
async def read_discovery(ctx: Ctx) -> dict:
    """Read a discovery."""
    return render.discovery(await ctx.run(svc.get_discovery, ctx.path["discovery_id"]))
