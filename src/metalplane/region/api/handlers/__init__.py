"""Every MAAS handler metalplane serves, one module per resource."""

from __future__ import annotations

from metalplane.region.api.framework import Handler


def all_handlers() -> list[Handler]:
    from metalplane.region.api.handlers import (
        account,
        boot_resources,
        commissioning_scripts,
        controllers,
        devices,
        events,
        fabrics,
        interfaces,
        ipaddresses,
        ipranges,
        maas,
        machines,
        meta,
        nodes,
        notifications,
        resource_pools,
        script_results,
        spaces,
        storage,
        subnets,
        tags,
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
        nodes.nodes, nodes.node,
        interfaces.interfaces, interfaces.interface,
        ipaddresses.ipaddresses,
        storage.block_devices, storage.block_device, storage.partitions, storage.partition,
        storage.partition_plural,
        script_results.node_results, script_results.commissioning_results,
        script_results.script_sets, script_results.script_set,
        devices.devices, devices.device,
        tags.tags, tags.tag,
        resource_pools.pools, resource_pools.pool_h,
        events.events,
        notifications.notifications, notifications.notification,
    ]
