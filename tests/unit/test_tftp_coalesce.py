"""RequestCoalescer and the resolvers built on it: merging, TTL, errors, cancellation."""

from __future__ import annotations

import asyncio
import os

import pytest

from metalplane.rack.tftp.coalesce import RequestCoalescer
from metalplane.rack.tftp.protocol import ERR_ACCESS, TftpError
from metalplane.rack.tftp.sources import Routes, StaticRoot, chain


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Backend:
    """Answers after `gate` opens; counts calls."""

    def __init__(self):
        self.calls: list = []
        self.gate = asyncio.Event()
        self.fail: Exception | None = None

    async def fetch(self, key):
        self.calls.append(key)
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return f"answer-{key}-{len(self.calls)}"


async def test_concurrent_identical_requests_make_one_call():
    backend = Backend()
    coalescer = RequestCoalescer(backend.fetch, ttl=5)
    waiters = [asyncio.create_task(coalescer.get("aa:bb")) for _ in range(50)]
    await asyncio.sleep(0)
    backend.gate.set()
    answers = await asyncio.gather(*waiters)
    assert backend.calls == ["aa:bb"]
    assert set(answers) == {"answer-aa:bb-1"}
    assert (coalescer.calls, coalescer.merged) == (1, 49)


async def test_different_keys_are_separate_calls():
    backend = Backend()
    backend.gate.set()
    coalescer = RequestCoalescer(backend.fetch)
    assert await asyncio.gather(coalescer.get("a"), coalescer.get("b")) == ["answer-a-1", "answer-b-2"]
    assert sorted(backend.calls) == ["a", "b"]


async def test_answers_are_cached_for_the_ttl_only():
    backend = Backend()
    backend.gate.set()
    clock = Clock()
    coalescer = RequestCoalescer(backend.fetch, ttl=5, clock=clock)
    assert await coalescer.get("k") == "answer-k-1"
    clock.now += 4.9
    assert await coalescer.get("k") == "answer-k-1"
    assert coalescer.hits == 1
    clock.now += 0.2
    assert await coalescer.get("k") == "answer-k-2"
    assert len(backend.calls) == 2


async def test_none_answers_use_the_negative_ttl():
    calls = []

    async def fetch(key):
        calls.append(key)
        return None

    clock = Clock()
    coalescer = RequestCoalescer(fetch, ttl=5, negative_ttl=1, clock=clock)
    assert await coalescer.get("k") is None
    assert await coalescer.get("k") is None
    assert len(calls) == 1
    clock.now += 1.5
    assert await coalescer.get("k") is None
    assert len(calls) == 2


async def test_exceptions_reach_every_waiter_and_are_not_cached():
    backend = Backend()
    backend.fail = RuntimeError("region unreachable")
    coalescer = RequestCoalescer(backend.fetch, ttl=60)
    waiters = [asyncio.create_task(coalescer.get("k")) for _ in range(3)]
    await asyncio.sleep(0)
    backend.gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    backend.fail = None
    assert await coalescer.get("k") == "answer-k-2"


async def test_a_cancelled_waiter_does_not_cancel_the_call_for_others():
    backend = Backend()
    coalescer = RequestCoalescer(backend.fetch)
    first = asyncio.create_task(coalescer.get("k"))
    second = asyncio.create_task(coalescer.get("k"))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    backend.gate.set()
    assert await second == "answer-k-1"
    assert first.cancelled()
    assert backend.calls == ["k"]


async def test_all_waiters_cancelled_the_call_still_completes_and_is_cached():
    backend = Backend()
    coalescer = RequestCoalescer(backend.fetch)
    waiter = asyncio.create_task(coalescer.get("k"))
    await asyncio.sleep(0)
    waiter.cancel()
    backend.gate.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert await coalescer.get("k") == "answer-k-1"
    assert backend.calls == ["k"]


async def test_invalidate_forgets_answers_and_calls_in_flight_are_not_kept():
    backend = Backend()
    coalescer = RequestCoalescer(backend.fetch)
    waiter = asyncio.create_task(coalescer.get("k"))
    await asyncio.sleep(0)
    coalescer.invalidate("k")
    backend.gate.set()
    assert await waiter == "answer-k-1"  # its waiters get it...
    assert await coalescer.get("k") == "answer-k-2"  # ...but it was not kept
    coalescer.invalidate()
    assert len(coalescer) == 0


async def test_max_entries_drops_the_oldest():
    backend = Backend()
    backend.gate.set()
    coalescer = RequestCoalescer(backend.fetch, max_entries=2)
    for key in ("a", "b", "c"):
        await coalescer.get(key)
    assert len(coalescer) == 2
    await coalescer.get("a")
    assert backend.calls == ["a", "b", "c", "a"]


async def test_per_call_fetch():
    coalescer: RequestCoalescer[str, str] = RequestCoalescer()

    async def make():
        return "made"

    assert await coalescer.get("k", make) == "made"
    assert await coalescer.get("k") == "made"  # cached; no fetch needed
    with pytest.raises(TypeError):
        await coalescer.get("other")


async def test_routes_merge_concurrent_requests_of_one_machine():
    calls = []
    gate = asyncio.Event()

    async def pxelinux(match, client):
        calls.append((match.group("mac"), client))
        await gate.wait()
        return f"DEFAULT local # {match.group('mac')}\n".encode()

    routes = Routes(ttl=5)
    routes.add(r"pxelinux\.cfg/01-(?P<mac>[0-9a-f]{2}(?:-[0-9a-f]{2}){5})", pxelinux)
    path = "pxelinux.cfg/01-AA-BB-CC-DD-EE-FF"
    waiters = [asyncio.create_task(routes(path, ("10.0.0.5", 2000 + i))) for i in range(20)]
    await asyncio.sleep(0)
    gate.set()
    answers = await asyncio.gather(*waiters)
    assert set(answers) == {b"DEFAULT local # aa-bb-cc-dd-ee-ff\n"}
    assert calls == [("aa-bb-cc-dd-ee-ff", ("10.0.0.5", 2000))]
    assert await routes("pxelinux.cfg/default", ("10.0.0.5", 1)) is None


def test_static_root(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "file").write_bytes(b"x")
    (tmp_path / "secret").write_bytes(b"s")
    os.symlink(tmp_path / "secret", root / "escape")
    os.symlink("sub/file", root / "inside")
    static = StaticRoot(root)
    assert static.lookup("sub/file") == str(root / "sub" / "file")
    assert static.lookup("inside") == str(root / "inside")
    assert static.lookup("sub") is None  # a directory
    assert static.lookup("missing") is None
    assert static.lookup("sub/file/below") is None
    with pytest.raises(TftpError) as info:
        static.lookup("escape")
    assert info.value.code == ERR_ACCESS


async def test_chain_first_answer_wins(tmp_path):
    (tmp_path / "f").write_bytes(b"static")

    async def dynamic(path, client):
        return b"dynamic" if path == "d" else None

    resolve = chain(dynamic, StaticRoot(tmp_path))
    assert await resolve("d", ("h", 1)) == b"dynamic"
    assert await resolve("f", ("h", 1)) == str(tmp_path / "f")
    assert await resolve("nope", ("h", 1)) is None
