"""The rack's keepalive judges a region by silence counted in checked time (rpc.keepalive)."""

from __future__ import annotations

import asyncio

from metalplane.rpc.keepalive import Silence, keep_alive


def heard_and_verdicts(checks: list[tuple[float, bool]]) -> list[bool]:
    """Silence(0.75, 1.5)'s verdict at each (time, heard) check."""
    s = Silence(interval=0.75, timeout=1.5)
    return [s.check(now, heard) for now, heard in checks]


def test_silence_of_two_intervals_is_death():
    # The first check only starts the count.
    assert heard_and_verdicts([(0.0, False), (0.75, False), (1.5, False)]) == [False, False, True]


def test_anything_heard_resets_the_silence():
    checks = [(0.0, True), (0.75, False), (1.5, True), (2.25, False), (3.0, False)]
    assert heard_and_verdicts(checks) == [False, False, False, False, True]


def test_a_late_check_counts_one_interval_only():
    """This side's loop lagged 5 s: the region was not given a chance to answer."""
    assert heard_and_verdicts([(0.0, True), (5.0, False), (5.75, False)]) == [False, False, True]
    s = Silence(interval=0.75, timeout=1.5)
    s.check(0.0, True)
    s.check(5.0, False)
    assert s.silent == 0.75


class FakeWs:
    """Answers pings after `delay` (None: never); records the close."""

    def __init__(self, delay: float | None):
        self.delay = delay
        self.closed: tuple[int, str] | None = None
        self.pings = 0

    async def ping(self) -> asyncio.Future:
        self.pings += 1
        pong = asyncio.get_running_loop().create_future()
        if self.delay is not None:
            asyncio.get_running_loop().call_later(self.delay, pong.set_result, 0.0)
        return pong

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


async def test_a_silent_peer_is_closed_within_timeout_plus_an_interval():
    ws = FakeWs(None)
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(keep_alive(ws, lambda t: False, 0.02, 0.04, "test"), 1)
    assert ws.closed == (1011, "keepalive timeout")
    assert asyncio.get_running_loop().time() - started < 0.2


async def test_a_peer_that_answers_pings_is_kept():
    ws = FakeWs(0.005)
    task = asyncio.create_task(keep_alive(ws, lambda t: False, 0.02, 0.04, "test"))
    await asyncio.sleep(0.3)
    assert not task.done() and ws.closed is None and ws.pings >= 5
    task.cancel()


async def test_other_traffic_counts_as_heard_without_pongs():
    ws = FakeWs(None)
    task = asyncio.create_task(keep_alive(ws, lambda t: True, 0.02, 0.04, "test"))
    await asyncio.sleep(0.3)
    assert not task.done() and ws.closed is None
    assert ws.pings == 1  # one ping outstanding at a time
    task.cancel()
