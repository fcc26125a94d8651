"""The transaction hook services queue their consequences on (region/db/transaction.py),
against a real PostgreSQL: a consequence runs once, only if the transaction commits,
and a request the API replays after a failover does not fire anything twice."""

from __future__ import annotations

import json

import httpx
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from metalplane.region.api.app import build_app
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.db.engine import async_engine, conninfo
from metalplane.region.db.transaction import after_commit, on_commit, settle, transaction
from metalplane.region.services import consequences

CHANNEL = "metalplane_rack_events"  # what services.consequences announces on


class Boom(Exception):
    pass


@pytest.fixture
async def db(databases):
    dbname = databases.new_database()
    config = databases.config(dbname)
    engine = async_engine(config, pool_size=2)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE effects (what text)"))
    yield engine, config
    await engine.dispose()
    databases.drop_database(dbname)


@pytest.fixture
async def listener(db):
    """A LISTEN on the rack events channel, as every region worker holds one."""
    _, config = db
    conn = await psycopg.AsyncConnection.connect(conninfo(config, "test-listen"), autocommit=True)
    await conn.execute(f"LISTEN {CHANNEL}")

    async def heard() -> list[dict]:
        return [json.loads(n.payload) async for n in conn.notifies(timeout=0.5)]

    yield heard
    await conn.close()


async def rows(engine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(text("SELECT what FROM effects ORDER BY what"))).scalars())


def record(what: str):
    async def action(tx) -> None:
        await tx.conn.execute(text("INSERT INTO effects VALUES (:w)"), {"w": what})

    return action


async def test_a_consequence_queued_twice_runs_once_inside_the_transaction_before_commit(db, listener):
    engine, config = db
    async with transaction(engine, config) as conn:
        for _ in range(3):
            on_commit(conn, "recorded", record("recorded"))
            consequences.dhcp_changed(conn)
        on_commit(conn, "other", record("other"))
        assert await rows(engine) == []  # nothing ran yet, and nothing is visible outside
    assert await rows(engine) == ["other", "recorded"]
    assert await listener() == [{"kind": "dhcp", "system_id": ""}]


async def test_nothing_fires_when_the_transaction_rolls_back(db, listener):
    engine, config = db
    effects = []

    async def effect() -> None:
        effects.append("ran")

    with pytest.raises(Boom):
        async with transaction(engine, config) as conn:
            on_commit(conn, "recorded", record("recorded"))
            consequences.images_changed(conn)
            after_commit(conn, "effect", effect)
            raise Boom()
    assert await rows(engine) == [] and effects == [] and await listener() == []


async def test_a_failing_consequence_rolls_back_the_change_it_follows(db):
    engine, config = db

    async def failing(tx) -> None:
        raise Boom()

    with pytest.raises(Boom):
        async with transaction(engine, config) as conn:
            await conn.execute(text("INSERT INTO effects VALUES ('the change')"))
            on_commit(conn, "failing", failing)
    assert await rows(engine) == []


async def test_after_commit_runs_once_when_the_change_is_visible_and_its_failure_is_not_raised(db, caplog):
    engine, config = db
    seen = []

    async def effect() -> None:
        seen.append(await rows(engine))  # on another connection: committed already

    async def broken() -> None:
        raise Boom("rack unreachable")

    async with transaction(engine, config) as conn:
        await conn.execute(text("INSERT INTO effects VALUES ('the change')"))
        after_commit(conn, "effect", effect)
        after_commit(conn, "effect", effect)
        after_commit(conn, "broken", broken)
        assert seen == []
    assert seen == [["the change"]]
    assert "after commit: 'broken' failed" in caplog.text


async def test_settle_runs_the_queue_now_and_a_later_request_runs_again_at_commit(db):
    engine, config = db
    async with transaction(engine, config) as conn:
        on_commit(conn, "recorded", record("first"))
        await settle(conn)
        assert list((await conn.execute(text("SELECT what FROM effects"))).scalars()) == ["first"]
        on_commit(conn, "recorded", record("second"))
    assert await rows(engine) == ["first", "second"]


async def test_a_consequence_needs_the_front_door(db):
    engine, _ = db
    async with engine.begin() as conn:
        with pytest.raises(RuntimeError, match="transaction opened by"):
            consequences.dhcp_changed(conn)


async def test_a_consequence_that_needs_the_region_settings_says_so_without_them(db):
    engine, _ = db
    with pytest.raises(RuntimeError, match="region's configuration"):
        async with transaction(engine) as conn:
            consequences.connections_to_rebalance(conn)


async def test_a_request_replayed_after_a_failover_fires_its_consequences_once(db, listener, monkeypatch):
    """The API runs a write again when the database went away before COMMIT (app.py):
    what the failed attempt queued was rolled back with it."""
    monkeypatch.setenv("METALPLANE_DB_RETRY_SECONDS", "3")
    engine, _ = db
    handler = Handler("ProbeHandler", "probe/", "Probe.", anon=True)
    attempts, effects = [], []

    async def effect() -> None:
        effects.append(len(attempts))

    @handler.create
    async def create(ctx: Ctx) -> dict:
        attempts.append(1)
        async with ctx.tx() as conn:
            on_commit(conn, "recorded", record(f"attempt {len(attempts)}"))
            consequences.dhcp_changed(conn)
            after_commit(conn, "effect", effect)
            if len(attempts) == 1:  # the connection dies before COMMIT: PostgreSQL rolls back
                raise OperationalError("COMMIT", {}, psycopg.OperationalError("server closed the connection"))
        return {"attempts": len(attempts)}

    app = build_app(engine, [handler])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/MAAS/api/2.0/probe/")
    assert response.status_code == 200 and response.json() == {"attempts": 2}
    assert await rows(engine) == ["attempt 2"]
    assert effects == [2]
    assert await listener() == [{"kind": "dhcp", "system_id": ""}]
