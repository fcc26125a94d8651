"""The schema, as SQLAlchemy Core tables. Migrations create exactly these.

Migration 0010 also adds the triggers that NOTIFY `metalplane_changes` for the
web UI's live pages (see region/changes.py); they are not declared here.
"""

from __future__ import annotations

from typing import Any

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


def _id() -> Column:
    return Column("id", Integer, primary_key=True)


def _ref(name: str, target: str, ondelete: str | None = "CASCADE", **options: Any) -> Column:
    """An integer column naming a row of `target` ("table.id"): by default the row goes with
    the one it names; ondelete=None: that one cannot go while named."""
    return Column(name, Integer, ForeignKey(target, ondelete=ondelete), **options)


def _flag(name: str, default: bool) -> Column:
    return Column(name, Boolean, nullable=False, server_default=str(default).lower())


def _text(name: str) -> Column:
    """Text that is empty, never NULL, when not given."""
    return Column(name, Text, nullable=False, server_default="")


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
    _id(),
    Column("username", Text, nullable=False, unique=True),
    _text("email"),
    Column("password", Text, nullable=False),
    _flag("is_superuser", False),
    _flag("is_active", True),
    *_timestamps(),
)

tokens = Table(
    "tokens",
    metadata,
    _id(),
    _ref("user_id", "users.id", nullable=False, index=True),
    _text("name"),
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
    _ref("user_id", "users.id", nullable=False, index=True),
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


def _named_objects(name: str) -> Table:
    """A table of plain MAAS objects: a unique name and a description."""
    return Table(
        name,
        metadata,
        _id(),
        Column("name", Text, nullable=False, unique=True),
        _text("description"),
        *_timestamps(),
    )


zones = _named_objects("zones")
spaces = _named_objects("spaces")

# DNS domains (MAAS's): the default one, "maas", has id 0 (created by migration 0012).
domains = Table(
    "domains",
    metadata,
    _id(),
    Column("name", Text, nullable=False, unique=True),
    _flag("authoritative", True),
    Column("ttl", Integer, nullable=True),
    *_timestamps(),
)

# Names in a domain with addresses (A/AAAA) and other records (dnsdata).
dnsresources = Table(
    "dnsresources",
    metadata,
    _id(),
    Column("name", Text, nullable=False),
    _ref("domain_id", "domains.id", nullable=False, index=True),
    Column("address_ttl", Integer, nullable=True),
    Column("ips", ARRAY(INET), nullable=False, server_default="{}"),
    *_timestamps(),
    UniqueConstraint("domain_id", "name"),
)

dnsdata = Table(
    "dnsdata",
    metadata,
    _id(),
    _ref("dnsresource_id", "dnsresources.id", nullable=False, index=True),
    Column("rrtype", Text, nullable=False),
    Column("rrdata", Text, nullable=False),
    Column("ttl", Integer, nullable=True),
    *_timestamps(),
)

# Machines, devices and controllers: one table, as in MAAS, told apart by node_type.
nodes = Table(
    "nodes",
    metadata,
    _id(),
    Column("system_id", Text, nullable=False, unique=True),
    Column("hostname", Text, nullable=False),
    Column("node_type", Integer, nullable=False),
    _text("version"),
    _ref("zone_id", "zones.id", ondelete=None, nullable=True),
    _text("description"),
    # Machines (node_type 0): MAAS's status and facts.
    Column("status", Integer, nullable=False, server_default="0"),
    Column("status_expires", DateTime(timezone=True), nullable=True),
    _text("error_description"),
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
    _ref("pool_id", "resource_pools.id", ondelete=None, nullable=True, index=True),
    _ref("owner_id", "users.id", ondelete="SET NULL", nullable=True, index=True),
    _flag("locked", False),
    Column("owner_data", JSONB, nullable=False, server_default="{}"),  # = workload_annotations
    _text("agent_name"),
    _ref("parent_id", "nodes.id", nullable=True, index=True),
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
    _text("osystem"),
    _text("distro_series"),
    _flag("netboot", True),
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
    _ref("node_id", "nodes.id", primary_key=True),
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
    _id(),
    _ref("region_id", "nodes.id", nullable=False, index=True),
    Column("pid", Integer, nullable=False),
    Column("worker_index", Integer, nullable=False),
    _text("rpc_host"),
    Column("rpc_port", Integer, nullable=False),
    Column("pool_size", Integer, nullable=False, server_default="0"),
    *_timestamps(),
    UniqueConstraint("region_id", "worker_index"),
)

fabrics = Table(
    "fabrics",
    metadata,
    _id(),
    Column("name", Text, nullable=False, unique=True),
    Column("class_type", Text, nullable=True),
    _text("description"),
    *_timestamps(),
)

vlans = Table(
    "vlans",
    metadata,
    _id(),
    _ref("fabric_id", "fabrics.id", nullable=False),
    Column("vid", Integer, nullable=False),
    Column("name", Text, nullable=True),
    _text("description"),
    Column("mtu", Integer, nullable=False, server_default="1500"),
    _flag("dhcp_on", False),
    Column("external_dhcp", Text, nullable=True),
    _ref("primary_rack_id", "nodes.id", ondelete="SET NULL", nullable=True),
    _ref("secondary_rack_id", "nodes.id", ondelete="SET NULL", nullable=True),
    _ref("relay_vlan_id", "vlans.id", ondelete="SET NULL", nullable=True),
    _ref("space_id", "spaces.id", ondelete="SET NULL", nullable=True),
    *_timestamps(),
    UniqueConstraint("fabric_id", "vid"),
    CheckConstraint("vid >= 0 AND vid <= 4094", name="vlans_vid_range"),
    CheckConstraint("mtu >= 552 AND mtu <= 65535", name="vlans_mtu_range"),
)

subnets = Table(
    "subnets",
    metadata,
    _id(),
    Column("name", Text, nullable=False),
    _text("description"),
    Column("cidr", CIDR, nullable=False, unique=True),
    _ref("vlan_id", "vlans.id", ondelete=None, nullable=False, index=True),
    Column("gateway_ip", INET, nullable=True),
    Column("dns_servers", ARRAY(Text), nullable=False, server_default="{}"),
    Column("rdns_mode", Integer, nullable=False, server_default="2"),
    _flag("allow_dns", True),
    _flag("allow_proxy", True),
    _flag("active_discovery", False),
    _flag("managed", True),
    Column("disabled_boot_architectures", ARRAY(Text), nullable=False, server_default="{}"),
    *_timestamps(),
)

ipranges = Table(
    "ipranges",
    metadata,
    _id(),
    _ref("subnet_id", "subnets.id", nullable=False, index=True),
    Column("type", Text, nullable=False),
    Column("start_ip", INET, nullable=False),
    Column("end_ip", INET, nullable=False),
    _text("comment"),
    _ref("user_id", "users.id", ondelete="SET NULL", nullable=True),
    *_timestamps(),
    CheckConstraint("type IN ('dynamic', 'reserved')", name="ipranges_type"),
    CheckConstraint("start_ip <= end_ip", name="ipranges_order"),
)


interfaces = Table(
    "interfaces",
    metadata,
    _id(),
    _ref("node_id", "nodes.id", nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("mac", Text, nullable=True),
    Column("type", Text, nullable=False, server_default="physical"),
    _flag("enabled", True),
    _ref("vlan_id", "vlans.id", ondelete="SET NULL", nullable=True, index=True),
    # True for the MACs of machines and devices: one interface per MAC in the whole
    # MAAS. Racks report what their kernel has (VLAN and bridge interfaces repeat
    # their parent's MAC), so theirs do not claim theirs.
    _flag("claims_mac", False),
    Column("mtu", Integer, nullable=True),  # set on the interface; else the VLAN's
    Column("tags", ARRAY(Text), nullable=False, server_default="{}"),
    Column("params", JSONB, nullable=False, server_default="{}"),
    _flag("link_connected", True),
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
    _id(),
    Column("ip", INET, nullable=True, index=True),
    _ref("subnet_id", "subnets.id", nullable=True, index=True),
    Column("alloc_type", Integer, nullable=False),
    _ref("interface_id", "interfaces.id", nullable=True, index=True),
    _ref("user_id", "users.id", nullable=True, index=True),
    _text("hostname"),  # given with a reservation
    Column("mac", Text, nullable=True),  # a reservation for a MAC no node has
    *_timestamps(),
)

# Live RPC connections: which rack is connected to which region worker.
rpc_connections = Table(
    "rpc_connections",
    metadata,
    _ref("rack_id", "nodes.id", primary_key=True),
    _ref("process_id", "region_processes.id", primary_key=True, index=True),
    *_timestamps(),
)

# Where the balancer wants each rack connected; workers push changes to racks.
rpc_targets = Table(
    "rpc_targets",
    metadata,
    _ref("rack_id", "nodes.id", primary_key=True),
    _ref("process_id", "region_processes.id", primary_key=True, index=True),
)

service_status = Table(
    "service_status",
    metadata,
    _ref("node_id", "nodes.id", primary_key=True),
    Column("name", Text, primary_key=True),
    Column("status", Text, nullable=False, server_default="unknown"),
    _text("status_info"),
    *_timestamps(),
)

# DHCP leases reported by racks: one row per address, whichever rack of a pair
# reported it; `changed` orders events so a late duplicate cannot undo a newer one.
dhcp_leases = Table(
    "dhcp_leases",
    metadata,
    Column("ip", INET, primary_key=True),
    Column("mac", Text, nullable=False),
    _text("hostname"),
    _ref("subnet_id", "subnets.id", nullable=True, index=True),
    Column("state", Text, nullable=False),
    Column("expires", DateTime(timezone=True), nullable=True),
    Column("changed", DateTime(timezone=True), nullable=False),
    _ref("reported_by", "nodes.id", ondelete="SET NULL", nullable=True),
    *_timestamps(),
    CheckConstraint("state IN ('active', 'released', 'expired')", name="dhcp_leases_state"),
)


# A BMC is shared by every machine with the same power type and identity
# (address + user). Its owner is the one rack that talks to it.
bmcs = Table(
    "bmcs",
    metadata,
    _id(),
    Column("power_type", Text, nullable=False),
    Column("identity", Text, nullable=False),
    Column("power_parameters", JSONB, nullable=False, server_default="{}"),
    _ref("owner_rack_id", "nodes.id", ondelete="SET NULL", nullable=True, index=True),
    _flag("failing", False),
    _text("last_error"),
    *_timestamps(),
    UniqueConstraint("power_type", "identity"),
)

# Racks that have proven they reach a BMC (a successful call): candidates for
# owning it when no rack shares its layer-2 subnet.
bmc_routes = Table(
    "bmc_routes",
    metadata,
    _ref("bmc_id", "bmcs.id", primary_key=True),
    _ref("rack_id", "nodes.id", primary_key=True),
    *_timestamps(),
)

# Power actions in flight: a rack's death hands them to the BMC's next owner once.
power_actions = Table(
    "power_actions",
    metadata,
    _id(),
    _ref("node_id", "nodes.id", nullable=False, index=True),
    Column("action", Text, nullable=False),
    Column("state", Text, nullable=False, server_default="queued"),
    _ref("rack_id", "nodes.id", ondelete="SET NULL", nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    _text("result"),
    _text("error"),
    *_timestamps(),
    CheckConstraint("action IN ('on', 'off', 'cycle', 'query')", name="power_actions_action"),
    CheckConstraint("state IN ('queued', 'running', 'done', 'failed')", name="power_actions_state"),
)

# Per-machine credentials for the metadata API the ephemeral image calls.
node_tokens = Table(
    "node_tokens",
    metadata,
    _ref("node_id", "nodes.id", primary_key=True),
    Column("token", Text, nullable=False, unique=True),
    *_timestamps(),
)

# What `machine deploy user_data=` gave (MAAS's NodeUserData): served to the installer.
node_user_data = Table(
    "node_user_data",
    metadata,
    _ref("node_id", "nodes.id", primary_key=True),
    Column("data", LargeBinary, nullable=False),
    *_timestamps(),
)

# One run of scripts on a node (MAAS's ScriptSet): result_type 0 commissioning,
# 1 installation, 2 testing. `ended` is set when the node reports it is done.
script_sets = Table(
    "script_sets",
    metadata,
    _id(),
    _ref("node_id", "nodes.id", nullable=False, index=True),
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
    _ref("node_id", "nodes.id", primary_key=True),
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
    _id(),
    _ref("node_id", "nodes.id", nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("exit_status", Integer, nullable=True),
    _text("output"),
    _ref("script_set_id", "script_sets.id", nullable=True, index=True),
    Column("runtime", Integer, nullable=True),  # seconds, as the image measured
    *_timestamps(),
)

# Resource pools: every machine is in one (the default pool has id 0, as in MAAS).
resource_pools = Table(
    "resource_pools",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False, unique=True),
    _text("description"),
    *_timestamps(),
)

# Tags: manual ones (no definition) and automatic ones (an XPath over each node's
# hardware document, docs/tags.md).
tags = Table(
    "tags",
    metadata,
    _id(),
    Column("name", Text, nullable=False, unique=True),
    _text("definition"),
    _text("comment"),
    _text("kernel_opts"),
    *_timestamps(),
)

node_tags = Table(
    "node_tags",
    metadata,
    _ref("node_id", "nodes.id", primary_key=True),
    _ref("tag_id", "tags.id", primary_key=True, index=True),
)

# Disks the node reported at commissioning (MAAS's PhysicalBlockDevice) and their partitions.
block_devices = Table(
    "block_devices",
    metadata,
    _id(),
    _ref("node_id", "nodes.id", nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("id_path", Text, nullable=True),
    _text("model"),
    _text("serial"),
    Column("size", BigInteger, nullable=False),  # bytes
    Column("block_size", Integer, nullable=False, server_default="512"),
    Column("tags", ARRAY(Text), nullable=False, server_default="{}"),
    *_timestamps(),
    UniqueConstraint("node_id", "name"),
)

partitions = Table(
    "partitions",
    metadata,
    _id(),
    _ref("block_device_id", "block_devices.id", nullable=False, index=True),
    Column("number", Integer, nullable=False),
    Column("uuid", Text, nullable=True),
    Column("size", BigInteger, nullable=False),
    _flag("bootable", False),
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
    _ref("node_id", "nodes.id", ondelete="SET NULL", nullable=True, index=True),
    Column("node_system_id", Text, nullable=True),
    _text("node_hostname"),
    Column("type_name", Text, nullable=False),
    Column("type_description", Text, nullable=False),
    Column("level", Integer, nullable=False),  # logging levels; AUDIT is 0
    _text("action"),
    _text("description"),
    _text("username"),
    Column("created", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

notifications = Table(
    "notifications",
    metadata,
    _id(),
    Column("ident", Text, nullable=True, unique=True),
    _ref("user_id", "users.id", nullable=True),
    _flag("users", False),
    _flag("admins", False),
    Column("message", Text, nullable=False),
    Column("context", JSONB, nullable=False, server_default="{}"),
    Column("category", Text, nullable=False, server_default="info"),
    _flag("dismissable", True),
    *_timestamps(),
    CheckConstraint("category IN ('error', 'warning', 'success', 'info')", name="notifications_category"),
)

notification_dismissals = Table(
    "notification_dismissals",
    metadata,
    _ref("notification_id", "notifications.id", primary_key=True),
    _ref("user_id", "users.id", primary_key=True),
)


# -- Boot resources (images): resources have sets (versions), sets have files. ----------
# File contents live in PostgreSQL, content-addressed by sha256, as 1 MiB bytea
# chunks, so every region serves every image straight from the shared database.
boot_resources = Table(
    "boot_resources",
    metadata,
    _id(),
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
    _id(),
    _ref("resource_id", "boot_resources.id", nullable=False),
    Column("version", Text, nullable=False),
    _text("label"),
    *_timestamps(),
    UniqueConstraint("resource_id", "version"),
)

# One stored blob per sha256. `stored` bytes are in chunks 0..; `complete` only
# once all `size` bytes are there and their sha256 was checked. An importer
# holds `writer` until `writer_until` (a lease it renews per chunk).
boot_resource_contents = Table(
    "boot_resource_contents",
    metadata,
    _id(),
    Column("sha256", Text, nullable=False, unique=True),
    Column("size", BigInteger, nullable=False),
    Column("stored", BigInteger, nullable=False, server_default="0"),
    _flag("complete", False),
    Column("writer", Text, nullable=True),
    Column("writer_until", DateTime(timezone=True), nullable=True),
    _text("error"),
    *_timestamps(),
    CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="boot_resource_contents_sha256"),
    CheckConstraint("size >= 0 AND stored >= 0 AND stored <= size", name="boot_resource_contents_sizes"),
    CheckConstraint("NOT complete OR stored = size", name="boot_resource_contents_complete"),
)

# Chunk `seq` holds bytes [seq * 1 MiB, (seq + 1) * 1 MiB) of its content.
boot_resource_chunks = Table(
    "boot_resource_chunks",
    metadata,
    _ref("content_id", "boot_resource_contents.id", primary_key=True),
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
    _id(),
    _ref("set_id", "boot_resource_sets.id", nullable=False),
    Column("filetype", Text, nullable=False),  # boot-kernel, boot-initrd, squashfs, root-tgz, ...
    Column("filename", Text, nullable=False),
    _ref("content_id", "boot_resource_contents.id", ondelete=None, nullable=False, index=True),
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
    _id(),
    Column("source", Text, nullable=False),
    Column("state", Text, nullable=False, server_default="running"),
    _text("message"),
    _text("owner"),
    Column("files_total", Integer, nullable=False, server_default="0"),
    Column("files_done", Integer, nullable=False, server_default="0"),
    Column("bytes_total", BigInteger, nullable=False, server_default="0"),
    Column("bytes_done", BigInteger, nullable=False, server_default="0"),
    _flag("stop_requested", False),
    Column("heartbeat", DateTime(timezone=True), nullable=False, server_default=func.now()),
    *_timestamps(),
    CheckConstraint("state IN ('running', 'done', 'failed', 'stopped')", name="boot_resource_imports_state"),
)


# What racks saw on their networks (ARP): one row per (rack, interface, ip), its MAC the last seen.
discoveries = Table(
    "discoveries",
    metadata,
    _id(),
    _ref("rack_id", "nodes.id", nullable=False),
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
    _id(),
    _ref("user_id", "users.id", nullable=False, index=True),
    Column("key", Text, nullable=False),
    Column("digest", Text, nullable=False),
    _text("protocol"),
    _text("auth_id"),
    *_timestamps(),
    UniqueConstraint("user_id", "digest", "protocol", "auth_id"),
)

sslkeys = Table(
    "sslkeys",
    metadata,
    _id(),
    _ref("user_id", "users.id", nullable=False, index=True),
    Column("key", Text, nullable=False),
    Column("digest", Text, nullable=False),
    *_timestamps(),
    UniqueConstraint("user_id", "digest"),
)

boot_sources = Table(
    "boot_sources",
    metadata,
    _id(),
    Column("url", Text, nullable=False, unique=True),
    _text("keyring_filename"),
    Column("keyring_data", LargeBinary, nullable=False, server_default=""),
    *_timestamps(),
)

boot_source_selections = Table(
    "boot_source_selections",
    metadata,
    _id(),
    _ref("boot_source_id", "boot_sources.id", nullable=False),
    _text("os"),
    _text("release"),
    Column("arches", ARRAY(Text), nullable=False, server_default="{}"),
    Column("subarches", ARRAY(Text), nullable=False, server_default="{}"),
    Column("labels", ARRAY(Text), nullable=False, server_default="{}"),
    *_timestamps(),
    UniqueConstraint("boot_source_id", "os", "release"),
)

package_repositories = Table(
    "package_repositories",
    metadata,
    _id(),
    Column("name", Text, nullable=False, unique=True),
    Column("url", Text, nullable=False),
    Column("distributions", ARRAY(Text), nullable=False, server_default="{}"),
    Column("disabled_pockets", ARRAY(Text), nullable=False, server_default="{}"),
    Column("disabled_components", ARRAY(Text), nullable=False, server_default="{}"),
    _flag("disable_sources", True),
    Column("components", ARRAY(Text), nullable=False, server_default="{}"),
    Column("arches", ARRAY(Text), nullable=False, server_default="{}"),
    _text("key"),
    _flag("is_default", False),  # main_archive, ports_archive
    _flag("enabled", True),
    *_timestamps(),
)

license_keys = Table(
    "license_keys",
    metadata,
    _id(),
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
    _id(),
    Column("name", Text, nullable=False),
    _text("description"),
    _flag("enabled", True),
    _ref("node_id", "nodes.id", nullable=True, index=True),
    _ref("subnet_id", "subnets.id", nullable=True, index=True),
    _ref("iprange_id", "ipranges.id", nullable=True, index=True),
    *_timestamps(),
    CheckConstraint("node_id IS NULL OR subnet_id IS NULL", name="dhcp_snippets_one_target"),
)

# Every value a snippet had, newest last: the newest is its value, all of them its history.
dhcp_snippet_versions = Table(
    "dhcp_snippet_versions",
    metadata,
    _id(),
    _ref("snippet_id", "dhcp_snippets.id", nullable=False, index=True),
    Column("data", Text, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# MAAS's FileStorage: a user's named files, each also readable anonymously by its key.
files = Table(
    "files",
    metadata,
    _id(),
    Column("filename", Text, nullable=False),
    _ref("owner_id", "users.id", nullable=False),
    Column("key", Text, nullable=False, unique=True),
    Column("content", LargeBinary, nullable=False),
    *_timestamps(),
    UniqueConstraint("filename", "owner_id"),
)

static_routes = Table(
    "static_routes",
    metadata,
    _id(),
    _ref("source_id", "subnets.id", nullable=False, index=True),
    _ref("destination_id", "subnets.id", nullable=False, index=True),
    Column("gateway_ip", INET, nullable=False),
    Column("metric", Integer, nullable=False, server_default="0"),
    *_timestamps(),
    UniqueConstraint("source_id", "destination_id", "gateway_ip"),
    CheckConstraint("metric >= 0", name="static_routes_metric"),
)
