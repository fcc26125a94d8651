"""metadata enrolment credentials; machine owners

Revision ID: 0012
Revises: 0005

`node_enrolments`: the short-lived, one-use credential a commissioning
machine's boot config carries instead of its metadata token, bound to the
address that fetched the config. `nodes.owner_id`: the user a machine belongs
to (MAAS's owner), which the permission rules for power actions read.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0012'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('node_enrolments',
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('secret', sa.Text(), nullable=False),
    sa.Column('address', postgresql.INET(), nullable=True),
    sa.Column('expires', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('node_id'),
    sa.UniqueConstraint('secret')
    )
    op.add_column('nodes', sa.Column('owner_id', sa.Integer(), nullable=True))
    op.create_index(op.f('ix_nodes_owner_id'), 'nodes', ['owner_id'], unique=False)
    op.create_foreign_key('nodes_owner_id_fkey', 'nodes', 'users', ['owner_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    op.drop_constraint('nodes_owner_id_fkey', 'nodes', type_='foreignkey')
    op.drop_index(op.f('ix_nodes_owner_id'), table_name='nodes')
    op.drop_column('nodes', 'owner_id')
    op.drop_table('node_enrolments')
