"""The API while the database is away: retried when safe, else 503 + Retry-After,
never half-applied; and real failovers of a real PostgreSQL primary on 127.0.0.1."""

from __future__ import annotations

import concurrent.futures
import time

import httpx
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from metalplane.client.http import MaasHttp
from metalplane.region.api.app import build_app, database_unavailable
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.db.engine import async_engine
from tests.conftest import create_admin
from tests.support.pg_cluster import PgCluster, PgNode
from tests.support.processes import RegionProcess, free_port_block


def lost_connection() -> OperationalError:
    return OperationalError("SELECT 1", {}, psycopg.OperationalError("server closed the connection unexpectedly"))


# -- the retry rules, in process against a real database --------------------------------------


@pytest.fixture
async def probe(databases, monkeypatch):
    """An app with one anonymous handler whose behaviour each test scripts, and a table it writes."""
    monkeypatch.setenv("METALPLANE_DB_RETRY_SECONDS", "3")
    dbname = databases.new_database()
    engine = async_engine(databases.config(dbname), pool_size=2)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE retry_probe (n int)"))
    handler = Handler("ProbeHandler", "probe/", "Probe.", anon=True)
    state = {"calls": 0, "script": None}

    async def run(ctx: Ctx):
        state["calls"] += 1
        return await state["script"](ctx, state["calls"])

    handler.action("GET")(run)
    handler.action("POST")(run)
    app = build_app(engine, [handler])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client, state, engine
    await engine.dispose()
    databases.drop_database(dbname)


async def rows(engine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT count(*) FROM retry_probe"))).scalar_one()


async def test_a_read_is_retried_until_the_database_answers(probe):
    client, state, _ = probe

    async def script(ctx, call):
        if call < 3:
            raise lost_connection()
        return {"ok": call}

    state["script"] = script
    response = await client.get("/MAAS/api/2.0/probe/")
    assert response.status_code == 200 and response.json() == {"ok": 3}


async def test_a_write_that_failed_before_commit_is_retried_and_applied_once(probe):
    client, state, engine = probe

    async def script(ctx, call):
        async with ctx.tx() as conn:
            await conn.execute(text("INSERT INTO retry_probe VALUES (:n)"), {"n": call})
            if call == 1:
                raise lost_connection()  # inside the transaction: rolled back
        return {"ok": call}

    state["script"] = script
    response = await client.post("/MAAS/api/2.0/probe/")
    assert response.status_code == 200 and state["calls"] == 2
    assert await rows(engine) == 1


async def test_a_write_that_failed_after_commit_was_sent_is_not_replayed(probe):
    client, state, engine = probe

    async def script(ctx, call):
        async with ctx.tx() as conn:
            await conn.execute(text("INSERT INTO retry_probe VALUES (1)"))
        raise lost_connection()  # after COMMIT: the outcome is unknown to the region

    state["script"] = script
    response = await client.post("/MAAS/api/2.0/probe/")
    assert response.status_code == 503 and state["calls"] == 1
    assert response.headers["retry-after"].isdigit()
    assert "may or may not have been applied" in response.text
    assert await rows(engine) == 1


async def test_a_write_that_acted_outside_the_database_is_not_replayed(probe):
    client, state, _ = probe

    async def script(ctx, call):
        ctx.txlog.outside_effect()  # e.g. a power action sent to a rack
        raise lost_connection()

    state["script"] = script
    response = await client.post("/MAAS/api/2.0/probe/")
    assert response.status_code == 503 and state["calls"] == 1
    assert response.headers["retry-after"].isdigit()


async def test_a_read_that_failed_after_commit_is_still_retried(probe):
    client, state, _ = probe

    async def script(ctx, call):
        async with ctx.tx() as conn:
            await conn.execute(text("SELECT 1"))
        if call == 1:
            raise lost_connection()
        return {"ok": call}

    state["script"] = script
    assert (await client.get("/MAAS/api/2.0/probe/")).status_code == 200 and state["calls"] == 2


async def test_the_wait_is_bounded_then_503_with_retry_after(probe, monkeypatch):
    client, state, engine = probe
    monkeypatch.setenv("METALPLANE_DB_RETRY_SECONDS", "0.6")

    async def script(ctx, call):
        async with ctx.tx() as conn:
            await conn.execute(text("INSERT INTO retry_probe VALUES (1)"))
            raise lost_connection()

    state["script"] = script
    t0 = time.monotonic()
    response = await client.post("/MAAS/api/2.0/probe/")
    elapsed = time.monotonic() - t0
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert "database is unavailable" in response.text
    assert 0.3 < elapsed < 1.5 and state["calls"] >= 3
    assert await rows(engine) == 0  # never half-applied


async def test_errors_that_are_not_about_availability_are_not_retried(probe):
    client, state, _ = probe

    async def script(ctx, call):
        raise IntegrityError("INSERT", {}, psycopg.errors.UniqueViolation("duplicate key"))

    state["script"] = script
    assert (await client.post("/MAAS/api/2.0/probe/")).status_code == 500 and state["calls"] == 1
    assert database_unavailable(lost_connection())
    assert not database_unavailable(IntegrityError("x", {}, psycopg.errors.UniqueViolation("dup")))
    assert database_unavailable(OperationalError("x", {}, psycopg.errors.SerializationFailure("retry")))


# -- a real region on a real primary + synchronous standby ------------------------------------


class FailoverRig:
    def __init__(self, root, retry_seconds: float | None = None):
        base = free_port_block(6)
        self.pg = PgCluster(None, [PgNode.local("db1", base), PgNode.local("db2", base + 1)])
        self.pg.start()
        port = free_port_block(4, start=base + 100)
        config = self.pg.region_config(
            port=port,
            rpc_port=port + 1,
            num_workers=1,
            listen_address="127.0.0.1",
            data_dir=str(root / "data"),
            maas_url=f"http://127.0.0.1:{port}/MAAS",
            hostname="failover-region",
        )
        self.region = RegionProcess(config, root / "region")
        if retry_seconds is not None:
            self.region.env = {"METALPLANE_DB_RETRY_SECONDS": str(retry_seconds)}
        self.region.start_and_wait()
        self.key = create_admin(config)

    def api(self, timeout: float = 60.0) -> MaasHttp:
        return MaasHttp(self.region.url, self.key, timeout=timeout)

    def close(self):
        try:
            self.region.stop()
        finally:
            self.pg.stop()


@pytest.fixture
def rig(workdir, request):
    r = FailoverRig(workdir, getattr(request, "param", None))
    yield r
    r.close()


def test_a_short_database_outage_only_delays_requests(rig):
    primary = rig.pg.primary
    with rig.api() as api:
        assert api.post("zones/", name="before").status_code == 200
        primary.kill()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            t0 = time.monotonic()
            read = pool.submit(api.get, "zones/")
            with rig.api() as api2:
                write = pool.submit(api2.post, "zones/", name="during")
                time.sleep(2.0)
                primary.start()  # crash recovery, same primary
                assert read.result().status_code == 200
                answer = write.result()
        assert answer.status_code == 200, answer.text
        assert time.monotonic() - t0 > 1.5
        names = [z["name"] for z in api.get("zones/").json()]
        assert names.count("during") == 1 and "before" in names


@pytest.mark.parametrize("rig", [2.0], indirect=True)
def test_a_long_outage_answers_503_with_retry_after(rig):
    rig.pg.primary.kill()
    try:
        with rig.api() as api:
            t0 = time.monotonic()
            answer = api.post("zones/", name="never")
            assert answer.status_code == 503 and answer.headers.get("retry-after")
            assert 1.5 < time.monotonic() - t0 < 10
            assert api.get("zones/").status_code == 503
    finally:
        rig.pg.primary.start()
    with rig.api() as api:
        # "never" may not exist: its transaction never reached COMMIT.
        assert "never" not in {z["name"] for z in api.get("zones/").json()}


def test_failover_to_the_promoted_standby_keeps_every_acknowledged_write(rig):
    old, new = rig.pg.primary, rig.pg.standbys[0]
    with rig.api() as api:
        acked = [f"z{i}" for i in range(20) if api.post("zones/", name=f"z{i}").status_code == 200]
        assert len(acked) == 20
        old.kill()
        time.sleep(1.0)
        new.promote()
        promoted = time.monotonic()
        answer = api.post("zones/", name="after")
        assert answer.status_code == 200, answer.text
        assert time.monotonic() - promoted < 15
        names = {z["name"] for z in api.get("zones/").json()}
    assert set(acked) | {"after"} <= names
    assert not new.in_recovery()
