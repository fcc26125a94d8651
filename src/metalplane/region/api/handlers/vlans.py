"""fabrics/{fabric_id}/vlans/, fabrics/{fabric_id}/vlans/{vid}/ and vlans/{id}/."""

from __future__ import annotations

from metalplane.region.api import render
from metalplane.region.api.checks import path_id
from metalplane.region.api.context import Ctx
from metalplane.region.api.crud import Crud, first, given
from metalplane.region.api.framework import Handler, name_and_description_doc, param_doc
from metalplane.region.services import network

FIELDS = {
    "name": "str",
    "description": "str",
    "vid": "int",
    "mtu": "int",
    "dhcp_on": "bool",
    "primary_rack": "str",
    "secondary_rack": "str",
    "relay_vlan": "str",
    "space": "str",
    "fabric": "str",
}
VLAN_DOC = (
    "\n"
    + name_and_description_doc("VLAN")
    + param_doc("vid", "VLAN ID of the VLAN.", "integer")
    + param_doc("mtu", "The MTU to use on the VLAN.", "integer")
)
UPDATE_DOC = (
    "Update VLAN.\n"
    + VLAN_DOC
    + """:param dhcp_on: Whether or not DHCP should be managed on the VLAN.
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
)
CREATE_DOC = (
    "Create a VLAN.\n"
    + VLAN_DOC
    + """:param space: The space this VLAN should be placed in.
:type space: unicode
"""
)

vlans = Handler("VlansHandler", "fabrics/{fabric_id}/vlans/", "Manage VLANs on a fabric.")
vlan = Handler("VlanHandler", "fabrics/{fabric_id}/vlans/{vid}/", "Manage a VLAN on a fabric.")
# MAAS routes the same handler at vlans/{id}/ without describing it twice.
vlan_by_id = Handler("VlanHandler", "vlans/{vlan_id}/", "Manage a VLAN by its id.", described=False)


def _ref(ctx: Ctx) -> network.VlanRef:
    if "vlan_id" in ctx.path:
        return network.VlanRef(vlan_id=path_id(ctx, "vlan_id", "VLAN"))
    return network.VlanRef(vid=ctx.path["vid"], fabric=ctx.path["fabric_id"])


crud = Crud(vlans, (vlan, vlan_by_id), first(render.vlans), render.vlans, key=_ref)
crud.read(network.show_vlan, "Retrieve VLAN.")
crud.update(network.update_vlan, given(FIELDS), UPDATE_DOC)
crud.delete(network.delete_vlan, "Delete VLAN.")


@vlans.read
async def list_vlans(ctx: Ctx) -> list:
    """List all VLANs belonging to fabric."""
    return render.vlans(await ctx.run(network.show_vlans, fabric=ctx.path["fabric_id"]))


@vlans.action("POST", admin=True, doc=CREATE_DOC)
async def create_vlan(ctx: Ctx) -> dict:
    fields = ctx.params.given(FIELDS)
    return crud.shape(await ctx.run(network.create_vlan, ctx.path["fabric_id"], fields))
