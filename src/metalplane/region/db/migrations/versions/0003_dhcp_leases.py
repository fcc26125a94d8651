"""dhcp leases

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dhcp_leases",
        sa.Column("ip", postgresql.INET(), nullable=False),
        sa.Column("mac", sa.Text(), nullable=False),
        sa.Column("hostname", sa.Text(), server_default="", nullable=False),
        sa.Column("subnet_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changed", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reported_by", sa.Integer(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("state IN ('active', 'released', 'expired')", name="dhcp_leases_state"),
        sa.ForeignKeyConstraint(["reported_by"], ["nodes.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["subnet_id"], ["subnets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("ip"),
    )
    op.create_index(op.f("ix_dhcp_leases_subnet_id"), "dhcp_leases", ["subnet_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_dhcp_leases_subnet_id"), table_name="dhcp_leases")
    op.drop_table("dhcp_leases")
