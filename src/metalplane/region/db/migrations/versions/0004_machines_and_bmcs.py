"""machines, bmcs, power actions, commissioning

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bmcs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("power_type", sa.Text(), nullable=False),
        sa.Column("identity", sa.Text(), nullable=False),
        sa.Column("power_parameters", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("owner_rack_id", sa.Integer(), nullable=True),
        sa.Column("failing", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("last_error", sa.Text(), server_default="", nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["owner_rack_id"], ["nodes.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("power_type", "identity"),
    )
    op.create_index(op.f("ix_bmcs_owner_rack_id"), "bmcs", ["owner_rack_id"], unique=False)
    op.create_table(
        "bmc_routes",
        sa.Column("bmc_id", sa.Integer(), nullable=False),
        sa.Column("rack_id", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["bmc_id"], ["bmcs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["rack_id"], ["nodes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("bmc_id", "rack_id"),
    )
    op.create_table(
        "node_tokens",
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("node_id"),
        sa.UniqueConstraint("token"),
    )
    op.create_table(
        "power_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), server_default="queued", nullable=False),
        sa.Column("rack_id", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("result", sa.Text(), server_default="", nullable=False),
        sa.Column("error", sa.Text(), server_default="", nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("action IN ('on', 'off', 'cycle', 'query')", name="power_actions_action"),
        sa.CheckConstraint("state IN ('queued', 'running', 'done', 'failed')", name="power_actions_state"),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["rack_id"], ["nodes.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_power_actions_node_id"), "power_actions", ["node_id"], unique=False)
    op.create_table(
        "script_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("exit_status", sa.Integer(), nullable=True),
        sa.Column("output", sa.Text(), server_default="", nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_script_results_node_id"), "script_results", ["node_id"], unique=False)
    op.add_column("nodes", sa.Column("status", sa.Integer(), server_default="0", nullable=False))
    op.add_column("nodes", sa.Column("status_expires", sa.DateTime(timezone=True), nullable=True))
    op.add_column("nodes", sa.Column("error_description", sa.Text(), server_default="", nullable=False))
    op.add_column("nodes", sa.Column("architecture", sa.Text(), nullable=True))
    op.add_column("nodes", sa.Column("boot_method", sa.Text(), nullable=True))
    op.add_column("nodes", sa.Column("cpu_count", sa.Integer(), server_default="0", nullable=False))
    op.add_column("nodes", sa.Column("memory", sa.Integer(), server_default="0", nullable=False))
    op.add_column(
        "nodes", sa.Column("hardware", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False)
    )
    op.add_column("nodes", sa.Column("bmc_id", sa.Integer(), nullable=True))
    op.add_column(
        "nodes",
        sa.Column(
            "instance_power_parameters", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
    )
    op.add_column("nodes", sa.Column("power_state", sa.Text(), server_default="unknown", nullable=False))
    op.add_column("nodes", sa.Column("power_state_updated", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_nodes_bmc_id"), "nodes", ["bmc_id"], unique=False)
    op.create_foreign_key("nodes_bmc_id_fkey", "nodes", "bmcs", ["bmc_id"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    op.drop_constraint("nodes_bmc_id_fkey", "nodes", type_="foreignkey")
    op.drop_index(op.f("ix_nodes_bmc_id"), table_name="nodes")
    op.drop_column("nodes", "power_state_updated")
    op.drop_column("nodes", "power_state")
    op.drop_column("nodes", "instance_power_parameters")
    op.drop_column("nodes", "bmc_id")
    op.drop_column("nodes", "hardware")
    op.drop_column("nodes", "memory")
    op.drop_column("nodes", "cpu_count")
    op.drop_column("nodes", "boot_method")
    op.drop_column("nodes", "architecture")
    op.drop_column("nodes", "error_description")
    op.drop_column("nodes", "status_expires")
    op.drop_column("nodes", "status")
    op.drop_index(op.f("ix_script_results_node_id"), table_name="script_results")
    op.drop_table("script_results")
    op.drop_index(op.f("ix_power_actions_node_id"), table_name="power_actions")
    op.drop_table("power_actions")
    op.drop_table("node_tokens")
    op.drop_table("bmc_routes")
    op.drop_index(op.f("ix_bmcs_owner_rack_id"), table_name="bmcs")
    op.drop_table("bmcs")
