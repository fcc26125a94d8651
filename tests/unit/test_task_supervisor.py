"""The task supervisor: pure asyncio, fake tasks that die."""

from __future__ import annotations

import asyncio
import errno
import logging

import pytest

from metalplane.task_supervisor import Backoff, TaskSupervisor, describe


def test_backoff_doubles_to_the_cap_and_resets_after_a_stable_run():
    backoff = Backoff(first=0.1, maximum=5.0, stable_after=10.0)
    delays, delay = [], 0.1
    for _ in range(8):
        delay = backoff.next(delay, ran=0.01)
        delays.append(delay)
    assert delays == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]
    assert backoff.next(5.0, ran=10.0) == 0.1


def test_a_cause_is_one_line_with_its_type():
    assert describe(OSError(errno.EMFILE, "Too many open files")) == "OSError: [Errno 24] Too many open files"
    assert describe(RuntimeError()) == "RuntimeError"
    assert describe(None).startswith("returned")
    assert len(describe(ValueError("x" * 10000))) < 400


class Flaky:
    """Dies `deaths` times (EMFILE), then runs until cancelled."""

    def __init__(self, deaths: int):
        self.deaths = deaths
        self.runs = 0
        self.up = asyncio.Event()

    async def __call__(self) -> None:
        self.runs += 1
        if self.runs <= self.deaths:
            await asyncio.sleep(0)
            raise OSError(errno.EMFILE, "Too many open files")
        self.up.set()
        await asyncio.Event().wait()


def fast(log: logging.Logger, **kw) -> TaskSupervisor:
    return TaskSupervisor(log, backoff=Backoff(first=0.01, maximum=0.05, stable_after=0.3), **kw)


async def test_a_dying_task_is_logged_restarted_and_reported_until_stable(caplog):
    caplog.set_level(logging.INFO, logger="test.task_supervisor")
    changes: list[tuple[str, str]] = []
    sup = fast(logging.getLogger("test.task_supervisor"))
    sup.on_change = lambda: changes.append(sup.health())
    flaky = Flaky(deaths=3)
    sup.start("region-links", flaky)
    await asyncio.wait_for(flaky.up.wait(), 5)
    assert flaky.runs == 4
    status, info = sup.health()
    assert status == "degraded"  # up again, but not yet for `stable_after`
    assert "region-links" in info and "Too many open files" in info and "3 death(s)" in info
    await asyncio.sleep(0.45)
    assert sup.health() == ("running", "")
    assert changes[-1] == ("running", "")
    deaths = [r for r in caplog.records if "died" in r.getMessage()]
    assert len(deaths) == 2  # the 1st and the 2nd; the 3rd in a row is not said (the 4th would be)
    # The traceback once; the repeats of the same cause in one line each.
    assert deaths[0].exc_info is not None and "OSError: [Errno 24]" in deaths[0].getMessage()
    assert all(r.exc_info is None and "same cause" in r.getMessage() for r in deaths[1:])
    assert any("healthy again" in r.getMessage() for r in caplog.records)
    await sup.stop()


async def test_a_task_that_returns_is_restarted_too(caplog):
    runs = []

    async def returns() -> None:
        runs.append(1)

    sup = fast(logging.getLogger("test.task_supervisor"))
    sup.start("boot-status", returns)
    await asyncio.sleep(0.2)
    assert len(runs) >= 3
    assert "boot-status" in sup.health()[1] and "returned" in sup.health()[1]
    await sup.stop()


async def test_a_new_cause_gets_its_traceback_again(caplog):
    caplog.set_level(logging.ERROR, logger="test.task_supervisor")
    causes = [
        OSError(errno.EMFILE, "Too many open files"),
        OSError(errno.EMFILE, "Too many open files"),
        KeyError("dhcp"),
    ]

    async def dies() -> None:
        if causes:
            raise causes.pop(0)
        await asyncio.Event().wait()

    sup = fast(logging.getLogger("test.task_supervisor"))
    sup.start("dhcp-follow", dies)
    await asyncio.sleep(0.2)
    with_traceback = [r.getMessage() for r in caplog.records if r.exc_info]
    assert len(with_traceback) == 2 and "KeyError" in with_traceback[1]
    await sup.stop()


async def test_a_broken_callback_does_not_stop_supervision():
    flaky = Flaky(deaths=2)

    def broken() -> None:
        raise RuntimeError("callback bug")

    sup = fast(logging.getLogger("test.task_supervisor"), on_change=broken)
    sup.start("power-follow", flaky)
    await asyncio.wait_for(flaky.up.wait(), 5)
    assert flaky.runs == 3
    await sup.stop()


async def test_stop_cancels_without_restarting():
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    sup = fast(logging.getLogger("test.task_supervisor"))
    sup.start("lease-shipping", forever)
    await asyncio.sleep(0.01)
    await sup.stop()
    assert cancelled.is_set() and sup.tasks == {}
    assert sup.health() == ("running", "")


async def test_names_are_unique():
    sup = fast(logging.getLogger("test.task_supervisor"))
    sup.start("x", Flaky(0))
    with pytest.raises(ValueError):
        sup.start("x", Flaky(0))
    await sup.stop()


async def test_a_crash_loop_is_logged_at_the_1st_2nd_4th_8th_death(caplog):
    caplog.set_level(logging.ERROR, logger="test.task_supervisor")
    flaky = Flaky(deaths=9)
    sup = TaskSupervisor(
        logging.getLogger("test.task_supervisor"), backoff=Backoff(first=0.001, maximum=0.002, stable_after=5)
    )
    sup.start("image-sync", flaky)
    await asyncio.wait_for(flaky.up.wait(), 5)
    said = [r.getMessage() for r in caplog.records if "image-sync" in r.getMessage()]
    assert len(said) == 4 and "8 times in a row" in said[-1]
    assert "image-sync down" not in sup.health()[1] and "9 death(s)" in sup.health()[1]
    await sup.stop()
