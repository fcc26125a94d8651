"""Merge concurrent identical requests into one call and keep answers briefly.

In a boot storm hundreds of machines (and each machine's retransmitted requests)
ask for the same thing at once; the rack must ask the region once.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class RequestCoalescer(Generic[K, V]):
    """`await c.get(key)`: at most one call of `fetch(key)` in flight per key.

    - Concurrent `get`s of a key share the one call and its answer (or its exception).
    - An answer is kept for `ttl` seconds (`negative_ttl` for None answers, default
      the same); exceptions are never kept, the next `get` calls again.
    - A waiter that is cancelled does not cancel the shared call for the others.
    - At most `max_entries` answers are kept (least recently stored dropped first).

    `get(key, fetch)` may pass the call to make for this key (a zero-argument
    coroutine function) instead of the constructor's `fetch(key)`.
    """

    def __init__(
        self,
        fetch: Callable[[K], Awaitable[V]] | None = None,
        ttl: float = 5.0,
        negative_ttl: float | None = None,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._fetch = fetch
        self.ttl = ttl
        self.negative_ttl = ttl if negative_ttl is None else negative_ttl
        self.max_entries = max_entries
        self.clock = clock
        self._cache: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._inflight: dict[K, asyncio.Future[V]] = {}
        self._generation = 0  # bumped by invalidate(): answers of older calls are not kept
        self.calls = 0  # fetches made
        self.hits = 0  # answered from the cache
        self.merged = 0  # joined a fetch already in flight

    async def get(self, key: K, fetch: Callable[[], Awaitable[V]] | None = None) -> V:
        entry = self._cache.get(key)
        if entry is not None:
            expires, value = entry
            if self.clock() < expires:
                self.hits += 1
                return value
            del self._cache[key]
        future = self._inflight.get(key)
        if future is not None:
            self.merged += 1
        else:
            if fetch is None:
                if self._fetch is None:
                    raise TypeError("no fetch given")
                own_fetch = self._fetch
                coro = own_fetch(key)
            else:
                coro = fetch()
            self.calls += 1
            future = asyncio.ensure_future(self._run(key, coro, self._generation))
            future.add_done_callback(_retrieve)
            self._inflight[key] = future
        # shield: one waiter's cancellation must not cancel the call the others wait for.
        return await asyncio.shield(future)

    async def _run(self, key: K, coro: Awaitable[V], generation: int) -> V:
        try:
            value = await coro
        finally:
            self._inflight.pop(key, None)
        ttl = self.ttl if value is not None else self.negative_ttl
        if ttl > 0 and generation == self._generation:
            self._cache[key] = (self.clock() + ttl, value)
            self._cache.move_to_end(key)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return value

    def invalidate(self, key: K | None = None) -> None:
        """Forget one key's answer, or all of them.

        Calls in flight still answer their waiters, but their answers are not kept.
        """
        self._generation += 1
        if key is None:
            self._cache.clear()
        else:
            self._cache.pop(key, None)

    def __len__(self) -> int:
        return len(self._cache)


def _retrieve(future: asyncio.Future[Any]) -> None:
    # Every waiter may have gone (cancelled): mark the exception as seen.
    if not future.cancelled():
        future.exception()
