"""A region worker reads the live endpoints once for many askers (RegionRpcServer.live_endpoints)."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace

from metalplane.region import rpc_server
from metalplane.region.rpc_server import RegionRpcServer
from metalplane.region.services import connections


class CountingDb:
    def __init__(self):
        self.connects = 0

    @contextlib.asynccontextmanager
    async def connect(self):
        self.connects += 1
        yield object()


async def test_concurrent_askers_share_one_read_and_it_is_kept_for_the_ttl(monkeypatch):
    reads = []

    async def live_endpoints(conn):
        reads.append(conn)
        await asyncio.sleep(0.02)
        return [f"read {len(reads)}"]

    monkeypatch.setattr(connections, "live_endpoints", live_endpoints)
    monkeypatch.setattr(rpc_server, "LIVE_ENDPOINTS_TTL", 0.2)
    db = CountingDb()
    server = RegionRpcServer(SimpleNamespace(rpc_port=5250, database_pool_size=8), db, 1, "region", 0)  # type: ignore[arg-type]
    answers = await asyncio.gather(*(server.live_endpoints() for _ in range(50)))
    assert answers == [["read 1"]] * 50 and db.connects == 1
    assert await server.live_endpoints() == ["read 1"]  # within the TTL: no read
    await asyncio.sleep(0.25)
    assert await server.live_endpoints() == ["read 2"] and db.connects == 2


async def test_a_failed_read_is_not_kept(monkeypatch):
    calls = []

    async def live_endpoints(conn):
        calls.append(1)
        if len(calls) == 1:
            raise OSError("database away")
        return ["back"]

    monkeypatch.setattr(connections, "live_endpoints", live_endpoints)
    server = RegionRpcServer(SimpleNamespace(rpc_port=5250, database_pool_size=8), CountingDb(), 1, "region", 0)  # type: ignore[arg-type]
    try:
        await server.live_endpoints()
    except OSError:
        pass
    else:
        raise AssertionError("the failure was hidden")
    assert await server.live_endpoints() == ["back"]


async def test_a_burst_of_rebalance_requests_is_planned_once_it_is_over_or_at_the_longest(monkeypatch):
    monkeypatch.setattr(rpc_server, "REBALANCE_DEBOUNCE", 0.05)
    monkeypatch.setattr(rpc_server, "REBALANCE_LONGEST", 0.4)
    server = RegionRpcServer(SimpleNamespace(rpc_port=5250, database_pool_size=8), CountingDb(), 1, "region", 0)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    runs: list[float] = []

    async def action():
        runs.append(loop.time())

    wanted = asyncio.Event()
    task = asyncio.create_task(server._debounced(wanted, action, "test"))
    try:
        start = loop.time()
        for _ in range(10):  # a burst of 0.2 s: one plan, once it is quiet
            wanted.set()
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        assert len(runs) == 1 and runs[0] - start >= 0.2
        runs.clear()
        start = loop.time()
        for _ in range(50):  # a burst that goes on for 1 s: planned about every 0.4 s
            wanted.set()
            await asyncio.sleep(0.02)
        assert 2 <= len(runs) <= 3 and runs[0] - start >= 0.4
    finally:
        task.cancel()
