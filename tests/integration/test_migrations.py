"""The migrations create exactly the schema that tables.py declares."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from metalplane.region.db.engine import sync_engine
from metalplane.region.db.migrate import current_revision, head_revision, upgrade
from metalplane.region.db.tables import metadata


def test_migrated_schema_matches_the_tables(databases):
    dbname = databases.new_database()
    engine = sync_engine(databases.config(dbname))
    try:
        upgrade(engine)  # already at head: a no-op that must not fail
        with engine.connect() as conn:
            assert current_revision(conn) == head_revision()
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
        assert diff == []
    finally:
        engine.dispose()
        databases.drop_database(dbname)
