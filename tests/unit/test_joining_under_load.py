"""Racks joining under load: admission control (region.joins), the worker's 503, the rack's
jittered hold and its re-planning pace (rack.region_links)."""

from __future__ import annotations

import asyncio
import time
import uuid
from types import SimpleNamespace

import pytest
from websockets.asyncio.server import serve

from metalplane.rack.region_links import Backoff, Link, RegionLinks
from metalplane.region.joins import RETRY_AFTER, Joins
from metalplane.region.rpc_server import RegionRpcServer
from metalplane.rpc.client import PEER_PATH, RegionBusy, open_connection
from metalplane.rpc.endpoint import Endpoint
from metalplane.rpc.handshake import ClientHello
from metalplane.rpc.tls import make_cluster_tls, server_context


async def line_up(joins: Joins, first: str, *others: str) -> list[asyncio.Future[bool]]:
    """`first` let in, the `others` in line behind it (their enter() calls, still waiting)."""
    assert await joins.enter(first)
    waiting = [asyncio.ensure_future(joins.enter(key)) for key in others]
    await asyncio.sleep(0.01)
    return waiting


async def test_joins_past_the_cap_wait_in_line_and_go_in_oldest_first_as_places_free():
    joins = Joins(cap=1, wait=5.0, queue_max=8)
    second, third = await line_up(joins, "r1", "r2", "r3")
    assert not second.done() and not third.done() and joins.admission.waiting == 2
    joins.leave("r1")
    assert await second is True
    await asyncio.sleep(0.01)
    assert not third.done()  # one place: r3 waits for r2
    joins.leave("r1")  # leaving twice frees nothing
    await asyncio.sleep(0.01)
    assert not third.done()
    joins.leave("r2")
    assert await third is True
    assert joins.refused == 0 and joins.admission.held == 2


async def test_a_join_is_turned_away_when_its_wait_is_over_or_the_line_is_full():
    joins = Joins(cap=1, wait=0.05, queue_max=1)
    (waiting,) = await line_up(joins, "r1", "r2")
    assert await joins.enter("r3") is False  # the line is full: at once
    assert await waiting is False  # waited 0.05 s: no place freed
    assert joins.refused == 2 and joins.admission.waiting == 0
    joins.leave("r1")
    assert await joins.enter("r4")  # the place went to nobody in line: free for the next


async def test_each_join_says_how_it_went():
    joins = Joins(cap=1, wait=0.05, queue_max=8)
    said: list[tuple[str, float]] = []
    joins.on_outcome = lambda outcome, waited: said.append((outcome, waited))
    (second,) = await line_up(joins, "r1", "r2")
    await asyncio.sleep(0.02)
    joins.leave("r1")
    await second
    assert not await joins.enter("r3")  # r2 holds the place for 0.05 s and more
    assert [outcome for outcome, _ in said] == ["at once", "after a wait", "refused"]
    (_, at_once), (_, after_a_wait), (_, refused) = said
    assert at_once < after_a_wait and 0.02 <= after_a_wait < 5 and 0.04 <= refused < 5


async def test_a_connection_closed_while_in_line_never_takes_a_place():
    """Its close is seen (leave) before its turn: let in later, nothing would free the place
    (the bench's 1,000 racks wedged a worker's 32 places this way in a few kills)."""
    joins = Joins(cap=1, wait=5.0, queue_max=8)
    (closed,) = await line_up(joins, "r1", "r2")
    joins.leave("r2")  # closed by the rack (its connect timeout) while in line
    assert await asyncio.wait_for(closed, 1) is False
    joins.leave("r1")
    assert joins.admission.active == set()
    assert await joins.enter("r3")


async def test_a_join_whose_connection_goes_while_in_line_gives_up_its_place():
    joins = Joins(cap=1, wait=5.0, queue_max=8)
    gone, later = await line_up(joins, "r1", "r2", "r3")
    gone.cancel()
    await asyncio.sleep(0.01)
    joins.leave("r1")
    assert await later is True and joins.admission.active == {"r3"}


def test_a_hold_is_jittered_and_does_not_grow_the_backoff():
    holds = []
    for _ in range(200):
        backoff = Backoff(failures=2)
        backoff.hold(100.0, 1.0)
        assert backoff.failures == 2
        holds.append(backoff.retry_at - 100.0)
    assert all(0.5 <= h <= 1.5 for h in holds)
    assert max(holds) - min(holds) > 0.5  # spread, not one instant
    later = Backoff(retry_at=110.0)
    later.hold(100.0, 1.0)
    assert later.retry_at == 110.0  # never brings a later retry forward


def _links(tmp_path) -> RegionLinks:
    from metalplane.rack.cluster_state import ClusterState

    hello = ClientHello("rack", "r1", "rack-1", "1", None)
    return RegionLinks([], "s", lambda: hello, ClusterState(tmp_path), {}, registration=None)  # type: ignore[arg-type]


def test_a_busy_worker_holds_it_and_briefly_its_regions_other_workers(tmp_path):
    links = _links(tmp_path)
    a0, a1, a2, b0 = (
        Endpoint("a", 0, "h", 1),
        Endpoint("a", 1, "h", 2),
        Endpoint("a", 2, "h", 3),
        Endpoint("b", 0, "h", 4),
    )
    links.known = {e.key: e for e in (a0, a1, a2, b0)}
    links.links[a2.key] = Link(a2)  # linked (opening): left alone
    now = time.monotonic()
    links._hold_region(a0, 2.0)
    assert now + 1.0 - 0.01 <= links.backoff[a0.key].retry_at <= now + 3.0 + 0.5
    assert now - 0.01 <= links.backoff[a1.key].retry_at <= now + 2.0 + 0.5
    assert a2.key not in links.backoff and b0.key not in links.backoff
    usable = links._usable(now + 3.1)
    assert {a0.key, a1.key, b0.key} <= usable


def _tls_server_admission(limit: int):
    config = SimpleNamespace(rpc_port=5250, database_pool_size=limit)
    server = RegionRpcServer(config, None, 1, "region", 0)  # type: ignore[arg-type]
    server.joins = Joins(limit, wait=0.2, queue_max=limit)
    return server


async def test_a_busy_worker_answers_503_which_the_rack_reads_as_region_busy():
    tls = make_cluster_tls(str(uuid.uuid4()))
    region = _tls_server_admission(1)
    assert await region.joins.enter("another rack")  # one rack joining already: the limit is reached
    hello = ClientHello("rack", "r1", "rack-1", "1", None)
    reached = []

    async def handler(ws):
        reached.append(ws.request.path)
        await ws.close()

    async with serve(
        handler, "127.0.0.1", 0, ssl=server_context(tls["cert"], tls["key"]), process_request=region._admit
    ) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(RegionBusy) as busy:
            await open_connection("127.0.0.1", port, "secret", hello, None, {})
        assert busy.value.retry_after == RETRY_AFTER
        assert reached == [] and region.joins.refused == 1  # after its 0.2 s in line
        # A region peer forwarding a call is never turned away (it gets to the handshake).
        with pytest.raises(Exception) as other:
            await asyncio.wait_for(open_connection("127.0.0.1", port, "secret", hello, None, {}, path=PEER_PATH), 5)
        assert not isinstance(other.value, RegionBusy)
        assert reached == [PEER_PATH]
        # A rack in line gets in as soon as the place frees.
        region.joins.wait = 5.0
        waiting = asyncio.ensure_future(open_connection("127.0.0.1", port, "secret", hello, None, {}))
        await asyncio.sleep(0.1)
        assert len(reached) == 1 and region.joins.admission.waiting == 1
        region.joins.leave("another rack")
        with pytest.raises(Exception) as let_in:
            await asyncio.wait_for(waiting, 5)
        assert not isinstance(let_in.value, RegionBusy) and len(reached) == 2


def test_a_settled_rack_replans_only_when_a_refresh_or_a_targets_retry_is_due(tmp_path):
    from metalplane.rack.region_links import RECONCILE_INTERVAL, REFRESH_INTERVAL

    links = _links(tmp_path)
    now = time.monotonic()
    assert links._next_pass(now, settled=False) == RECONCILE_INTERVAL
    links._last_refresh = now
    assert links._next_pass(now, settled=True) == REFRESH_INTERVAL
    links._last_refresh = now - REFRESH_INTERVAL + 3
    assert abs(links._next_pass(now, settled=True) - 3) < 0.01
    # The region's target is in backoff (a stand-in of its region serves): try it when due.
    target = Endpoint("a", 0, "h", 1)
    links.targets = [target]
    links.backoff[target.key] = Backoff(failures=1, retry_at=now + 1.5)
    assert abs(links._next_pass(now, settled=True) - 1.5) < 0.01
    links.backoff[target.key] = Backoff(failures=1, retry_at=now - 5)  # due already: soon, not at once
    assert links._next_pass(now, settled=True) == RECONCILE_INTERVAL
