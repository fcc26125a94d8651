"""boot resources: resources, sets, files, contents stored as 1 MiB chunks, imports

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "boot_resource_contents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("stored", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("complete", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("writer", sa.Text(), nullable=True),
        sa.Column("writer_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), server_default="", nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="boot_resource_contents_sha256"),
        sa.CheckConstraint("NOT complete OR stored = size", name="boot_resource_contents_complete"),
        sa.CheckConstraint("size >= 0 AND stored >= 0 AND stored <= size", name="boot_resource_contents_sizes"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sha256"),
    )
    op.create_table(
        "boot_resource_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), server_default="running", nullable=False),
        sa.Column("message", sa.Text(), server_default="", nullable=False),
        sa.Column("owner", sa.Text(), server_default="", nullable=False),
        sa.Column("files_total", sa.Integer(), server_default="0", nullable=False),
        sa.Column("files_done", sa.Integer(), server_default="0", nullable=False),
        sa.Column("bytes_total", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("bytes_done", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("stop_requested", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("heartbeat", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("state IN ('running', 'done', 'failed', 'stopped')", name="boot_resource_imports_state"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "boot_resources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rtype", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("architecture", sa.Text(), nullable=False),
        sa.Column("extra", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("rtype IN ('synced', 'uploaded', 'generated')", name="boot_resources_rtype"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", "architecture"),
    )
    op.create_table(
        "boot_resource_chunks",
        sa.Column("content_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["content_id"], ["boot_resource_contents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("content_id", "seq"),
    )
    # Kernels, initrds and squashfs images are already compressed: store the chunks
    # out of line without pglz trying (and failing) to compress each one again.
    op.execute("ALTER TABLE boot_resource_chunks ALTER COLUMN data SET STORAGE EXTERNAL")
    op.create_table(
        "boot_resource_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), server_default="", nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["resource_id"], ["boot_resources.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("resource_id", "version"),
    )
    op.create_table(
        "boot_resource_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("set_id", sa.Integer(), nullable=False),
        sa.Column("filetype", sa.Text(), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("content_id", sa.Integer(), nullable=False),
        sa.Column("extra", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["content_id"],
            ["boot_resource_contents.id"],
        ),
        sa.ForeignKeyConstraint(["set_id"], ["boot_resource_sets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("set_id", "filename"),
        sa.UniqueConstraint("set_id", "filetype"),
    )
    op.create_index(op.f("ix_boot_resource_files_content_id"), "boot_resource_files", ["content_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_boot_resource_files_content_id"), table_name="boot_resource_files")
    op.drop_table("boot_resource_files")
    op.drop_table("boot_resource_sets")
    op.drop_table("boot_resource_chunks")
    op.drop_table("boot_resources")
    op.drop_table("boot_resource_imports")
    op.drop_table("boot_resource_contents")
