"""MAAS's node API: resource pools, tags, events, notifications, block devices,
script sets, interface links without addresses, and the node fields machines show

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "resource_pools",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    # MAAS's default pool has id 0; every machine is in it until moved.
    op.execute("INSERT INTO resource_pools (id, name, description) VALUES (0, 'default', 'Default pool')")

    op.add_column("nodes", sa.Column("pool_id", sa.Integer(), nullable=True))
    op.add_column("nodes", sa.Column("owner_id", sa.Integer(), nullable=True))
    op.add_column("nodes", sa.Column("locked", sa.Boolean(), server_default="false", nullable=False))
    op.add_column(
        "nodes", sa.Column("owner_data", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False)
    )
    op.add_column("nodes", sa.Column("agent_name", sa.Text(), server_default="", nullable=False))
    op.add_column("nodes", sa.Column("parent_id", sa.Integer(), nullable=True))
    op.add_column("nodes", sa.Column("hardware_uuid", sa.Text(), nullable=True))
    op.add_column("nodes", sa.Column("swap_size", sa.BigInteger(), nullable=True))
    op.add_column("nodes", sa.Column("min_hwe_kernel", sa.Text(), nullable=True))
    op.add_column("nodes", sa.Column("hwe_kernel", sa.Text(), nullable=True))
    op.add_column("nodes", sa.Column("cpu_speed", sa.Integer(), server_default="0", nullable=False))
    op.add_column("nodes", sa.Column("gateway_link_ipv4_id", sa.Integer(), nullable=True))
    op.add_column("nodes", sa.Column("gateway_link_ipv6_id", sa.Integer(), nullable=True))
    op.create_foreign_key("nodes_pool_id_fkey", "nodes", "resource_pools", ["pool_id"], ["id"])
    op.create_foreign_key("nodes_owner_id_fkey", "nodes", "users", ["owner_id"], ["id"], ondelete="SET NULL")
    op.create_foreign_key("nodes_parent_id_fkey", "nodes", "nodes", ["parent_id"], ["id"], ondelete="CASCADE")
    op.create_index(op.f("ix_nodes_pool_id"), "nodes", ["pool_id"], unique=False)
    op.create_index(op.f("ix_nodes_owner_id"), "nodes", ["owner_id"], unique=False)
    op.create_index(op.f("ix_nodes_parent_id"), "nodes", ["parent_id"], unique=False)
    op.execute("UPDATE nodes SET pool_id = 0 WHERE node_type = 0")
    # Duplicates made before the rule existed keep their names with a suffix.
    op.execute(
        "UPDATE nodes SET hostname = hostname || '-' || system_id WHERE node_type IN (0, 1) AND id NOT IN "
        "(SELECT min(id) FROM nodes WHERE node_type IN (0, 1) GROUP BY hostname)"
    )
    op.create_index(
        "nodes_hostname_unique", "nodes", ["hostname"], unique=True, postgresql_where=sa.text("node_type IN (0, 1)")
    )

    op.add_column("interfaces", sa.Column("claims_mac", sa.Boolean(), server_default="false", nullable=False))
    op.add_column("interfaces", sa.Column("mtu", sa.Integer(), nullable=True))
    op.add_column("interfaces", sa.Column("tags", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False))
    op.add_column(
        "interfaces", sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False)
    )
    op.add_column("interfaces", sa.Column("link_connected", sa.Boolean(), server_default="true", nullable=False))
    op.add_column("interfaces", sa.Column("interface_speed", sa.Integer(), server_default="0", nullable=False))
    op.add_column("interfaces", sa.Column("link_speed", sa.Integer(), server_default="0", nullable=False))
    op.add_column("interfaces", sa.Column("vendor", sa.Text(), nullable=True))
    op.add_column("interfaces", sa.Column("product", sa.Text(), nullable=True))
    op.add_column("interfaces", sa.Column("firmware_version", sa.Text(), nullable=True))
    op.execute(
        "UPDATE interfaces SET claims_mac = true FROM nodes WHERE nodes.id = interfaces.node_id "
        "AND nodes.node_type IN (0, 1) AND interfaces.mac IS NOT NULL AND interfaces.id IN "
        "(SELECT min(i.id) FROM interfaces i JOIN nodes n ON n.id = i.node_id WHERE n.node_type IN (0, 1) "
        "GROUP BY i.mac)"
    )
    op.create_index("interfaces_mac_unique", "interfaces", ["mac"], unique=True, postgresql_where=sa.text("claims_mac"))

    op.alter_column("ip_addresses", "ip", existing_type=postgresql.INET(), nullable=True)
    op.add_column("ip_addresses", sa.Column("user_id", sa.Integer(), nullable=True))
    op.add_column("ip_addresses", sa.Column("hostname", sa.Text(), server_default="", nullable=False))
    op.add_column("ip_addresses", sa.Column("mac", sa.Text(), nullable=True))
    op.create_foreign_key("ip_addresses_user_id_fkey", "ip_addresses", "users", ["user_id"], ["id"], ondelete="CASCADE")
    op.create_index(op.f("ix_ip_addresses_user_id"), "ip_addresses", ["user_id"], unique=False)
    op.create_foreign_key(
        "nodes_gateway_link_ipv4_id_fkey",
        "nodes",
        "ip_addresses",
        ["gateway_link_ipv4_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_foreign_key(
        "nodes_gateway_link_ipv6_id_fkey",
        "nodes",
        "ip_addresses",
        ["gateway_link_ipv6_id"],
        ["id"],
        ondelete="SET NULL",
    )

    op.create_table(
        "script_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("result_type", sa.Integer(), server_default="0", nullable=False),
        sa.Column("ended", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_ping", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_script_sets_node_id"), "script_sets", ["node_id"], unique=False)
    op.add_column("script_results", sa.Column("script_set_id", sa.Integer(), nullable=True))
    op.add_column("script_results", sa.Column("runtime", sa.Integer(), nullable=True))
    op.create_foreign_key(
        "script_results_script_set_id_fkey",
        "script_results",
        "script_sets",
        ["script_set_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_index(op.f("ix_script_results_script_set_id"), "script_results", ["script_set_id"], unique=False)
    # Results kept from before: one set per node that has any.
    op.execute(
        "INSERT INTO script_sets (node_id, result_type, ended, created, updated) "
        "SELECT node_id, 0, max(created), min(created), max(created) FROM script_results GROUP BY node_id"
    )
    op.execute(
        "UPDATE script_results SET script_set_id = s.id FROM script_sets s WHERE s.node_id = script_results.node_id"
    )

    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("definition", sa.Text(), server_default="", nullable=False),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.Column("kernel_opts", sa.Text(), server_default="", nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "node_tags",
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tag_id"], ["tags.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("node_id", "tag_id"),
    )
    op.create_index(op.f("ix_node_tags_tag_id"), "node_tags", ["tag_id"], unique=False)

    op.create_table(
        "block_devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("id_path", sa.Text(), nullable=True),
        sa.Column("model", sa.Text(), server_default="", nullable=False),
        sa.Column("serial", sa.Text(), server_default="", nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("block_size", sa.Integer(), server_default="512", nullable=False),
        sa.Column("tags", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("node_id", "name"),
    )
    op.create_index(op.f("ix_block_devices_node_id"), "block_devices", ["node_id"], unique=False)
    op.create_table(
        "partitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("block_device_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.Text(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("bootable", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("tags", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(["block_device_id"], ["block_devices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("block_device_id", "number"),
    )
    op.create_index(op.f("ix_partitions_block_device_id"), "partitions", ["block_device_id"], unique=False)

    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=True),
        sa.Column("node_system_id", sa.Text(), nullable=True),
        sa.Column("node_hostname", sa.Text(), server_default="", nullable=False),
        sa.Column("type_name", sa.Text(), nullable=False),
        sa.Column("type_description", sa.Text(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("action", sa.Text(), server_default="", nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("username", sa.Text(), server_default="", nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_events_node_id"), "events", ["node_id"], unique=False)

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ident", sa.Text(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("users", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("admins", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("context", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("category", sa.Text(), server_default="info", nullable=False),
        sa.Column("dismissable", sa.Boolean(), server_default="true", nullable=False),
        *_timestamps(),
        sa.CheckConstraint("category IN ('error', 'warning', 'success', 'info')", name="notifications_category"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ident"),
    )
    op.create_table(
        "notification_dismissals",
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["notification_id"], ["notifications.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("notification_id", "user_id"),
    )


def downgrade() -> None:
    op.drop_table("notification_dismissals")
    op.drop_table("notifications")
    op.drop_index(op.f("ix_events_node_id"), table_name="events")
    op.drop_table("events")
    op.drop_index(op.f("ix_partitions_block_device_id"), table_name="partitions")
    op.drop_table("partitions")
    op.drop_index(op.f("ix_block_devices_node_id"), table_name="block_devices")
    op.drop_table("block_devices")
    op.drop_index(op.f("ix_node_tags_tag_id"), table_name="node_tags")
    op.drop_table("node_tags")
    op.drop_table("tags")
    op.drop_index(op.f("ix_script_results_script_set_id"), table_name="script_results")
    op.drop_constraint("script_results_script_set_id_fkey", "script_results", type_="foreignkey")
    op.drop_column("script_results", "runtime")
    op.drop_column("script_results", "script_set_id")
    op.drop_index(op.f("ix_script_sets_node_id"), table_name="script_sets")
    op.drop_table("script_sets")
    op.drop_constraint("nodes_gateway_link_ipv6_id_fkey", "nodes", type_="foreignkey")
    op.drop_constraint("nodes_gateway_link_ipv4_id_fkey", "nodes", type_="foreignkey")
    op.drop_index(op.f("ix_ip_addresses_user_id"), table_name="ip_addresses")
    op.drop_constraint("ip_addresses_user_id_fkey", "ip_addresses", type_="foreignkey")
    op.drop_column("ip_addresses", "mac")
    op.drop_column("ip_addresses", "hostname")
    op.drop_column("ip_addresses", "user_id")
    op.execute("DELETE FROM ip_addresses WHERE ip IS NULL")
    op.alter_column("ip_addresses", "ip", existing_type=postgresql.INET(), nullable=False)
    op.drop_index("interfaces_mac_unique", table_name="interfaces")
    for column in (
        "firmware_version",
        "product",
        "vendor",
        "link_speed",
        "interface_speed",
        "link_connected",
        "params",
        "tags",
        "mtu",
        "claims_mac",
    ):
        op.drop_column("interfaces", column)
    op.drop_index("nodes_hostname_unique", table_name="nodes")
    op.drop_index(op.f("ix_nodes_parent_id"), table_name="nodes")
    op.drop_index(op.f("ix_nodes_owner_id"), table_name="nodes")
    op.drop_index(op.f("ix_nodes_pool_id"), table_name="nodes")
    op.drop_constraint("nodes_parent_id_fkey", "nodes", type_="foreignkey")
    op.drop_constraint("nodes_owner_id_fkey", "nodes", type_="foreignkey")
    op.drop_constraint("nodes_pool_id_fkey", "nodes", type_="foreignkey")
    for column in (
        "gateway_link_ipv6_id",
        "gateway_link_ipv4_id",
        "cpu_speed",
        "hwe_kernel",
        "min_hwe_kernel",
        "swap_size",
        "hardware_uuid",
        "parent_id",
        "agent_name",
        "owner_data",
        "locked",
        "owner_id",
        "pool_id",
    ):
        op.drop_column("nodes", column)
    op.drop_table("resource_pools")
