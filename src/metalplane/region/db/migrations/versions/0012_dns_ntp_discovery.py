"""dns domains and resources, node domains, region service addresses, discoveries

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "domains",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("authoritative", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("ttl", sa.Integer(), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    # MAAS's default domain has id 0 (the sequence starts at 1, so no clash).
    op.execute("INSERT INTO domains (id, name) VALUES (0, 'maas')")
    op.create_table(
        "dnsresources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("address_ttl", sa.Integer(), nullable=True),
        sa.Column("ips", postgresql.ARRAY(postgresql.INET()), server_default="{}", nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(["domain_id"], ["domains.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("domain_id", "name"),
    )
    op.create_index(op.f("ix_dnsresources_domain_id"), "dnsresources", ["domain_id"], unique=False)
    op.create_table(
        "dnsdata",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dnsresource_id", sa.Integer(), nullable=False),
        sa.Column("rrtype", sa.Text(), nullable=False),
        sa.Column("rrdata", sa.Text(), nullable=False),
        sa.Column("ttl", sa.Integer(), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(["dnsresource_id"], ["dnsresources.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_dnsdata_dnsresource_id"), "dnsdata", ["dnsresource_id"], unique=False)
    op.add_column("nodes", sa.Column("domain_id", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_nodes_domain_id"), "nodes", ["domain_id"], unique=False)
    op.create_foreign_key("nodes_domain_id_fkey", "nodes", "domains", ["domain_id"], ["id"])
    op.add_column("controller_info", sa.Column("address", postgresql.INET(), nullable=True))
    op.add_column("controller_info", sa.Column("dns_port", sa.Integer(), server_default="0", nullable=False))
    op.add_column("controller_info", sa.Column("ntp_port", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "discoveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rack_id", sa.Integer(), nullable=False),
        sa.Column("interface", sa.Text(), nullable=False),
        sa.Column("vid", sa.Integer(), nullable=True),
        sa.Column("ip", postgresql.INET(), nullable=False),
        sa.Column("mac", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["rack_id"], ["nodes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("rack_id", "interface", "ip"),
    )
    op.create_index(op.f("ix_discoveries_ip"), "discoveries", ["ip"], unique=False)
    op.create_index(op.f("ix_discoveries_mac"), "discoveries", ["mac"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_discoveries_mac"), table_name="discoveries")
    op.drop_index(op.f("ix_discoveries_ip"), table_name="discoveries")
    op.drop_table("discoveries")
    op.drop_column("controller_info", "ntp_port")
    op.drop_column("controller_info", "dns_port")
    op.drop_column("controller_info", "address")
    op.drop_constraint("nodes_domain_id_fkey", "nodes", type_="foreignkey")
    op.drop_index(op.f("ix_nodes_domain_id"), table_name="nodes")
    op.drop_column("nodes", "domain_id")
    op.drop_index(op.f("ix_dnsdata_dnsresource_id"), table_name="dnsdata")
    op.drop_table("dnsdata")
    op.drop_index(op.f("ix_dnsresources_domain_id"), table_name="dnsresources")
    op.drop_table("dnsresources")
    op.drop_table("domains")
