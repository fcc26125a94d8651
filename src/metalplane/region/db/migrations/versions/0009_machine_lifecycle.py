"""The machine lifecycle past Ready: deployed system, netboot, previous status, erase mode, user_data

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("nodes", sa.Column("osystem", sa.Text(), server_default="", nullable=False))
    op.add_column("nodes", sa.Column("distro_series", sa.Text(), server_default="", nullable=False))
    op.add_column("nodes", sa.Column("netboot", sa.Boolean(), server_default="true", nullable=False))
    op.add_column("nodes", sa.Column("previous_status", sa.Integer(), nullable=True))
    op.add_column("nodes", sa.Column("erase_mode", sa.Text(), nullable=True))
    op.add_column("nodes", sa.Column("status_timeout", sa.Integer(), nullable=True))
    op.create_table(
        "node_user_data",
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("node_id"),
    )


def downgrade() -> None:
    op.drop_table("node_user_data")
    for column in ("status_timeout", "erase_mode", "previous_status", "netboot", "distro_series", "osystem"):
        op.drop_column("nodes", column)
