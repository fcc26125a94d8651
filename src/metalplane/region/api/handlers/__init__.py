"""Every MAAS handler metalplane serves, one module per resource."""

from __future__ import annotations

from metalplane.region.api.framework import Handler


def all_handlers() -> list[Handler]:
    from metalplane.region.api.handlers import (
        account,
        boot_resources,
        boot_sources,
        commissioning_scripts,
        controllers,
        dhcp_snippets,
        fabrics,
        files,
        ipranges,
        maas,
        machines,
        meta,
        package_repositories,
        spaces,
        sshkeys,
        static_routes,
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
        sshkeys.sshkeys, sshkeys.sshkey, sshkeys.sslkeys, sshkeys.sslkey,
        boot_sources.boot_sources, boot_sources.boot_source, boot_sources.selections, boot_sources.selection,
        package_repositories.repositories, package_repositories.repository,
        package_repositories.license_keys, package_repositories.license_key,
        dhcp_snippets.snippets, dhcp_snippets.snippet,
        files.files, files.file,
        static_routes.routes, static_routes.route,
    ]
