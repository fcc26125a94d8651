"""web UI: sessions, each region's URL, change notifications for live pages

Revision ID: 0010
Revises: 0009

Triggers send `NOTIFY metalplane_changes, '<table>'` (nodes: 'nodes.controller',
'nodes.machine' or 'nodes.device') when something a page shows changes; each
region worker's LISTEN connection fans them out to the open pages. Updates
that change only heartbeat columns (`updated`) notify nothing, so the
once-a-second heartbeats and the racks' 5-second service reports stay silent
unless a value a person would see changed, and so does an upsert that finds
its row unchanged. NOTIFY payloads are collapsed per transaction, so a
statement touching many rows sends one.
"""

import sqlalchemy as sa
from alembic import op

from metalplane.region.db import change_triggers
from metalplane.region.db.change_triggers import CHANNEL, distinct

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# (table, columns whose change on UPDATE is worth telling a page about; None: any column)
WATCHED = [
    ("controller_info", ["num_workers", "api_port", "refusal", "maas_url"]),
    ("region_processes", ["pid", "rpc_host", "rpc_port"]),
    ("rpc_connections", None),
    ("service_status", ["status", "status_info"]),
    ("interfaces", None),
    ("ip_addresses", None),
    ("vlans", None),
    ("subnets", None),
    ("ipranges", None),
    ("fabrics", None),
    ("bmcs", ["owner_rack_id", "failing", "last_error", "power_type"]),
    ("config", None),
]
NODE_COLUMNS = [
    "hostname",
    "node_type",
    "version",
    "zone_id",
    "description",
    "status",
    "error_description",
    "architecture",
    "cpu_count",
    "memory",
    "bmc_id",
    "power_state",
]


def upgrade() -> None:
    op.create_table(
        "ui_sessions",
        sa.Column("key_hash", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.Text(), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key_hash"),
    )
    op.create_index(op.f("ix_ui_sessions_user_id"), "ui_sessions", ["user_id"], unique=False)
    op.create_index(op.f("ix_ui_sessions_expires"), "ui_sessions", ["expires"], unique=False)
    op.add_column("controller_info", sa.Column("maas_url", sa.Text(), nullable=True))

    op.execute(f"""
        CREATE FUNCTION metalplane_notify_table() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
            RETURN NULL;
        END $$""")
    op.execute(f"""
        CREATE FUNCTION metalplane_notify_node() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            kind integer := CASE WHEN TG_OP = 'DELETE' THEN OLD.node_type ELSE NEW.node_type END;
        BEGIN
            PERFORM pg_notify('{CHANNEL}', CASE kind WHEN 0 THEN 'nodes.machine' WHEN 1 THEN 'nodes.device'
                                                     ELSE 'nodes.controller' END);
            RETURN NULL;
        END $$""")
    op.execute(
        "CREATE TRIGGER ui_changes_rows AFTER INSERT OR DELETE ON nodes FOR EACH ROW "
        "EXECUTE FUNCTION metalplane_notify_node()"
    )
    op.execute(
        "CREATE TRIGGER ui_changes_update AFTER UPDATE ON nodes FOR EACH ROW "
        f"WHEN {distinct(NODE_COLUMNS)} EXECUTE FUNCTION metalplane_notify_node()"
    )
    # Row triggers: a statement that changes nothing (an upsert that finds its row
    # unchanged, ON CONFLICT DO NOTHING, an UPDATE matching no row) notifies nothing.
    for table, columns in WATCHED:
        change_triggers.create(op.execute, table, columns)


def downgrade() -> None:
    for table, _ in WATCHED:
        change_triggers.drop(op.execute, table)
    op.execute("DROP TRIGGER IF EXISTS ui_changes_rows ON nodes")
    op.execute("DROP TRIGGER IF EXISTS ui_changes_update ON nodes")
    op.execute("DROP FUNCTION IF EXISTS metalplane_notify_node()")
    op.execute("DROP FUNCTION IF EXISTS metalplane_notify_table()")
    op.drop_column("controller_info", "maas_url")
    op.drop_index(op.f("ix_ui_sessions_expires"), table_name="ui_sessions")
    op.drop_index(op.f("ix_ui_sessions_user_id"), table_name="ui_sessions")
    op.drop_table("ui_sessions")
