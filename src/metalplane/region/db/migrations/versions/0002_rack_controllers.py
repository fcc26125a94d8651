"""rack controllers: interfaces, addresses, rpc connections, services

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_status",
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="unknown", nullable=False),
        sa.Column("status_info", sa.Text(), server_default="", nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("node_id", "name"),
    )
    op.create_table(
        "interfaces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("mac", sa.Text(), nullable=True),
        sa.Column("type", sa.Text(), server_default="physical", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("vlan_id", sa.Integer(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["vlan_id"], ["vlans.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("node_id", "name"),
    )
    op.create_index(op.f("ix_interfaces_node_id"), "interfaces", ["node_id"], unique=False)
    op.create_index(op.f("ix_interfaces_vlan_id"), "interfaces", ["vlan_id"], unique=False)
    op.create_table(
        "rpc_connections",
        sa.Column("rack_id", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["process_id"], ["region_processes.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["rack_id"], ["nodes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("rack_id", "process_id"),
    )
    op.create_index(op.f("ix_rpc_connections_process_id"), "rpc_connections", ["process_id"], unique=False)
    op.create_table(
        "rpc_targets",
        sa.Column("rack_id", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["process_id"], ["region_processes.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["rack_id"], ["nodes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("rack_id", "process_id"),
    )
    op.create_index(op.f("ix_rpc_targets_process_id"), "rpc_targets", ["process_id"], unique=False)
    op.create_table(
        "ip_addresses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ip", postgresql.INET(), nullable=False),
        sa.Column("subnet_id", sa.Integer(), nullable=True),
        sa.Column("alloc_type", sa.Integer(), nullable=False),
        sa.Column("interface_id", sa.Integer(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["interface_id"], ["interfaces.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["subnet_id"], ["subnets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_ip_addresses_interface_id"), "ip_addresses", ["interface_id"], unique=False)
    op.create_index(op.f("ix_ip_addresses_ip"), "ip_addresses", ["ip"], unique=False)
    op.create_index(op.f("ix_ip_addresses_subnet_id"), "ip_addresses", ["subnet_id"], unique=False)
    op.add_column("controller_info", sa.Column("refusal", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("controller_info", "refusal")
    op.drop_index(op.f("ix_ip_addresses_subnet_id"), table_name="ip_addresses")
    op.drop_index(op.f("ix_ip_addresses_ip"), table_name="ip_addresses")
    op.drop_index(op.f("ix_ip_addresses_interface_id"), table_name="ip_addresses")
    op.drop_table("ip_addresses")
    op.drop_index(op.f("ix_rpc_targets_process_id"), table_name="rpc_targets")
    op.drop_table("rpc_targets")
    op.drop_index(op.f("ix_rpc_connections_process_id"), table_name="rpc_connections")
    op.drop_table("rpc_connections")
    op.drop_index(op.f("ix_interfaces_vlan_id"), table_name="interfaces")
    op.drop_index(op.f("ix_interfaces_node_id"), table_name="interfaces")
    op.drop_table("interfaces")
    op.drop_table("service_status")
