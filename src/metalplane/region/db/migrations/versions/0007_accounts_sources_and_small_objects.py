"""ssh/ssl keys, boot sources and selections, package repositories, license keys,
DHCP snippets (versioned), files, static routes

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    ]


def _texts(name: str) -> sa.Column:
    return sa.Column(name, postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False)


def upgrade() -> None:
    op.create_table(
        "sshkeys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("protocol", sa.Text(), server_default="", nullable=False),
        sa.Column("auth_id", sa.Text(), server_default="", nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "digest", "protocol", "auth_id"),
    )
    op.create_index(op.f("ix_sshkeys_user_id"), "sshkeys", ["user_id"], unique=False)
    op.create_table(
        "sslkeys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "digest"),
    )
    op.create_index(op.f("ix_sslkeys_user_id"), "sslkeys", ["user_id"], unique=False)
    op.create_table(
        "boot_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("keyring_filename", sa.Text(), server_default="", nullable=False),
        sa.Column("keyring_data", sa.LargeBinary(), server_default="", nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("url"),
    )
    op.create_table(
        "boot_source_selections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("boot_source_id", sa.Integer(), nullable=False),
        sa.Column("os", sa.Text(), server_default="", nullable=False),
        sa.Column("release", sa.Text(), server_default="", nullable=False),
        _texts("arches"),
        _texts("subarches"),
        _texts("labels"),
        *_timestamps(),
        sa.ForeignKeyConstraint(["boot_source_id"], ["boot_sources.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("boot_source_id", "os", "release"),
    )
    op.create_table(
        "package_repositories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        _texts("distributions"),
        _texts("disabled_pockets"),
        _texts("disabled_components"),
        sa.Column("disable_sources", sa.Boolean(), server_default="true", nullable=False),
        _texts("components"),
        _texts("arches"),
        sa.Column("key", sa.Text(), server_default="", nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "license_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("osystem", sa.Text(), nullable=False),
        sa.Column("distro_series", sa.Text(), nullable=False),
        sa.Column("license_key", sa.Text(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("osystem", "distro_series"),
    )
    op.create_table(
        "dhcp_snippets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=True),
        sa.Column("subnet_id", sa.Integer(), nullable=True),
        sa.Column("iprange_id", sa.Integer(), nullable=True),
        *_timestamps(),
        sa.CheckConstraint("node_id IS NULL OR subnet_id IS NULL", name="dhcp_snippets_one_target"),
        sa.ForeignKeyConstraint(["iprange_id"], ["ipranges.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["subnet_id"], ["subnets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_dhcp_snippets_iprange_id"), "dhcp_snippets", ["iprange_id"], unique=False)
    op.create_index(op.f("ix_dhcp_snippets_node_id"), "dhcp_snippets", ["node_id"], unique=False)
    op.create_index(op.f("ix_dhcp_snippets_subnet_id"), "dhcp_snippets", ["subnet_id"], unique=False)
    op.create_table(
        "dhcp_snippet_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("snippet_id", sa.Integer(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["snippet_id"], ["dhcp_snippets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_dhcp_snippet_versions_snippet_id"), "dhcp_snippet_versions", ["snippet_id"], unique=False)
    op.create_table(
        "files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("filename", "owner_id"),
        sa.UniqueConstraint("key"),
    )
    op.create_table(
        "static_routes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("destination_id", sa.Integer(), nullable=False),
        sa.Column("gateway_ip", postgresql.INET(), nullable=False),
        sa.Column("metric", sa.Integer(), server_default="0", nullable=False),
        *_timestamps(),
        sa.CheckConstraint("metric >= 0", name="static_routes_metric"),
        sa.ForeignKeyConstraint(["destination_id"], ["subnets.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["source_id"], ["subnets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source_id", "destination_id", "gateway_ip"),
    )
    op.create_index(op.f("ix_static_routes_destination_id"), "static_routes", ["destination_id"], unique=False)
    op.create_index(op.f("ix_static_routes_source_id"), "static_routes", ["source_id"], unique=False)


def downgrade() -> None:
    for table in (
        "static_routes",
        "files",
        "dhcp_snippet_versions",
        "dhcp_snippets",
        "license_keys",
        "package_repositories",
        "boot_source_selections",
        "boot_sources",
        "sslkeys",
        "sshkeys",
    ):
        op.drop_table(table)
