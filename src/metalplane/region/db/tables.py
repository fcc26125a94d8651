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


def _required(name: str, type_: Any, **options: Any) -> Column:
    return Column(name, type_, nullable=False, **options)


def _optional(name: str, type_: Any, **options: Any) -> Column:
    return Column(name, type_, nullable=True, **options)


def _ref(name: str, target: str, ondelete: str | None = "CASCADE", **options: Any) -> Column:
    """An integer column naming a row of `target` ("table.id"): by default the row goes with
    the one it names; ondelete=None: that one cannot go while named."""
    return Column(name, Integer, ForeignKey(target, ondelete=ondelete), **options)


def _belongs_to(name: str, target: str) -> Column:
    """The row `target` this row is part of: never NULL, indexed, and the row goes with it."""
    return _ref(name, target, nullable=False, index=True)


def _flag(name: str, default: bool) -> Column:
    return _required(name, Boolean, server_default=str(default).lower())


def _text(name: str) -> Column:
    """Text that is empty, never NULL, when not given."""
    return _required(name, Text, server_default="")


def _unique_text(name: str) -> Column:
    """Text no two rows share (a name, a key)."""
    return _required(name, Text, unique=True)


def _int(name: str, default: int = 0, type_: Any = Integer) -> Column:
    """A number that is `default`, never NULL, when not given."""
    return _required(name, type_, server_default=str(default))


def _list(name: str, of: Any = Text) -> Column:
    """An array that is empty, never NULL, when not given."""
    return _required(name, ARRAY(of), server_default="{}")


def _json(name: str) -> Column:
    """A JSON object that is empty, never NULL, when not given."""
    return _required(name, JSONB, server_default="{}")


def _time(name: str, nullable: bool = True, **options: Any) -> Column:
    return Column(name, DateTime(timezone=True), nullable=nullable, **options)


def _now(name: str, **options: Any) -> Column:
    """A time that is the transaction's, never NULL, when not given."""
    return _time(name, nullable=False, server_default=func.now(), **options)


def _stamped(name: str, *items: Any) -> Table:
    """A table whose rows carry `created` and `updated`, after the columns (before the constraints)."""
    columns = [item for item in items if isinstance(item, Column)]
    constraints = [item for item in items if not isinstance(item, Column)]
    return Table(name, metadata, *columns, _now("created"), _now("updated"), *constraints)


def _objects(name: str, *items: Any) -> Table:
    """A table of MAAS objects: an integer id, the columns, `created` and `updated`."""
    return _stamped(name, _id(), *items)


def _links(name: str, first: tuple[str, str], second: tuple[str, str]) -> Table:
    """A table of (first, second) pairs, each (column, "table.id"): a row goes with either row it
    links, and is found from either side (the key's first column, an index on the second)."""
    return Table(name, metadata, _ref(*first, primary_key=True), _ref(*second, primary_key=True, index=True))


# Cluster-wide key/value settings: the shared secret, the cluster uuid, ...
config = Table(
    "config",
    metadata,
    Column("name", Text, primary_key=True),
    _required("value", JSONB),
)

users = _objects(
    "users",
    _unique_text("username"),
    _text("email"),
    _required("password", Text),
    _flag("is_superuser", False),
    _flag("is_active", True),
)

tokens = _objects(
    "tokens",
    _belongs_to("user_id", "users.id"),
    _text("name"),
    _required("consumer_key", Text),
    _unique_text("token_key"),
    _required("token_secret", Text),
)

# Web UI sessions: any region serves the next request. Only a hash of the
# cookie's key is stored, so reading the table does not hand out sessions.
ui_sessions = _stamped(
    "ui_sessions",
    Column("key_hash", Text, primary_key=True),
    _belongs_to("user_id", "users.id"),
    _required("csrf_token", Text),
    _time("expires", nullable=False, index=True),
)

# Failed web UI logins per "user:NAME" and "addr:ADDRESS" in the current minute (any region).
login_failures = Table(
    "login_failures",
    metadata,
    Column("key", Text, primary_key=True),
    _int("failures"),
    _now("window_start", index=True),
)


zones = _objects("zones", _unique_text("name"), _text("description"))
spaces = _objects("spaces", _unique_text("name"), _text("description"))

# DNS domains (MAAS's): the default one, "maas", has id 0 (created by migration 0012).
domains = _objects(
    "domains",
    _unique_text("name"),
    _flag("authoritative", True),
    _optional("ttl", Integer),
)

# Names in a domain with addresses (A/AAAA) and other records (dnsdata).
dnsresources = _objects(
    "dnsresources",
    _required("name", Text),
    _belongs_to("domain_id", "domains.id"),
    _optional("address_ttl", Integer),
    _list("ips", INET),
    UniqueConstraint("domain_id", "name"),
)

dnsdata = _objects(
    "dnsdata",
    _belongs_to("dnsresource_id", "dnsresources.id"),
    _required("rrtype", Text),
    _required("rrdata", Text),
    _optional("ttl", Integer),
)

# Machines, devices and controllers: one table, as in MAAS, told apart by node_type.
nodes = _objects(
    "nodes",
    _unique_text("system_id"),
    _required("hostname", Text),
    _required("node_type", Integer),
    _text("version"),
    _ref("zone_id", "zones.id", ondelete=None, nullable=True),
    _text("description"),
    # Machines (node_type 0): MAAS's status and facts.
    _int("status"),
    _time("status_expires"),
    _text("error_description"),
    _optional("architecture", Text),
    _optional("boot_method", Text),
    _int("cpu_count"),
    _int("memory"),  # MiB
    _json("hardware"),
    Column(
        "bmc_id",
        Integer,
        ForeignKey("bmcs.id", ondelete="SET NULL", use_alter=True, name="nodes_bmc_id_fkey"),
        nullable=True,
        index=True,
    ),
    _json("instance_power_parameters"),
    _required("power_state", Text, server_default="unknown"),
    _time("power_state_updated"),
    # MAAS's node fields beyond the hardware facts (migration 0006).
    _ref("pool_id", "resource_pools.id", ondelete=None, nullable=True, index=True),
    _ref("owner_id", "users.id", ondelete="SET NULL", nullable=True, index=True),
    _flag("locked", False),
    _json("owner_data"),  # = workload_annotations
    _text("agent_name"),
    _ref("parent_id", "nodes.id", nullable=True, index=True),
    _optional("hardware_uuid", Text),
    _optional("swap_size", BigInteger),  # bytes
    _optional("min_hwe_kernel", Text),
    _optional("hwe_kernel", Text),
    _int("cpu_speed"),  # MHz
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
    _optional("previous_status", Integer),
    _optional("erase_mode", Text),
    _optional("status_timeout", Integer),  # seconds the current timed status was given
    # NULL: the default domain (whichever it is now; migration 0012).
    Column("domain_id", Integer, ForeignKey("domains.id", name="nodes_domain_id_fkey"), nullable=True, index=True),
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
controller_info = _stamped(
    "controller_info",
    _ref("node_id", "nodes.id", primary_key=True),
    _int("num_workers"),
    _int("connections_needed"),
    _optional("api_port", Integer),
    # Why the region last refused this controller's RPC connection (e.g. version).
    _optional("refusal", Text),
    # A region's maas_url: what the UI's "Add rack controller" tells a new rack to use.
    _optional("maas_url", Text),
    # A region's address as racks reach it, and the ports of its named and chronyd (0: none).
    _optional("address", INET),
    _int("dns_port"),
    _int("ntp_port"),
)

# One row per live region worker process; the heartbeat is `updated`.
region_processes = _objects(
    "region_processes",
    _belongs_to("region_id", "nodes.id"),
    _required("pid", Integer),
    _required("worker_index", Integer),
    _text("rpc_host"),
    _required("rpc_port", Integer),
    _int("pool_size"),
    UniqueConstraint("region_id", "worker_index"),
)

fabrics = _objects(
    "fabrics",
    _unique_text("name"),
    _optional("class_type", Text),
    _text("description"),
)

vlans = _objects(
    "vlans",
    _ref("fabric_id", "fabrics.id", nullable=False),
    _required("vid", Integer),
    _optional("name", Text),
    _text("description"),
    _int("mtu", 1500),
    _flag("dhcp_on", False),
    _optional("external_dhcp", Text),
    _ref("primary_rack_id", "nodes.id", ondelete="SET NULL", nullable=True),
    _ref("secondary_rack_id", "nodes.id", ondelete="SET NULL", nullable=True),
    _ref("relay_vlan_id", "vlans.id", ondelete="SET NULL", nullable=True),
    _ref("space_id", "spaces.id", ondelete="SET NULL", nullable=True),
    UniqueConstraint("fabric_id", "vid"),
    CheckConstraint("vid >= 0 AND vid <= 4094", name="vlans_vid_range"),
    CheckConstraint("mtu >= 552 AND mtu <= 65535", name="vlans_mtu_range"),
)

subnets = _objects(
    "subnets",
    _required("name", Text),
    _text("description"),
    _required("cidr", CIDR, unique=True),
    _ref("vlan_id", "vlans.id", ondelete=None, nullable=False, index=True),
    _optional("gateway_ip", INET),
    _list("dns_servers"),
    _int("rdns_mode", 2),
    _flag("allow_dns", True),
    _flag("allow_proxy", True),
    _flag("active_discovery", False),
    _flag("managed", True),
    _list("disabled_boot_architectures"),
)

ipranges = _objects(
    "ipranges",
    _belongs_to("subnet_id", "subnets.id"),
    _required("type", Text),
    _required("start_ip", INET),
    _required("end_ip", INET),
    _text("comment"),
    _ref("user_id", "users.id", ondelete="SET NULL", nullable=True),
    CheckConstraint("type IN ('dynamic', 'reserved')", name="ipranges_type"),
    CheckConstraint("start_ip <= end_ip", name="ipranges_order"),
)


interfaces = _objects(
    "interfaces",
    _belongs_to("node_id", "nodes.id"),
    _required("name", Text),
    _optional("mac", Text),
    _required("type", Text, server_default="physical"),
    _flag("enabled", True),
    _ref("vlan_id", "vlans.id", ondelete="SET NULL", nullable=True, index=True),
    # True for the MACs of machines and devices: one interface per MAC in the whole
    # MAAS. Racks report what their kernel has (VLAN and bridge interfaces repeat
    # their parent's MAC), so theirs do not claim theirs.
    _flag("claims_mac", False),
    _optional("mtu", Integer),  # set on the interface; else the VLAN's
    _list("tags"),
    _json("params"),
    _flag("link_connected", True),
    _int("interface_speed"),  # Mbit/s
    _int("link_speed"),
    _optional("vendor", Text),
    _optional("product", Text),
    _optional("firmware_version", Text),
    UniqueConstraint("node_id", "name"),
)
Index("interfaces_mac_unique", interfaces.c.mac, unique=True, postgresql_where=interfaces.c.claims_mac)
# MAC search, exact or by prefix (LIKE 'aa:bb%').
Index("ix_interfaces_mac", interfaces.c.mac, postgresql_ops={"mac": "text_pattern_ops"})

# Addresses MAAS knows, MAAS's StaticIPAddress: controller interface addresses and
# the links of machines' and devices' interfaces (alloc_type AUTO/DHCP/link-up
# links have no address until deployment), and addresses users reserved.
ip_addresses = _objects(
    "ip_addresses",
    _optional("ip", INET, index=True),
    _ref("subnet_id", "subnets.id", nullable=True, index=True),
    _required("alloc_type", Integer),
    _ref("interface_id", "interfaces.id", nullable=True, index=True),
    _ref("user_id", "users.id", nullable=True, index=True),
    _text("hostname"),  # given with a reservation
    _optional("mac", Text),  # a reservation for a MAC no node has
)

# Live RPC connections: which rack is connected to which region worker.
rpc_connections = _stamped(
    "rpc_connections",
    _ref("rack_id", "nodes.id", primary_key=True),
    _ref("process_id", "region_processes.id", primary_key=True, index=True),
)

# Where the balancer wants each rack connected; workers push changes to racks.
rpc_targets = _links("rpc_targets", ("rack_id", "nodes.id"), ("process_id", "region_processes.id"))

service_status = _stamped(
    "service_status",
    _ref("node_id", "nodes.id", primary_key=True),
    Column("name", Text, primary_key=True),
    _required("status", Text, server_default="unknown"),
    _text("status_info"),
)

# DHCP leases reported by racks: one row per address, whichever rack of a pair
# reported it; `changed` orders events so a late duplicate cannot undo a newer one.
dhcp_leases = _stamped(
    "dhcp_leases",
    Column("ip", INET, primary_key=True),
    _required("mac", Text),
    _text("hostname"),
    _ref("subnet_id", "subnets.id", nullable=True, index=True),
    _required("state", Text),
    _time("expires"),
    _time("changed", nullable=False),
    _ref("reported_by", "nodes.id", ondelete="SET NULL", nullable=True),
    CheckConstraint("state IN ('active', 'released', 'expired')", name="dhcp_leases_state"),
)


# A BMC is shared by every machine with the same power type and identity
# (address + user). Its owner is the one rack that talks to it.
bmcs = _objects(
    "bmcs",
    _required("power_type", Text),
    _required("identity", Text),
    _json("power_parameters"),
    _ref("owner_rack_id", "nodes.id", ondelete="SET NULL", nullable=True, index=True),
    _flag("failing", False),
    _text("last_error"),
    UniqueConstraint("power_type", "identity"),
)

# Racks that have proven they reach a BMC (a successful call): candidates for
# owning it when no rack shares its layer-2 subnet.
bmc_routes = _stamped(
    "bmc_routes",
    _ref("bmc_id", "bmcs.id", primary_key=True),
    _ref("rack_id", "nodes.id", primary_key=True),
)

# Power actions in flight: a rack's death hands them to the BMC's next owner once.
power_actions = _objects(
    "power_actions",
    _belongs_to("node_id", "nodes.id"),
    _required("action", Text),
    _required("state", Text, server_default="queued"),
    _ref("rack_id", "nodes.id", ondelete="SET NULL", nullable=True),
    _int("attempts"),
    _text("result"),
    _text("error"),
    CheckConstraint("action IN ('on', 'off', 'cycle', 'query')", name="power_actions_action"),
    CheckConstraint("state IN ('queued', 'running', 'done', 'failed')", name="power_actions_state"),
)

# Per-machine credentials for the metadata API the ephemeral image calls.
node_tokens = _stamped(
    "node_tokens",
    _ref("node_id", "nodes.id", primary_key=True),
    _unique_text("token"),
)

# What `machine deploy user_data=` gave (MAAS's NodeUserData): served to the installer.
node_user_data = _stamped(
    "node_user_data",
    _ref("node_id", "nodes.id", primary_key=True),
    _required("data", LargeBinary),
)

# One run of scripts on a node (MAAS's ScriptSet): result_type 0 commissioning,
# 1 installation, 2 testing. `ended` is set when the node reports it is done.
script_sets = _objects(
    "script_sets",
    _belongs_to("node_id", "nodes.id"),
    _int("result_type"),
    _time("ended"),
    _time("last_ping"),
)

# The one-use credential a commissioning machine's boot config carries instead of
# its token (services/enrolment.py): bound to the address that fetched the config,
# exchanged once, from that address, for the token.
node_enrolments = _stamped(
    "node_enrolments",
    _ref("node_id", "nodes.id", primary_key=True),
    _unique_text("secret"),
    _optional("address", INET),  # null: bound by the first exchange (a rack that sent none)
    _time("expires", nullable=False),
    _time("used"),
)

# Output of commissioning scripts, as MAAS keeps it.
script_results = _objects(
    "script_results",
    _belongs_to("node_id", "nodes.id"),
    _required("name", Text),
    _optional("exit_status", Integer),
    _text("output"),
    _ref("script_set_id", "script_sets.id", nullable=True, index=True),
    _optional("runtime", Integer),  # seconds, as the image measured
)

# Resource pools: every machine is in one (the default pool has id 0, as in MAAS).
resource_pools = _stamped(
    "resource_pools",
    Column("id", Integer, primary_key=True, autoincrement=True),
    _unique_text("name"),
    _text("description"),
)

# Tags: manual ones (no definition) and automatic ones (an XPath over each node's
# hardware document, docs/tags.md).
tags = _objects(
    "tags",
    _unique_text("name"),
    _text("definition"),
    _text("comment"),
    _text("kernel_opts"),
)

node_tags = _links("node_tags", ("node_id", "nodes.id"), ("tag_id", "tags.id"))

# Disks the node reported at commissioning (MAAS's PhysicalBlockDevice) and their partitions.
block_devices = _objects(
    "block_devices",
    _belongs_to("node_id", "nodes.id"),
    _required("name", Text),
    _optional("id_path", Text),
    _text("model"),
    _text("serial"),
    _required("size", BigInteger),  # bytes
    _int("block_size", 512),
    _list("tags"),
    UniqueConstraint("node_id", "name"),
)

partitions = _objects(
    "partitions",
    _belongs_to("block_device_id", "block_devices.id"),
    _required("number", Integer),
    _optional("uuid", Text),
    _required("size", BigInteger),
    _flag("bootable", False),
    _list("tags"),
    UniqueConstraint("block_device_id", "number"),
)

# MAAS's node event log: status changes, power actions, commissioning results.
# The node's system_id and hostname are copied, so the log outlives the node.
events = Table(
    "events",
    metadata,
    Column("id", BigInteger, primary_key=True),
    _ref("node_id", "nodes.id", ondelete="SET NULL", nullable=True, index=True),
    _optional("node_system_id", Text),
    _text("node_hostname"),
    _required("type_name", Text),
    _required("type_description", Text),
    _required("level", Integer),  # logging levels; AUDIT is 0
    _text("action"),
    _text("description"),
    _text("username"),
    _now("created"),
)

notifications = _objects(
    "notifications",
    _optional("ident", Text, unique=True),
    _ref("user_id", "users.id", nullable=True),
    _flag("users", False),
    _flag("admins", False),
    _required("message", Text),
    _json("context"),
    _required("category", Text, server_default="info"),
    _flag("dismissable", True),
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
boot_resources = _objects(
    "boot_resources",
    _required("rtype", Text),
    _required("name", Text),  # e.g. "ephemeral/bookworm", "ubuntu/jammy"
    _required("architecture", Text),  # "amd64/generic"
    _json("extra"),  # title, subarches, ...
    UniqueConstraint("name", "architecture"),
    CheckConstraint("rtype IN ('synced', 'uploaded', 'generated')", name="boot_resources_rtype"),
)

boot_resource_sets = _objects(
    "boot_resource_sets",
    _ref("resource_id", "boot_resources.id", nullable=False),
    _required("version", Text),
    _text("label"),
    UniqueConstraint("resource_id", "version"),
)

# One stored blob per sha256. `stored` bytes are in chunks 0..; `complete` only
# once all `size` bytes are there and their sha256 was checked. An importer
# holds `writer` until `writer_until` (a lease it renews per chunk).
boot_resource_contents = _objects(
    "boot_resource_contents",
    _unique_text("sha256"),
    _required("size", BigInteger),
    _int("stored", type_=BigInteger),
    _flag("complete", False),
    _optional("writer", Text),
    _time("writer_until"),
    _text("error"),
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
    _required("data", LargeBinary),
)
# As migration 0005 does: the chunks are compressed files already, so no pglz.
event.listen(
    boot_resource_chunks, "after_create", DDL("ALTER TABLE boot_resource_chunks ALTER COLUMN data SET STORAGE EXTERNAL")
)

boot_resource_files = _objects(
    "boot_resource_files",
    _ref("set_id", "boot_resource_sets.id", nullable=False),
    _required("filetype", Text),  # boot-kernel, boot-initrd, squashfs, root-tgz, ...
    _required("filename", Text),
    _ref("content_id", "boot_resource_contents.id", ondelete=None, nullable=False, index=True),
    _json("extra"),
    UniqueConstraint("set_id", "filetype"),
    UniqueConstraint("set_id", "filename"),
)

# Imports (from simplestreams): run by the worker that was asked, visible to all.
# A job whose heartbeat stops (its worker died) is no longer importing.
boot_resource_imports = _objects(
    "boot_resource_imports",
    _required("source", Text),
    _required("state", Text, server_default="running"),
    _text("message"),
    _text("owner"),
    _int("files_total"),
    _int("files_done"),
    _int("bytes_total", type_=BigInteger),
    _int("bytes_done", type_=BigInteger),
    _flag("stop_requested", False),
    _now("heartbeat"),
    CheckConstraint("state IN ('running', 'done', 'failed', 'stopped')", name="boot_resource_imports_state"),
)


# What racks saw on their networks (ARP): one row per (rack, interface, ip), its MAC the last seen.
discoveries = Table(
    "discoveries",
    metadata,
    _id(),
    _ref("rack_id", "nodes.id", nullable=False),
    _required("interface", Text),
    _optional("vid", Integer),
    _required("ip", INET, index=True),
    _required("mac", Text, index=True),
    _time("first_seen", nullable=False),
    _time("last_seen", nullable=False),
    UniqueConstraint("rack_id", "interface", "ip"),
)


# -- Accounts, images' sources, repositories and the small MAAS objects (migration 0013) --

# SSH public keys; `digest` (sha256 of the normalised key) makes the key unique per
# user and source without indexing long text. protocol/auth_id are "" for keys
# added by hand, e.g. "gh"/"octocat" for imported ones.
sshkeys = _objects(
    "sshkeys",
    _belongs_to("user_id", "users.id"),
    _required("key", Text),
    _required("digest", Text),
    _text("protocol"),
    _text("auth_id"),
    UniqueConstraint("user_id", "digest", "protocol", "auth_id"),
)

sslkeys = _objects(
    "sslkeys",
    _belongs_to("user_id", "users.id"),
    _required("key", Text),
    _required("digest", Text),
    UniqueConstraint("user_id", "digest"),
)

boot_sources = _objects(
    "boot_sources",
    _unique_text("url"),
    _text("keyring_filename"),
    _required("keyring_data", LargeBinary, server_default=""),
)

boot_source_selections = _objects(
    "boot_source_selections",
    _ref("boot_source_id", "boot_sources.id", nullable=False),
    _text("os"),
    _text("release"),
    _list("arches"),
    _list("subarches"),
    _list("labels"),
    UniqueConstraint("boot_source_id", "os", "release"),
)

package_repositories = _objects(
    "package_repositories",
    _unique_text("name"),
    _required("url", Text),
    _list("distributions"),
    _list("disabled_pockets"),
    _list("disabled_components"),
    _flag("disable_sources", True),
    _list("components"),
    _list("arches"),
    _text("key"),
    _flag("is_default", False),  # main_archive, ports_archive
    _flag("enabled", True),
)

license_keys = _objects(
    "license_keys",
    _required("osystem", Text),
    _required("distro_series", Text),
    _required("license_key", Text),
    UniqueConstraint("osystem", "distro_series"),
)

# DHCP snippets are stored and versioned as MAAS keeps them; racks do not use them yet.
dhcp_snippets = _objects(
    "dhcp_snippets",
    _required("name", Text),
    _text("description"),
    _flag("enabled", True),
    _ref("node_id", "nodes.id", nullable=True, index=True),
    _ref("subnet_id", "subnets.id", nullable=True, index=True),
    _ref("iprange_id", "ipranges.id", nullable=True, index=True),
    CheckConstraint("node_id IS NULL OR subnet_id IS NULL", name="dhcp_snippets_one_target"),
)

# Every value a snippet had, newest last: the newest is its value, all of them its history.
dhcp_snippet_versions = Table(
    "dhcp_snippet_versions",
    metadata,
    _id(),
    _belongs_to("snippet_id", "dhcp_snippets.id"),
    _required("data", Text),
    _now("created"),
)

# MAAS's FileStorage: a user's named files, each also readable anonymously by its key.
files = _objects(
    "files",
    _required("filename", Text),
    _ref("owner_id", "users.id", nullable=False),
    _unique_text("key"),
    _required("content", LargeBinary),
    UniqueConstraint("filename", "owner_id"),
)

static_routes = _objects(
    "static_routes",
    _belongs_to("source_id", "subnets.id"),
    _belongs_to("destination_id", "subnets.id"),
    _required("gateway_ip", INET),
    _int("metric"),
    UniqueConstraint("source_id", "destination_id", "gateway_ip"),
    CheckConstraint("metric >= 0", name="static_routes_metric"),
)
