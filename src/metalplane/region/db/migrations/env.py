"""Alembic environment: always run with a connection handed in by metalplane."""

from alembic import context

from metalplane.region.db.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
