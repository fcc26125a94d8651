"""Service status rows are locked only to change them: an unchanged report (a rack's every few
seconds, each region's judgement of every region each second) reads them without a lock, since
a row lock is a write in PostgreSQL (it takes a transaction id and marks the row)."""

from __future__ import annotations

import secrets

from sqlalchemy import delete, select, text

from metalplane.region.bootstrap import run_db
from metalplane.region.db.tables import events, nodes, service_status
from metalplane.region.services import controllers, service_statuses
from metalplane.region.services import racks as rack_services

WROTE = text("SELECT pg_current_xact_id_if_assigned() IS NOT NULL")


def test_an_unchanged_report_takes_no_lock_and_a_change_is_stored_with_its_event(shared_region):
    sid = controllers.new_system_id()
    report = {"tftp": ("running", ""), "http": ("running", "")}
    config = shared_region.config

    async def first(conn):
        node_id = await rack_services.register_rack(conn, sid, f"status-rows-{secrets.token_hex(3)}", "0.1", [])
        return node_id, await service_statuses.store(conn, node_id, report)

    async def unchanged(conn):
        changes = await service_statuses.store(conn, node_id, report)
        lost = await service_statuses.store(conn, node_id, lambda before: dict(before))
        return changes, lost, (await conn.execute(WROTE)).scalar_one()

    async def changed(conn):
        changes = await service_statuses.store(conn, node_id, {**report, "http": ("dead", "port 5248 refused")})
        return changes, (await conn.execute(WROTE)).scalar_one()

    async def read(conn):
        stored = await conn.execute(
            select(service_status.c.name, service_status.c.status).where(service_status.c.node_id == node_id)
        )
        described = await conn.execute(select(events.c.description).where(events.c.node_id == node_id))
        result = dict(stored.all()), [d for (d,) in described]
        await conn.execute(delete(nodes).where(nodes.c.id == node_id))
        return result

    node_id, created = run_db(config, first)
    assert created == [("http", "unknown", "running"), ("tftp", "unknown", "running")]
    assert run_db(config, unchanged) == ([], [], False)  # nothing locked, nothing written
    changes, wrote = run_db(config, changed)
    assert changes == [("http", "running", "dead")] and wrote
    statuses, described = run_db(config, read)
    assert statuses == {"tftp": "running", "http": "dead"}
    assert "http: running -> dead (port 5248 refused)" in described
