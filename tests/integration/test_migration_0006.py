"""Migration 0006 on a database that already has machines: duplicates made before the
uniqueness rules keep working, machines join the default pool, kept commissioning
results become a script set, and the downgrade returns to 0005."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from metalplane.region.db.engine import sync_engine
from metalplane.region.db.migrate import alembic_config


def test_upgrade_with_data_and_downgrade(databases):
    dbname = databases.new_database()
    engine = sync_engine(databases.config(dbname))
    try:
        with engine.connect() as conn:
            command.downgrade(alembic_config(conn), "0005")  # test databases start at head
            conn.commit()
            conn.execute(text("INSERT INTO zones (name) VALUES ('default') ON CONFLICT DO NOTHING"))
            for n, (system_id, mac) in enumerate((("aaa111", "52:54:00:00:00:01"), ("bbb222", "52:54:00:00:00:01"))):
                node_id = conn.execute(
                    text(
                        "INSERT INTO nodes (system_id, hostname, node_type, zone_id) "
                        "VALUES (:s, 'twin', 0, (SELECT id FROM zones WHERE name = 'default')) RETURNING id"
                    ),
                    {"s": system_id},
                ).scalar_one()
                conn.execute(
                    text("INSERT INTO interfaces (node_id, name, mac) VALUES (:n, 'eth0', :m)"),
                    {"n": node_id, "m": mac},
                )
                conn.execute(
                    text(
                        "INSERT INTO script_results (node_id, name, exit_status, output) "
                        "VALUES (:n, '00-cpuinfo', :e, 'x')"
                    ),
                    {"n": node_id, "e": n},
                )
            conn.commit()
            command.upgrade(alembic_config(conn), "0006")
            conn.commit()
            nodes = conn.execute(text("SELECT hostname, pool_id FROM nodes WHERE node_type = 0 ORDER BY id")).all()
            assert [(r.hostname, r.pool_id) for r in nodes] == [("twin", 0), ("twin-bbb222", 0)]
            claims = conn.execute(text("SELECT claims_mac FROM interfaces ORDER BY id")).scalars().all()
            assert claims == [True, False]  # the first keeps the MAC's claim
            assert conn.execute(text("SELECT count(*) FROM script_sets")).scalar_one() == 2
            assert (
                conn.execute(text("SELECT count(*) FROM script_results WHERE script_set_id IS NULL")).scalar_one() == 0
            )
            assert conn.execute(text("SELECT name FROM resource_pools WHERE id = 0")).scalar_one() == "default"
            command.downgrade(alembic_config(conn), "0005")
            conn.commit()
            assert conn.execute(text("SELECT count(*) FROM nodes WHERE node_type = 0")).scalar_one() == 2
            command.upgrade(alembic_config(conn), "head")
            conn.commit()
    finally:
        engine.dispose()
        databases.drop_database(dbname)
