"""Keys MAAS 3.7.3 declares for the node resources (the handlers' `fields`, from MAAS's
source, maasserver/api/*.py of tag 3.7.3), plus `resource_uri` where the handler has one.
A response must carry every one; extra keys are allowed (metalplane adds `bmc` to machines)."""

from __future__ import annotations

BLOCK_DEVICE_KEYS = frozenset(
    {
        "system_id",
        "id",
        "name",
        "uuid",
        "type",
        "path",
        "model",
        "serial",
        "id_path",
        "size",
        "block_size",
        "available_size",
        "used_size",
        "used_for",
        "tags",
        "filesystem",
        "partition_table_type",
        "partitions",
        "firmware_version",
        "storage_pool",
        "numa_node",
        "resource_uri",
    }
)
assert len(BLOCK_DEVICE_KEYS) == 22

DEVICE_KEYS = frozenset(
    {
        "system_id",
        "hostname",
        "description",
        "domain",
        "fqdn",
        "owner",
        "owner_data",
        "parent",
        "tag_names",
        "address_ttl",
        "ip_addresses",
        "interface_set",
        "zone",
        "node_type",
        "node_type_name",
        "workload_annotations",
        "resource_uri",
    }
)
assert len(DEVICE_KEYS) == 17

IP_ADDRESS_KEYS = frozenset(
    {
        "alloc_type",
        "alloc_type_name",
        "created",
        "ip",
        "owner",
        "interface_set",
        "subnet",
    }
)
assert len(IP_ADDRESS_KEYS) == 7

INTERFACE_KEYS = frozenset(
    {
        "system_id",
        "id",
        "name",
        "type",
        "vlan",
        "mac_address",
        "parents",
        "children",
        "tags",
        "enabled",
        "links",
        "params",
        "discovered",
        "effective_mtu",
        "vendor",
        "product",
        "firmware_version",
        "link_connected",
        "interface_speed",
        "link_speed",
        "numa_node",
        "sriov_max_vf",
        "resource_uri",
    }
)
assert len(INTERFACE_KEYS) == 23

MACHINE_KEYS = frozenset(
    {
        "system_id",
        "hostname",
        "description",
        "hardware_uuid",
        "domain",
        "fqdn",
        "owner",
        "owner_data",
        "locked",
        "cache_sets",
        "bcaches",
        "bios_boot_method",
        "boot_interface",
        "architecture",
        "min_hwe_kernel",
        "hwe_kernel",
        "cpu_count",
        "cpu_speed",
        "memory",
        "swap_size",
        "storage",
        "status",
        "osystem",
        "distro_series",
        "ephemeral_deploy",
        "error_description",
        "netboot",
        "power_type",
        "power_state",
        "tag_names",
        "address_ttl",
        "ip_addresses",
        "interface_set",
        "zone",
        "pool",
        "disable_ipv4",
        "constraints_by_type",
        "boot_disk",
        "blockdevice_set",
        "physicalblockdevice_set",
        "virtualblockdevice_set",
        "volume_groups",
        "raids",
        "status_action",
        "status_message",
        "status_name",
        "node_type",
        "node_type_name",
        "special_filesystems",
        "parent",
        "pod",
        "default_gateways",
        "current_commissioning_result_id",
        "current_testing_result_id",
        "current_installation_result_id",
        "commissioning_status",
        "commissioning_status_name",
        "testing_status",
        "testing_status_name",
        "cpu_test_status",
        "cpu_test_status_name",
        "memory_test_status",
        "memory_test_status_name",
        "network_test_status",
        "network_test_status_name",
        "storage_test_status",
        "storage_test_status_name",
        "other_test_status",
        "other_test_status_name",
        "hardware_info",
        "interface_test_status",
        "interface_test_status_name",
        "numanode_set",
        "virtualmachine_id",
        "workload_annotations",
        "last_sync",
        "sync_interval",
        "next_sync",
        "enable_hw_sync",
        "enable_kernel_crash_dump",
        "is_dpu",
        "resource_uri",
    }
)
assert len(MACHINE_KEYS) == 82
# MAAS renders constraints_by_type only in `machines allocate` answers.
MACHINE_READ_KEYS = MACHINE_KEYS - {"constraints_by_type"}

NODE_RESULT_KEYS = frozenset(
    {
        "name",
        "script_result",
        "result_type",
        "updated",
        "created",
        "node",
        "data",
        "resource_uri",
    }
)
assert len(NODE_RESULT_KEYS) == 8

SCRIPT_SET_KEYS = frozenset(
    {
        "id",
        "system_id",
        "type",
        "type_name",
        "last_ping",
        "status",
        "status_name",
        "started",
        "ended",
        "runtime",
        "results",
        "suppressed",
        "resource_uri",
    }
)
assert len(SCRIPT_SET_KEYS) == 13

NOTIFICATION_KEYS = frozenset(
    {
        "id",
        "ident",
        "user",
        "users",
        "admins",
        "message",
        "context",
        "category",
        "dismissable",
        "resource_uri",
    }
)
assert len(NOTIFICATION_KEYS) == 10

PARTITION_KEYS = frozenset(
    {
        "system_id",
        "device_id",
        "id",
        "uuid",
        "path",
        "type",
        "size",
        "bootable",
        "filesystem",
        "used_for",
        "tags",
        "resource_uri",
    }
)
assert len(PARTITION_KEYS) == 12

RESOURCE_POOL_KEYS = frozenset(
    {
        "id",
        "name",
        "description",
        "resource_uri",
    }
)
assert len(RESOURCE_POOL_KEYS) == 4

TAG_KEYS = frozenset(
    {
        "name",
        "definition",
        "comment",
        "kernel_opts",
        "resource_uri",
    }
)
assert len(TAG_KEYS) == 5

ZONE_KEYS = frozenset(
    {
        "id",
        "name",
        "description",
        "resource_uri",
    }
)
assert len(ZONE_KEYS) == 4
