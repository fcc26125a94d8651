"""Foundation schema: users, tokens, controllers, fabrics, VLANs, subnets, ranges.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "config",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("value", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "fabrics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("class_type", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "spaces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), server_default="", nullable=False),
        sa.Column("password", sa.Text(), nullable=False),
        sa.Column("is_superuser", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "zones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "nodes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system_id", sa.Text(), nullable=False),
        sa.Column("hostname", sa.Text(), nullable=False),
        sa.Column("node_type", sa.Integer(), nullable=False),
        sa.Column("version", sa.Text(), server_default="", nullable=False),
        sa.Column("zone_id", sa.Integer(), nullable=True),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["zone_id"],
            ["zones.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("system_id"),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), server_default="", nullable=False),
        sa.Column("consumer_key", sa.Text(), nullable=False),
        sa.Column("token_key", sa.Text(), nullable=False),
        sa.Column("token_secret", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_key"),
    )
    op.create_index(op.f("ix_tokens_user_id"), "tokens", ["user_id"], unique=False)
    op.create_table(
        "controller_info",
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("num_workers", sa.Integer(), server_default="0", nullable=False),
        sa.Column("connections_needed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("api_port", sa.Integer(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("node_id"),
    )
    op.create_table(
        "region_processes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("worker_index", sa.Integer(), nullable=False),
        sa.Column("rpc_host", sa.Text(), server_default="", nullable=False),
        sa.Column("rpc_port", sa.Integer(), nullable=False),
        sa.Column("pool_size", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["region_id"], ["nodes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("region_id", "worker_index"),
    )
    op.create_index(op.f("ix_region_processes_region_id"), "region_processes", ["region_id"], unique=False)
    op.create_table(
        "vlans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fabric_id", sa.Integer(), nullable=False),
        sa.Column("vid", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("mtu", sa.Integer(), server_default="1500", nullable=False),
        sa.Column("dhcp_on", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("external_dhcp", sa.Text(), nullable=True),
        sa.Column("primary_rack_id", sa.Integer(), nullable=True),
        sa.Column("secondary_rack_id", sa.Integer(), nullable=True),
        sa.Column("relay_vlan_id", sa.Integer(), nullable=True),
        sa.Column("space_id", sa.Integer(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("mtu >= 552 AND mtu <= 65535", name="vlans_mtu_range"),
        sa.CheckConstraint("vid >= 0 AND vid <= 4094", name="vlans_vid_range"),
        sa.ForeignKeyConstraint(["fabric_id"], ["fabrics.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["primary_rack_id"], ["nodes.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["relay_vlan_id"], ["vlans.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["secondary_rack_id"], ["nodes.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["space_id"], ["spaces.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("fabric_id", "vid"),
    )
    op.create_table(
        "subnets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("cidr", postgresql.CIDR(), nullable=False),
        sa.Column("vlan_id", sa.Integer(), nullable=False),
        sa.Column("gateway_ip", postgresql.INET(), nullable=True),
        sa.Column("dns_servers", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("rdns_mode", sa.Integer(), server_default="2", nullable=False),
        sa.Column("allow_dns", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("allow_proxy", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("active_discovery", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("managed", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("disabled_boot_architectures", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["vlan_id"],
            ["vlans.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("cidr"),
    )
    op.create_index(op.f("ix_subnets_vlan_id"), "subnets", ["vlan_id"], unique=False)
    op.create_table(
        "ipranges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subnet_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("start_ip", postgresql.INET(), nullable=False),
        sa.Column("end_ip", postgresql.INET(), nullable=False),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("type IN ('dynamic', 'reserved')", name="ipranges_type"),
        sa.CheckConstraint("start_ip <= end_ip", name="ipranges_order"),
        sa.ForeignKeyConstraint(["subnet_id"], ["subnets.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_ipranges_subnet_id"), "ipranges", ["subnet_id"], unique=False)
    # VLAN ids start at 5001 as in MAAS, so an id is never mistaken for a VID.
    op.execute("ALTER SEQUENCE vlans_id_seq RESTART WITH 5001")


def downgrade() -> None:
    op.drop_index(op.f("ix_ipranges_subnet_id"), table_name="ipranges")
    op.drop_table("ipranges")
    op.drop_index(op.f("ix_subnets_vlan_id"), table_name="subnets")
    op.drop_table("subnets")
    op.drop_table("vlans")
    op.drop_index(op.f("ix_region_processes_region_id"), table_name="region_processes")
    op.drop_table("region_processes")
    op.drop_table("controller_info")
    op.drop_index(op.f("ix_tokens_user_id"), table_name="tokens")
    op.drop_table("tokens")
    op.drop_table("nodes")
    op.drop_table("zones")
    op.drop_table("users")
    op.drop_table("spaces")
    op.drop_table("fabrics")
    op.drop_table("config")
