"""The schema, as SQLAlchemy Core tables. Migrations create exactly these.

Migration 0010 also adds the triggers that NOTIFY `metalplane_changes` for the
web UI's live pages (see region/changes.py); they are not declared here.
"""

from __future__ import annotations

from sqlalchemy import (
    DDL,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    event,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, CIDR, INET, JSONB

metadata = MetaData()


def _timestamps() -> list[Column]:
    return [
        Column("created", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]


# Cluster-wide key/value settings: the shared secret, the cluster uuid, ...
config = Table(
    "config",
    metadata,
    Column("name", Text, primary_key=True),
    Column("value", JSONB, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", Text, nullable=False, unique=True),
    Column("email", Text, nullable=False, server_default=""),
    Column("password", Text, nullable=False),
    Column("is_superuser", Boolean, nullable=False, server_default="false"),
    Column("is_active", Boolean, nullable=False, server_default="true"),
    *_timestamps(),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", Text, nullable=False, server_default=""),
    Column("consumer_key", Text, nullable=False),
    Column("token_key", Text, nullable=False, unique=True),
    Column("token_secret", Text, nullable=False),
    *_timestamps(),
)

# Web UI sessions: any region serves the next request. Only a hash of the
# cookie's key is stored, so reading the table does not hand out sessions.
ui_sessions = Table(
    "ui_sessions",
    metadata,
    Column("key_hash", Text, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("csrf_token", Text, nullable=False),
    Column("expires", DateTime(timezone=True), nullable=False, index=True),
    *_timestamps(),
)

# Failed web UI logins per "user:NAME" and "addr:ADDRESS" in the current minute (any region).
login_failures = Table(
    "login_failures",
    metadata,
    Column("key", Text, primary_key=True),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("window_start", DateTime(timezone=True), nullable=False, server_default=func.now(), index=True),
)

zones = Table(
    "zones",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("description", Text, nullable=False, server_default=""),
    *_timestamps(),
)

spaces = Table(
    "spaces",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("description", Text, nullable=False, server_default=""),
    *_timestamps(),
)

# DNS domains (MAAS's): the default one, "maas", has id 0 (created by migration 0012).
domains = Table(
    "domains",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("authoritative", Boolean, nullable=False, server_default="true"),
    Column("ttl", Integer, nullable=True),
    *_timestamps(),
)

# Names in a domain with addresses (A/AAAA) and other records (dnsdata).
dnsresources = Table(
    "dnsresources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("domain_id", Integer, ForeignKey("domains.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("address_ttl", Integer, nullable=True),
    Column("ips", ARRAY(INET), nullable=False, server_default="{}"),
    *_timestamps(),
    UniqueConstraint("domain_id", "name"),
)

dnsdata = Table(
    "dnsdata",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("dnsresource_id", Integer, ForeignKey("dnsresources.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("rrtype", Text, nullable=False),
    Column("rrdata", Text, nullable=False),
    Column("ttl", Integer, nullable=True),
    *_timestamps(),
)

# Machines, devices and controllers: one table, as in MAAS, told apart by node_type.
nodes = Table(
    "nodes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("system_id", Text, nullable=False, unique=True),
    Column("hostname", Text, nullable=False),
    Column("node_type", Integer, nullable=False),
    Column("version", Text, nullable=False, server_default=""),
    Column("zone_id", Integer, ForeignKey("zones.id"), nullable=True),
    Column("description", Text, nullable=False, server_default=""),
    # Machines (node_type 0): MAAS's status and facts.
    Column("status", Integer, nullable=False, server_default="0"),
    Column("status_expires", DateTime(timezone=True), nullable=True),
    Column("error_description", Text, nullable=False, server_default=""),
    Column("architecture", Text, nullable=True),
    Column("boot_method", Text, nullable=True),
    Column("cpu_count", Integer, nullable=False, server_default="0"),
    Column("memory", Integer, nullable=False, server_default="0"),  # MiB
    Column("hardware", JSONB, nullable=False, server_default="{}"),
    Column(
        "bmc_id",
        Integer,
        ForeignKey("bmcs.id", ondelete="SET NULL", use_alter=True, name="nodes_bmc_id_fkey"),
        nullable=True,
        index=True,
    ),
    Column("instance_power_parameters", JSONB, nullable=False, server_default="{}"),
    Column("power_state", Text, nullable=False, server_default="unknown"),
    Column("power_state_updated", DateTime(timezone=True), nullable=True),
    # MAAS's node fields beyond the hardware facts (migration 0006).
    Column("pool_id", Integer, ForeignKey("resource_pools.id"), nullable=True, index=True),
    Column("owner_id", Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True),
    Column("locked", Boolean, nullable=False, server_default="false"),
    Column("owner_data", JSONB, nullable=False, server_default="{}"),  # = workload_annotations
    Column("agent_name", Text, nullable=False, server_default=""),
    Column("parent_id", Integer, ForeignKey("nodes.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("hardware_uuid", Text, nullable=True),
    Column("swap_size", BigInteger, nullable=True),  # bytes
    Column("min_hwe_kernel", Text, nullable=True),
    Column("hwe_kernel", Text, nullable=True),
    Column("cpu_speed", Integer, nullable=False, server_default="0"),  # MHz
    Column(
        "gateway_link_ipv4_id",
        Integer,
        ForeignKey("ip_addresses.id", ondelete="SET NULL", use_alter=True, name="nodes_gateway_link_ipv4_id_fkey"),
        nullable=True,
    ),
    Column(
        "gateway_link_ipv6_id",
        Integer,
        ForeignKey("ip_addresses.id", ondelete="SET NULL", use_alter=True, name="nodes_gateway_link_ipv6_id_fkey"),
        nullable=True,
    ),
    # The deployment lifecycle (migration 0009): what is installed, whether the next PXE
    # boot netboots (false once the installer is done), the status before Broken or
    # rescue mode, how a release erases the disks ("quick", "secure", "full").
    Column("osystem", Text, nullable=False, server_default=""),
    Column("distro_series", Text, nullable=False, server_default=""),
    Column("netboot", Boolean, nullable=False, server_default="true"),
    Column("previous_status", Integer, nullable=True),
    Column("erase_mode", Text, nullable=True),
    Column("status_timeout", Integer, nullable=True),  # seconds the current timed status was given
    # NULL: the default domain (whichever it is now; migration 0012).
    Column("domain_id", Integer, ForeignKey("domains.id", name="nodes_domain_id_fkey"), nullable=True, index=True),
    *_timestamps(),
)
# MAAS's Node.hostname is unique; for machines and devices the database holds the
# rule, so concurrent creates cannot both win. Controllers are named by their host
# and register by system_id: a clash there is refused by the services, not here.
Index("nodes_hostname_unique", nodes.c.hostname, unique=True, postgresql_where=nodes.c.node_type.in_([0, 1]))
# The web UI's Machines page (migration 0011): a page by hostname, the status and zone filters.
Index("ix_nodes_type_hostname", nodes.c.node_type, nodes.c.hostname, nodes.c.id)
Index("ix_nodes_type_status", nodes.c.node_type, nodes.c.status)
Index("ix_nodes_zone_id", nodes.c.zone_id)

# Per-controller facts a region reports: its connection need feeds the budget check.
controller_info = Table(
    "controller_info",
    metadata,
    Column("node_id", Integer, ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True),
    Column("num_workers", Integer, nullable=False, server_default="0"),
    Column("connections_needed", Integer, nullable=False, server_default="0"),
    Column("api_port", Integer, nullable=True),
    # Why the region last refused this controller's RPC connection (e.g. version).
    Column("refusal", Text, nullable=True),
    # A region's maas_url: what the UI's "Add rack controller" tells a new rack to use.
    Column("maas_url", Text, nullable=True),
    # A region's address as racks reach it, and the ports of its named and chronyd (0: none).
    Column("address", INET, nullable=True),
    Column("dns_port", Integer, nullable=False, server_default="0"),
    Column("ntp_port", Integer, nullable=False, server_default="0"),
    *_timestamps(),
)

# One row per live region worker process; the heartbeat is `updated`.
region_processes = Table(
    "region_processes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("region_id", Integer, ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("pid", Integer, nullable=False),
    Column("worker_index", Integer, nullable=False),
    Column("rpc_host", Text, nullable=False, server_default=""),
    Column("rpc_port", Integer, nullable=False),
    Column("pool_size", Integer, nullable=False, server_default="0"),
    *_timestamps(),
    UniqueConstraint("region_id", "worker_index"),
)

fabrics = Table(
    "fabrics",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("class_type", Text, nullable=True),
    Column("description", Text, nullable=False, server_default=""),
    *_timestamps(),
)

vlans = Table(
    "vlans",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("fabric_id", Integer, ForeignKey("fabrics.id", ondelete="CASCADE"), nullable=False),
    Column("vid", Integer, nullable=False),
    Column("name", Text, nullable=True),
    Column("description", Text, nullable=False, server_default=""),
    Column("mtu", Integer, nullable=False, server_default="1500"),
    Column("dhcp_on", Boolean, nullable=False, server_default="false"),
    Column("external_dhcp", Text, nullable=True),
    Column("primary_rack_id", Integer, ForeignKey("nodes.id", ondelete="SET NULL"), nullable=True),
    Column("secondary_rack_id", Integer, ForeignKey("nodes.id", ondelete="SET NULL"), nullable=True),
    Column("relay_vlan_id", Integer, ForeignKey("vlans.id", ondelete="SET NULL"), nullable=True),
    Column("space_id", Integer, ForeignKey("spaces.id", ondelete="SET NULL"), nullable=True),
    *_timestamps(),
    UniqueConstraint("fabric_id", "vid"),
    CheckConstraint("vid >= 0 AND vid <= 4094", name="vlans_vid_range"),
    CheckConstraint("mtu >= 552 AND mtu <= 65535", name="vlans_mtu_range"),
)

subnets = Table(
    "subnets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("cidr", CIDR, nullable=False, unique=True),
    Column("vlan_id", Integer, ForeignKey("vlans.id"), nullable=False, index=True),
    Column("gateway_ip", INET, nullable=True),
    Column("dns_servers", ARRAY(Text), nullable=False, server_default="{}"),
    Column("rdns_mode", Integer, nullable=False, server_default="2"),
    Column("allow_dns", Boolean, nullable=False, server_default="true"),
    Column("allow_proxy", Boolean, nullable=False, server_default="true"),
    Column("active_discovery", Boolean, nullable=False, server_default="false"),
    Column("managed", Boolean, nullable=False, server_default="true"),
    Column("disabled_boot_architectures", ARRAY(Text), nullable=False, server_default="{}"),
    *_timestamps(),
)

ipranges = Table(
    "ipranges",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("subnet_id", Integer, ForeignKey("subnets.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("type", Text, nullable=False),
    Column("start_ip", INET, nullable=False),
    Column("end_ip", INET, nullable=False),
    Column("comment", Text, nullable=False, server_default=""),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    *_timestamps(),
    CheckConstraint("type IN ('dynamic', 'reserved')", name="ipranges_type"),
    CheckConstraint("start_ip <= end_ip", name="ipranges_order"),
)


interfaces = Table(
    "interfaces",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("node_id", Integer, ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("mac", Text, nullable=True),
    Column("type", Text, nullable=False, server_default="physical"),
    Column("enabled", Boolean, nullable=False, server_default="true"),
    Column("vlan_id", Integer, ForeignKey("vlans.id", ondelete="SET NULL"), nullable=True, index=True),
    # True for the MACs of machines and devices: one interface per MAC in the whole
    # MAAS. Racks report what their kernel has (VLAN and bridge interfaces repeat
    # their parent's MAC), so theirs do not claim theirs.
    Column("claims_mac", Boolean, nullable=False, server_default="false"),
    Column("mtu", Integer, nullable=True),  # set on the interface; else the VLAN's
    Column("tags", ARRAY(Text), nullable=False, server_default="{}"),
    Column("params", JSONB, nullable=False, server_default="{}"),
    Column("link_connected", Boolean, nullable=False, server_default="true"),
    Column("interface_speed", Integer, nullable=False, server_default="0"),  # Mbit/s
    Column("link_speed", Integer, nullable=False, server_default="0"),
    Column("vendor", Text, nullable=True),
    Column("product", Text, nullable=True),
    Column("firmware_version", Text, nullable=True),
    *_timestamps(),
    UniqueConstraint("node_id", "name"),
)
Index("interfaces_mac_unique", interfaces.c.mac, unique=True, postgresql_where=interfaces.c.claims_mac)
# MAC search, exact or by prefix (LIKE 'aa:bb%').
Index("ix_interfaces_mac", interfaces.c.mac, postgresql_ops={"mac": "text_pattern_ops"})

# Addresses MAAS knows, MAAS's StaticIPAddress: controller interface addresses and
# the links of machines' and devices' interfaces (alloc_type AUTO/DHCP/link-up
# links have no address until deployment), and addresses users reserved.
ip_addresses = Table(
    "ip_addresses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ip", INET, nullable=True, index=True),
    Column("subnet_id", Integer, ForeignKey("subnets.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("alloc_type", Integer, nullable=False),
    Column("interface_id", Integer, ForeignKey("interfaces.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("hostname", Text, nullable=False, server_default=""),  # given with a reservation
    Column("mac", Text, nullable=True),  # a reservation for a MAC no node has
    *_timestamps(),
)

# Live RPC connections: which rack is connected to which region worker.
rpc_connections = Table(
    "rpc_connections",
    metadata,
    Column("rack_id", Integer, ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True),
    Column("process_id", Integer, ForeignKey("region_processes.id", ondelete="CASCADE"), primary_key=True, index=True),
    *_timestamps(),
)

# Where the balancer wants each rack connected; workers push changes to racks.
rpc_targets = Table(
    "rpc_targets",
    metadata,
    Column("rack_id", Integer, ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True),
    Column("process_id", Integer, ForeignKey("region_processes.id", ondelete="CASCADE"), primary_key=True, index=True),
)

service_status = Table(
    "service_status",
    metadata,
    Column("node_id", Integer, ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True),
    Column("name", Text, primary_key=True),
    Column("status", Text, nullable=False, server_default="unknown"),
    Column("status_info", Text, nullable=False, server_default=""),
    *_timestamps(),
)

# DHCP leases reported by racks: one row per address, whichever rack of a pair
# reported it; `changed` orders events so a late duplicate cannot undo a newer one.
dhcp_leases = Table(
    "dhcp_leases",
    metadata,
    Column("ip", INET, primary_key=True),
    Column("mac", Text, nullable=False),
    Column("hostname", Text, nullable=False, server_default=""),
    Column("subnet_id", Integer, ForeignKey("subnets.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("state", Text, nullable=False),
    Column("expires", DateTime(timezone=True), nullable=True),
    Column("changed", DateTime(timezone=True), nullable=False),
    Column("reported_by", Integer, ForeignKey("nodes.id", ondelete="SET NULL"), nullable=True),
    *_timestamps(),
    CheckConstraint("state IN ('active', 'released', 'expired')", name="dhcp_leases_state"),
)


# A BMC is shared by every machine with the same power type and identity
# (address + user). Its owner is the one rack that talks to it.
bmcs = Table(
    "bmcs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("power_type", Text, nullable=False),
    Column("identity", Text, nullable=False),
    Column("power_parameters", JSONB, nullable=False, server_default="{}"),
    Column("owner_rack_id", Integer, ForeignKey("nodes.id", ondelete="SET NULL"), nullable=True, index=True),
    Column("failing", Boolean, nullable=False, server_default="false"),
    Column("last_error", Text, nullable=False, server_default=""),
    *_timestamps(),
    UniqueConstraint("power_type", "identity"),
)

# Racks that have proven they reach a BMC (a successful call): candidates for
# owning it when no rack shares its layer-2 subnet.
bmc_routes = Table(
    "bmc_routes",
    metadata,
    Column("bmc_id", Integer, ForeignKey("bmcs.id", ondelete="CASCADE"), primary_key=True),
    Column("rack_id", Integer, ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True),
    *_timestamps(),
)

# Power actions in flight: a rack's death hands them to the BMC's next owner once.
power_actions = Table(
    "power_actions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("node_id", Integer, ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("action", Text, nullable=False),
    Column("state", Text, nullable=False, server_default="queued"),
    Column("rack_id", Integer, ForeignKey("nodes.id", ondelete="SET NULL"), nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("result", Text, nullable=False, server_default=""),
    Column("error", Text, nullable=False, server_default=""),
    *_timestamps(),
    CheckConstraint("action IN ('on', 'off', 'cycle', 'query')", name="power_actions_action"),
    CheckConstraint("state IN ('queued', 'running', 'done', 'failed')", name="power_actions_state"),
)

# Per-machine credentials for the metadata API the ephemeral image calls.
node_tokens = Table(
    "node_tokens",
    metadata,
    Column("node_id", Integer, ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True),
    Column("token", Text, nullable=False, unique=True),
    *_timestamps(),
)

# What `machine deploy user_data=` gave (MAAS's NodeUserData): served to the installer.
node_user_data = Table(
    "node_user_data",
    metadata,
    Column("node_id", Integer, ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True),
    Column("data", LargeBinary, nullable=False),
    *_timestamps(),
)

# One run of scripts on a node (MAAS's ScriptSet): result_type 0 commissioning,
# 1 installation, 2 testing. `ended` is set when the node reports it is done.
script_sets = Table(
    "script_sets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("node_id", Integer, ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("result_type", Integer, nullable=False, server_default="0"),
    Column("ended", DateTime(timezone=True), nullable=True),
    Column("last_ping", DateTime(timezone=True), nullable=True),
    *_timestamps(),
)

# The one-use credential a commissioning machine's boot config carries instead of
# its token (services/enrolment.py): bound to the address that fetched the config,
# exchanged once, from that address, for the token.
node_enrolments = Table(
    "node_enrolments",
    metadata,
    Column("node_id", Integer, ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True),
    Column("secret", Text, nullable=False, unique=True),
    Column("address", INET, nullable=True),  # null: bound by the first exchange (a rack that sent none)
    Column("expires", DateTime(timezone=True), nullable=False),
    Column("used", DateTime(timezone=True), nullable=True),
    *_timestamps(),
)

# Output of commissioning scripts, as MAAS keeps it.
script_results = Table(
    "script_results",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("node_id", Integer, ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("exit_status", Integer, nullable=True),
    Column("output", Text, nullable=False, server_default=""),
    Column("script_set_id", Integer, ForeignKey("script_sets.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("runtime", Integer, nullable=True),  # seconds, as the image measured
    *_timestamps(),
)

# Resource pools: every machine is in one (the default pool has id 0, as in MAAS).
resource_pools = Table(
    "resource_pools",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False, unique=True),
    Column("description", Text, nullable=False, server_default=""),
    *_timestamps(),
)

# Tags: manual ones (no definition) and automatic ones (an XPath over each node's
# hardware document, docs/tags.md).
tags = Table(
    "tags",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("definition", Text, nullable=False, server_default=""),
    Column("comment", Text, nullable=False, server_default=""),
    Column("kernel_opts", Text, nullable=False, server_default=""),
    *_timestamps(),
)

node_tags = Table(
    "node_tags",
    metadata,
    Column("node_id", Integer, ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", Integer, ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)

# Disks the node reported at commissioning (MAAS's PhysicalBlockDevice) and their partitions.
block_devices = Table(
    "block_devices",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("node_id", Integer, ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("id_path", Text, nullable=True),
    Column("model", Text, nullable=False, server_default=""),
    Column("serial", Text, nullable=False, server_default=""),
    Column("size", BigInteger, nullable=False),  # bytes
    Column("block_size", Integer, nullable=False, server_default="512"),
    Column("tags", ARRAY(Text), nullable=False, server_default="{}"),
    *_timestamps(),
    UniqueConstraint("node_id", "name"),
)

partitions = Table(
    "partitions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("block_device_id", Integer, ForeignKey("block_devices.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("number", Integer, nullable=False),
    Column("uuid", Text, nullable=True),
    Column("size", BigInteger, nullable=False),
    Column("bootable", Boolean, nullable=False, server_default="false"),
    Column("tags", ARRAY(Text), nullable=False, server_default="{}"),
    *_timestamps(),
    UniqueConstraint("block_device_id", "number"),
)

# MAAS's node event log: status changes, power actions, commissioning results.
# The node's system_id and hostname are copied, so the log outlives the node.
events = Table(
    "events",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("node_id", Integer, ForeignKey("nodes.id", ondelete="SET NULL"), nullable=True, index=True),
    Column("node_system_id", Text, nullable=True),
    Column("node_hostname", Text, nullable=False, server_default=""),
    Column("type_name", Text, nullable=False),
    Column("type_description", Text, nullable=False),
    Column("level", Integer, nullable=False),  # logging levels; AUDIT is 0
    Column("action", Text, nullable=False, server_default=""),
    Column("description", Text, nullable=False, server_default=""),
    Column("username", Text, nullable=False, server_default=""),
    Column("created", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ident", Text, nullable=True, unique=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    Column("users", Boolean, nullable=False, server_default="false"),
    Column("admins", Boolean, nullable=False, server_default="false"),
    Column("message", Text, nullable=False),
    Column("context", JSONB, nullable=False, server_default="{}"),
    Column("category", Text, nullable=False, server_default="info"),
    Column("dismissable", Boolean, nullable=False, server_default="true"),
    *_timestamps(),
    CheckConstraint("category IN ('error', 'warning', 'success', 'info')", name="notifications_category"),
)

notification_dismissals = Table(
    "notification_dismissals",
    metadata,
    Column("notification_id", Integer, ForeignKey("notifications.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)


# -- Boot resources (images): resources have sets (versions), sets have files. ----------
# File contents live in PostgreSQL, content-addressed by sha256, as 1 MiB bytea
# chunks, so every region serves every image straight from the shared database.
boot_resources = Table(
    "boot_resources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("rtype", Text, nullable=False),
    Column("name", Text, nullable=False),  # e.g. "ephemeral/bookworm", "ubuntu/jammy"
    Column("architecture", Text, nullable=False),  # "amd64/generic"
    Column("extra", JSONB, nullable=False, server_default="{}"),  # title, subarches, ...
    *_timestamps(),
    UniqueConstraint("name", "architecture"),
    CheckConstraint("rtype IN ('synced', 'uploaded', 'generated')", name="boot_resources_rtype"),
)

boot_resource_sets = Table(
    "boot_resource_sets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("resource_id", Integer, ForeignKey("boot_resources.id", ondelete="CASCADE"), nullable=False),
    Column("version", Text, nullable=False),
    Column("label", Text, nullable=False, server_default=""),
    *_timestamps(),
    UniqueConstraint("resource_id", "version"),
)

# One stored blob per sha256. `stored` bytes are in chunks 0..; `complete` only
# once all `size` bytes are there and their sha256 was checked. An importer
# holds `writer` until `writer_until` (a lease it renews per chunk).
boot_resource_contents = Table(
    "boot_resource_contents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sha256", Text, nullable=False, unique=True),
    Column("size", BigInteger, nullable=False),
    Column("stored", BigInteger, nullable=False, server_default="0"),
    Column("complete", Boolean, nullable=False, server_default="false"),
    Column("writer", Text, nullable=True),
    Column("writer_until", DateTime(timezone=True), nullable=True),
    Column("error", Text, nullable=False, server_default=""),
    *_timestamps(),
    CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="boot_resource_contents_sha256"),
    CheckConstraint("size >= 0 AND stored >= 0 AND stored <= size", name="boot_resource_contents_sizes"),
    CheckConstraint("NOT complete OR stored = size", name="boot_resource_contents_complete"),
)

# Chunk `seq` holds bytes [seq * 1 MiB, (seq + 1) * 1 MiB) of its content.
boot_resource_chunks = Table(
    "boot_resource_chunks",
    metadata,
    Column("content_id", Integer, ForeignKey("boot_resource_contents.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)
# As migration 0005 does: the chunks are compressed files already, so no pglz.
event.listen(
    boot_resource_chunks, "after_create", DDL("ALTER TABLE boot_resource_chunks ALTER COLUMN data SET STORAGE EXTERNAL")
)

boot_resource_files = Table(
    "boot_resource_files",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("set_id", Integer, ForeignKey("boot_resource_sets.id", ondelete="CASCADE"), nullable=False),
    Column("filetype", Text, nullable=False),  # boot-kernel, boot-initrd, squashfs, root-tgz, ...
    Column("filename", Text, nullable=False),
    Column("content_id", Integer, ForeignKey("boot_resource_contents.id"), nullable=False, index=True),
    Column("extra", JSONB, nullable=False, server_default="{}"),
    *_timestamps(),
    UniqueConstraint("set_id", "filetype"),
    UniqueConstraint("set_id", "filename"),
)

# Imports (from simplestreams): run by the worker that was asked, visible to all.
# A job whose heartbeat stops (its worker died) is no longer importing.
boot_resource_imports = Table(
    "boot_resource_imports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source", Text, nullable=False),
    Column("state", Text, nullable=False, server_default="running"),
    Column("message", Text, nullable=False, server_default=""),
    Column("owner", Text, nullable=False, server_default=""),
    Column("files_total", Integer, nullable=False, server_default="0"),
    Column("files_done", Integer, nullable=False, server_default="0"),
    Column("bytes_total", BigInteger, nullable=False, server_default="0"),
    Column("bytes_done", BigInteger, nullable=False, server_default="0"),
    Column("stop_requested", Boolean, nullable=False, server_default="false"),
    Column("heartbeat", DateTime(timezone=True), nullable=False, server_default=func.now()),
    *_timestamps(),
    CheckConstraint("state IN ('running', 'done', 'failed', 'stopped')", name="boot_resource_imports_state"),
)


# What racks saw on their networks (ARP): one row per (rack, interface, ip), its MAC the last seen.
discoveries = Table(
    "discoveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("rack_id", Integer, ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
    Column("interface", Text, nullable=False),
    Column("vid", Integer, nullable=True),
    Column("ip", INET, nullable=False, index=True),
    Column("mac", Text, nullable=False, index=True),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    UniqueConstraint("rack_id", "interface", "ip"),
)


# -- Accounts, images' sources, repositories and the small MAAS objects (migration 0013) --

# SSH public keys; `digest` (sha256 of the normalised key) makes the key unique per
# user and source without indexing long text. protocol/auth_id are "" for keys
# added by hand, e.g. "gh"/"octocat" for imported ones.
sshkeys = Table(
    "sshkeys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("key", Text, nullable=False),
    Column("digest", Text, nullable=False),
    Column("protocol", Text, nullable=False, server_default=""),
    Column("auth_id", Text, nullable=False, server_default=""),
    *_timestamps(),
    UniqueConstraint("user_id", "digest", "protocol", "auth_id"),
)

sslkeys = Table(
    "sslkeys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("key", Text, nullable=False),
    Column("digest", Text, nullable=False),
    *_timestamps(),
    UniqueConstraint("user_id", "digest"),
)

boot_sources = Table(
    "boot_sources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", Text, nullable=False, unique=True),
    Column("keyring_filename", Text, nullable=False, server_default=""),
    Column("keyring_data", LargeBinary, nullable=False, server_default=""),
    *_timestamps(),
)

boot_source_selections = Table(
    "boot_source_selections",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("boot_source_id", Integer, ForeignKey("boot_sources.id", ondelete="CASCADE"), nullable=False),
    Column("os", Text, nullable=False, server_default=""),
    Column("release", Text, nullable=False, server_default=""),
    Column("arches", ARRAY(Text), nullable=False, server_default="{}"),
    Column("subarches", ARRAY(Text), nullable=False, server_default="{}"),
    Column("labels", ARRAY(Text), nullable=False, server_default="{}"),
    *_timestamps(),
    UniqueConstraint("boot_source_id", "os", "release"),
)

package_repositories = Table(
    "package_repositories",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("url", Text, nullable=False),
    Column("distributions", ARRAY(Text), nullable=False, server_default="{}"),
    Column("disabled_pockets", ARRAY(Text), nullable=False, server_default="{}"),
    Column("disabled_components", ARRAY(Text), nullable=False, server_default="{}"),
    Column("disable_sources", Boolean, nullable=False, server_default="true"),
    Column("components", ARRAY(Text), nullable=False, server_default="{}"),
    Column("arches", ARRAY(Text), nullable=False, server_default="{}"),
    Column("key", Text, nullable=False, server_default=""),
    Column("is_default", Boolean, nullable=False, server_default="false"),  # main_archive, ports_archive
    Column("enabled", Boolean, nullable=False, server_default="true"),
    *_timestamps(),
)

license_keys = Table(
    "license_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("osystem", Text, nullable=False),
    Column("distro_series", Text, nullable=False),
    Column("license_key", Text, nullable=False),
    *_timestamps(),
    UniqueConstraint("osystem", "distro_series"),
)

# DHCP snippets are stored and versioned as MAAS keeps them; racks do not use them yet.
dhcp_snippets = Table(
    "dhcp_snippets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("enabled", Boolean, nullable=False, server_default="true"),
    Column("node_id", Integer, ForeignKey("nodes.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("subnet_id", Integer, ForeignKey("subnets.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("iprange_id", Integer, ForeignKey("ipranges.id", ondelete="CASCADE"), nullable=True, index=True),
    *_timestamps(),
    CheckConstraint("node_id IS NULL OR subnet_id IS NULL", name="dhcp_snippets_one_target"),
)

# Every value a snippet had, newest last: the newest is its value, all of them its history.
dhcp_snippet_versions = Table(
    "dhcp_snippet_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("snippet_id", Integer, ForeignKey("dhcp_snippets.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("data", Text, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# MAAS's FileStorage: a user's named files, each also readable anonymously by its key.
files = Table(
    "files",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("filename", Text, nullable=False),
    Column("owner_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("key", Text, nullable=False, unique=True),
    Column("content", LargeBinary, nullable=False),
    *_timestamps(),
    UniqueConstraint("filename", "owner_id"),
)

static_routes = Table(
    "static_routes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source_id", Integer, ForeignKey("subnets.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("destination_id", Integer, ForeignKey("subnets.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("gateway_ip", INET, nullable=False),
    Column("metric", Integer, nullable=False, server_default="0"),
    *_timestamps(),
    UniqueConstraint("source_id", "destination_id", "gateway_ip"),
    CheckConstraint("metric >= 0", name="static_routes_metric"),
)
