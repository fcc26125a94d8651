"""Every MAAS handler metalplane serves, one module per resource."""

from __future__ import annotations

from metalplane.region.api.framework import Handler


def all_handlers() -> list[Handler]:
    from metalplane.region.api.handlers import (
        account,
        boot_resources,
        commissioning_scripts,
        controllers,
        discoveries,
        dnsresources,
        domains,
        fabrics,
        ipranges,
        maas,
        machines,
        meta,
        spaces,
        subnets,
        users,
        vlans,
        zones,
    )

    return [
        meta.version,
        maas.maas,
        users.users, users.user,
        account.account,
        controllers.region_controllers, controllers.region_controller,
        controllers.rack_controllers, controllers.rack_controller,
        fabrics.fabrics, fabrics.fabric,
        vlans.vlans, vlans.vlan, vlans.vlan_by_id,
        subnets.subnets, subnets.subnet, subnets.subnet_by_cidr,
        ipranges.ipranges, ipranges.iprange,
        spaces.spaces, spaces.space,
        zones.zones, zones.zone,
        boot_resources.boot_resources, boot_resources.boot_resource,
        machines.machines_h, machines.machine_h,
        commissioning_scripts.scripts, commissioning_scripts.script,
        domains.domains, domains.domain,
        dnsresources.resources, dnsresources.resource, dnsresources.records, dnsresources.record,
        discoveries.discoveries, discoveries.discovery,
    ]
