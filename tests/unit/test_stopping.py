"""A shutdown step that hangs is logged with what the tasks were awaiting, and the next step runs."""

from __future__ import annotations

import asyncio
import logging

import pytest

from metalplane.stopping import stop_within

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_hung_step_is_logged_with_the_tasks_stacks_and_the_next_step_runs(caplog):
    forever = asyncio.Event()

    async def stuck_somewhere() -> None:
        await forever.wait()

    holder = asyncio.create_task(stuck_somewhere(), name="holds-the-lock")
    ran: list[str] = []

    async def hung() -> None:
        await holder

    async def next_step() -> None:
        ran.append("next")

    log = logging.getLogger("test.stopping")
    with caplog.at_level(logging.ERROR, logger="test.stopping"):
        assert await stop_within("dhcp", hung, 0.1, log) is False
        assert await stop_within("power", next_step, 0.1, log) is True
    assert ran == ["next"]
    (record,) = caplog.records
    assert "stopping dhcp took more than 0 s" in record.getMessage()
    assert "holds-the-lock" in record.getMessage() and "stuck_somewhere" in record.getMessage()
    holder.cancel()


async def test_a_failing_step_is_logged_and_does_not_stop_the_shutdown(caplog):
    async def broken() -> None:
        raise OSError("socket gone")

    with caplog.at_level(logging.ERROR, logger="test.stopping"):
        assert await stop_within("boot", broken, 1, logging.getLogger("test.stopping")) is False
    assert "stopping boot failed" in caplog.text and "socket gone" in caplog.text
