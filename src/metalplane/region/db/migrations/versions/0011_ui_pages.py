"""web UI pages: machine list indexes, login attempt limits, live updates for machines and images

Revision ID: 0011
Revises: 0010

Indexes for the Machines page with many machines: a page by hostname, the status
and zone filters, and MAC search (exact, or a prefix: text_pattern_ops). The
`login_failures` table counts failed logins per user and per address in a
one-minute window, on every region alike. Change notifications (as 0010) for
what the Machines and Images pages show: commissioning output, power actions,
events, boot resources and their files' progress, and imports.
"""

import sqlalchemy as sa
from alembic import op

from metalplane.region.db import change_triggers

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# (table, columns whose change on UPDATE is worth telling a page about; None: any column)
WATCHED = [
    ("script_results", None),
    ("power_actions", ["state", "result", "error", "rack_id"]),
    ("boot_resources", None),
    ("boot_resource_sets", None),
    ("boot_resource_files", None),
    ("boot_resource_contents", ["stored", "complete", "error"]),
    (
        "boot_resource_imports",
        ["state", "message", "files_total", "files_done", "bytes_total", "bytes_done", "stop_requested"],
    ),
    ("zones", None),
    ("events", None),
]


def upgrade() -> None:
    op.create_index("ix_nodes_type_hostname", "nodes", ["node_type", "hostname", "id"])
    op.create_index("ix_nodes_type_status", "nodes", ["node_type", "status"])
    op.create_index("ix_nodes_zone_id", "nodes", ["zone_id"])
    op.execute("CREATE INDEX ix_interfaces_mac ON interfaces (mac text_pattern_ops)")

    op.create_table(
        "login_failures",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("window_start", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_login_failures_window_start", "login_failures", ["window_start"])

    for table, columns in WATCHED:
        change_triggers.create(op.execute, table, columns)


def downgrade() -> None:
    for table, _ in WATCHED:
        change_triggers.drop(op.execute, table)
    op.drop_index("ix_login_failures_window_start", table_name="login_failures")
    op.drop_table("login_failures")
    op.execute("DROP INDEX IF EXISTS ix_interfaces_mac")
    op.drop_index("ix_nodes_zone_id", table_name="nodes")
    op.drop_index("ix_nodes_type_status", table_name="nodes")
    op.drop_index("ix_nodes_type_hostname", table_name="nodes")
