"""Failed SQL statements never put their values in a log (issue 12): neither the bound
parameters nor the row values PostgreSQL quotes in its DETAIL line. Real PostgreSQL,
the region's own engines (sync and async)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError

from metalplane.region.db.engine import async_engine, sync_engine
from metalplane.region.db.tables import node_tokens, nodes

SECRET = "canary-token-s3cret-value"


def logged(caplog: pytest.LogCaptureFixture, exc: BaseException) -> str:
    log = logging.getLogger("metalplane.test")
    with caplog.at_level(logging.ERROR):
        log.error("statement failed", exc_info=exc)
    return caplog.text


def test_async_engine_errors_name_the_statement_but_no_value(databases, caplog):
    config = databases.config(databases.new_database())

    async def duplicate_token() -> IntegrityError:
        engine = async_engine(config, pool_size=1)
        try:
            async with engine.begin() as conn:
                node_id = (
                    await conn.execute(
                        insert(nodes).values(system_id="abc123", hostname="m", node_type=0).returning(nodes.c.id)
                    )
                ).scalar_one()
                await conn.execute(insert(node_tokens).values(node_id=node_id, token=SECRET))
            with pytest.raises(IntegrityError) as caught:
                async with engine.begin() as conn:
                    other = (
                        await conn.execute(
                            insert(nodes).values(system_id="def456", hostname="n", node_type=0).returning(nodes.c.id)
                        )
                    ).scalar_one()
                    await conn.execute(insert(node_tokens).values(node_id=other, token=SECRET))
            return caught.value
        finally:
            await engine.dispose()

    exc = asyncio.run(duplicate_token())
    shown = logged(caplog, exc)
    assert "node_tokens" in shown and "duplicate key value violates unique constraint" in shown
    assert SECRET not in shown and SECRET not in str(exc) and SECRET not in str(exc.orig)
    # Code that needs the details still has them.
    assert exc.orig.sqlstate == "23505" and SECRET in exc.orig.diag.message_detail


def test_sync_engine_errors_hide_values_too(databases, caplog):
    engine = sync_engine(databases.config(databases.new_database()))
    try:
        with pytest.raises(Exception) as caught, engine.begin() as conn:
            conn.execute(text("SELECT CAST(:v AS integer)"), {"v": SECRET})
    finally:
        engine.dispose()
    shown = logged(caplog, caught.value)
    assert "invalid input syntax" in shown and SECRET not in shown
