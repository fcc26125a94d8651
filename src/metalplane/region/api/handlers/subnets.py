"""subnets/ and subnets/{id}/ (id, CIDR or name)."""

from __future__ import annotations

from metalplane.region.api import render
from metalplane.region.api.context import Ctx
from metalplane.region.api.crud import Crud, first, given
from metalplane.region.api.framework import Handler
from metalplane.region.services import subnets as subnet_svc

FIELDS = {
    "cidr": "str",
    "name": "str",
    "description": "str",
    "vlan": "str",
    "fabric": "str",
    "vid": "int",
    "gateway_ip": "str",
    "dns_servers": "list",
    "rdns_mode": "int",
    "allow_dns": "bool",
    "allow_proxy": "bool",
    "active_discovery": "bool",
    "managed": "bool",
}
PARAMS_DOC = """
:param cidr: The network CIDR for this subnet.
:type cidr: unicode
:param name: Name of the subnet (defaults to the CIDR).
:type name: unicode
:param description: Description of the subnet.
:type description: unicode
:param vlan: VLAN id this subnet belongs to.
:type vlan: unicode
:param fabric: Fabric (id or name) for the subnet; with vid, selects the VLAN.
:type fabric: unicode
:param vid: VID of the VLAN this subnet belongs to.
:type vid: integer
:param gateway_ip: Gateway IP address for the subnet.
:type gateway_ip: unicode
:param dns_servers: Comma-separated list of DNS servers for the subnet.
:type dns_servers: unicode
:param rdns_mode: How reverse DNS is handled: 0 disabled, 1 enabled, 2 RFC2317.
:type rdns_mode: integer
:param allow_dns: Configure MAAS DNS to allow DNS resolution from this subnet.
:type allow_dns: boolean
:param allow_proxy: Configure maas-proxy to allow requests from this subnet.
:type allow_proxy: boolean
:param active_discovery: Allow active discovery on this subnet.
:type active_discovery: boolean
:param managed: Whether MAAS manages this subnet's addresses.
:type managed: boolean
"""

subnets = Handler("SubnetsHandler", "subnets/", "Manage subnets.")
subnet = Handler("SubnetHandler", "subnets/{id}/", "Manage subnet.")
# MAAS's subnet specifier may be a CIDR, whose "/" a single path segment cannot hold:
# the same handler is routed at subnets/<address>/<prefixlen>/ too, described once.
subnet_by_cidr = Handler("SubnetHandler", "subnets/{address}/{prefixlen}/", "Manage subnet.", described=False)


def _ident(ctx: Ctx) -> str:
    if "id" in ctx.path:
        return ctx.path["id"]
    return f"{ctx.path['address']}/{ctx.path['prefixlen']}"


crud = Crud(subnets, (subnet, subnet_by_cidr), first(render.subnets), render.subnets, key=_ident)
crud.list_all(subnet_svc.show_subnets, "List all subnets.")
crud.create(subnet_svc.create_subnet, given(FIELDS), "Create a subnet.\n" + PARAMS_DOC)
crud.read(subnet_svc.show_subnets, "Read a subnet.")
crud.update(subnet_svc.update_subnet, given(FIELDS), "Update a subnet.\n" + PARAMS_DOC)
crud.delete(subnet_svc.delete_subnet, "Delete a subnet.")


async def ip_addresses(ctx: Ctx) -> list:
    """Returns a summary of IP addresses assigned to this subnet.

    Controller addresses (alloc_type 1, sticky) and the active DHCP leases the
    racks reported (alloc_type 6, discovered), each with its MAC address.

    :param with_username: Include the username of the owner (always null here).
    :type with_username: boolean
    """
    found = await ctx.run(subnet_svc.subnet_addresses, _ident(ctx))
    return render.subnet_addresses(found.known, found.leases)


for handler in (subnet, subnet_by_cidr):
    handler.action("GET", "ip_addresses")(ip_addresses)
