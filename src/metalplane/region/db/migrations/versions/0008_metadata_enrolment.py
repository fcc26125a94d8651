"""metadata enrolment credentials

Revision ID: 0008
Revises: 0007

`node_enrolments`: the short-lived, one-use credential a commissioning
machine's boot config carries instead of its metadata token, bound to the
address that fetched the config. (Machine owners, which the permission rules
read, came with the nodes API in 0006.)
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "node_enrolments",
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("address", postgresql.INET(), nullable=True),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("node_id"),
        sa.UniqueConstraint("secret"),
    )


def downgrade() -> None:
    op.drop_table("node_enrolments")
