"""fabrics/{fabric_id}/vlans/, fabrics/{fabric_id}/vlans/{vid}/ and vlans/{id}/."""

from __future__ import annotations

from metalplane.region.api import render
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.errors import NotFound
from metalplane.region.services import connections, dhcp, network

FIELDS = {
    "name": "str", "description": "str", "vid": "int", "mtu": "int", "dhcp_on": "bool",
    "primary_rack": "str", "secondary_rack": "str", "relay_vlan": "str", "space": "str", "fabric": "str",
}
UPDATE_DOC = """Update VLAN.

:param name: Name of the VLAN.
:type name: unicode
:param description: Description of the VLAN.
:type description: unicode
:param vid: VLAN ID of the VLAN.
:type vid: integer
:param mtu: The MTU to use on the VLAN.
:type mtu: integer
:param dhcp_on: Whether or not DHCP should be managed on the VLAN.
:type dhcp_on: boolean
:param primary_rack: The primary rack controller managing the VLAN (system_id or hostname).
:type primary_rack: unicode
:param secondary_rack: The secondary rack controller managing the VLAN (system_id or hostname).
:type secondary_rack: unicode
:param relay_vlan: Relay VLAN ID. Only set when this VLAN will be using a DHCP relay to another VLAN.
:type relay_vlan: integer
:param space: The space this VLAN should be placed in ('undefined' for none).
:type space: unicode
"""

vlans = Handler("VlansHandler", "fabrics/{fabric_id}/vlans/", "Manage VLANs on a fabric.")
vlan = Handler("VlanHandler", "fabrics/{fabric_id}/vlans/{vid}/", "Manage a VLAN on a fabric.")
# MAAS routes the same handler at vlans/{id}/ without describing it twice.
vlan_by_id = Handler("VlanHandler", "vlans/{vlan_id}/", "Manage a VLAN by its id.", described=False)


async def render_vlans(conn, rows: list[dict], by_id: dict[int, dict]) -> list[dict]:
    """VLANs with the rack the seeds say appears as candidate secondary."""
    candidates = await dhcp.candidates(conn)
    return [render.vlan(v, by_id, extra={"candidate_secondary_rack": candidates.get(v["id"])}) for v in rows]


async def render_vlan(conn, vlan_id: int) -> dict:
    by_id = {v["id"]: v for v in await network.list_vlans(conn)}
    return (await render_vlans(conn, [by_id[vlan_id]], by_id))[0]


async def _target(ctx: Ctx, conn) -> dict:
    if "vlan_id" in ctx.path:
        return await network.get_vlan(conn, ctx.path_int("vlan_id"))
    vid = ctx.path_int("vid")
    if not 0 <= vid <= 4094:
        raise NotFound("VLAN tag (VID) out of range (0-4094; 0 for untagged.)")
    return await network.get_vlan_by_vid(conn, ctx.path_int("fabric_id"), vid)


@vlans.read
async def list_vlans(ctx: Ctx) -> list:
    """List all VLANs belonging to fabric."""
    async with ctx.tx() as conn:
        fabric_id = ctx.path_int("fabric_id")
        await network.get_fabric(conn, fabric_id)
        all_vlans = await network.list_vlans(conn)
        by_id = {v["id"]: v for v in all_vlans}
        return await render_vlans(conn, [v for v in all_vlans if v["fabric_id"] == fabric_id], by_id)


@vlans.action("POST", admin=True)
async def create_vlan(ctx: Ctx) -> dict:
    """Create a VLAN.

    :param name: Name of the VLAN.
    :type name: unicode
    :param description: Description of the VLAN.
    :type description: unicode
    :param vid: VLAN ID of the VLAN.
    :type vid: integer
    :param mtu: The MTU to use on the VLAN.
    :type mtu: integer
    :param space: The space this VLAN should be placed in.
    :type space: unicode
    """
    async with ctx.tx() as conn:
        row = await network.create_vlan(conn, ctx.path_int("fabric_id"), ctx.params.given(FIELDS))
        return await render_vlan(conn, row["id"])


async def read_vlan(ctx: Ctx) -> dict:
    """Retrieve VLAN."""
    async with ctx.tx() as conn:
        return await render_vlan(conn, (await _target(ctx, conn))["id"])


async def update_vlan(ctx: Ctx) -> dict:
    async with ctx.tx() as conn:
        target = await _target(ctx, conn)
        await network.update_vlan(conn, target["id"], ctx.params.given(FIELDS))
        # The seeds: a network change (toggling DHCP, changing a VLAN) triggers a balance check.
        await dhcp.announce_change(conn)
        await connections.rebalance(conn, ctx.app_state.config.rpc_connections_per_rack,
                            ctx.app_state.config.balance_threshold)
        return await render_vlan(conn, target["id"])


update_vlan.__doc__ = UPDATE_DOC


async def delete_vlan(ctx: Ctx) -> None:
    """Delete VLAN."""
    async with ctx.tx() as conn:
        await network.delete_vlan(conn, await _target(ctx, conn))


for handler in (vlan, vlan_by_id):
    handler.read(read_vlan)
    handler.action("PUT", admin=True)(update_vlan)
    handler.action("DELETE", admin=True)(delete_vlan)
