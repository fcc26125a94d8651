"""Admission control: at most `cap` pieces of heavy work at once, the rest wait in arrival
order instead of being turned away. The rack gates its boot work with it (image and TFTP
transfers, GetBootConfig calls), a region worker the racks joining it (region.joins).

    admission = Admission(cap=64, hold_max=30.0)
    if admission.try_enter(conn):      # admitted now: do the work
        ...
    # later, when that work ends (exactly once per admitted ticket):
    nxt = admission.leave(conn)        # the oldest waiter, now admitted (or None)
    admission.cancel(conn)             # a waiter that went away
    for late in admission.expired(now):  # waiters held longer than hold_max, removed
        ...

Pure: no I/O, no event loop; `clock` is injectable (tests use a fake one). A ticket is
any hashable object the caller uses to find its waiter again (a connection, a request
key). `cap` 0 means unlimited: every ticket is admitted at once and nothing queues.
Counters for status lines and metrics: `admitted`, `held` (tickets that had to wait),
`expired`, `cancelled`, `max_queue`; `held_seconds` keeps the wait of the last
`HISTORY` tickets admitted from the queue (`percentile(q)` of it).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

HISTORY = 4096
T = TypeVar("T", bound=Hashable)


class Admission(Generic[T]):
    def __init__(self, cap: int, hold_max: float, *, clock: Callable[[], float] = time.monotonic):
        if cap < 0 or hold_max < 0:
            raise ValueError("cap and hold_max are >= 0")
        self.cap = cap
        self.hold_max = hold_max
        self.clock = clock
        self.active: set[T] = set()
        self.queue: OrderedDict[T, float] = OrderedDict()  # ticket -> enqueued at, oldest first
        self.admitted = 0
        self.held = 0
        self.expired_count = 0
        self.cancelled = 0
        self.max_queue = 0
        self.held_seconds: deque[float] = deque(maxlen=HISTORY)

    def __len__(self) -> int:
        return len(self.active)

    @property
    def waiting(self) -> int:
        return len(self.queue)

    def is_waiting(self, ticket: T) -> bool:
        return ticket in self.queue

    def try_enter(self, ticket: T) -> bool:
        """Admit `ticket` now (True), or queue it behind the others (False). A ticket
        already admitted is admitted; one already waiting keeps its place."""
        if ticket in self.active:
            return True
        if ticket in self.queue:
            return False
        if not self.cap or (len(self.active) < self.cap and not self.queue):
            self.active.add(ticket)
            self.admitted += 1
            return True
        self.queue[ticket] = self.clock()
        self.held += 1
        if len(self.queue) > self.max_queue:
            self.max_queue = len(self.queue)
        return False

    def leave(self, ticket: T) -> T | None:
        """`ticket`'s work is done: its place goes to the oldest waiter, which is returned
        (admitted: the caller starts its work), or None. Leaving twice, or without having
        been admitted, changes nothing."""
        if ticket not in self.active:
            return None
        self.active.discard(ticket)
        return self._admit_next()

    def cancel(self, ticket: T) -> bool:
        """A waiter that went away (client gone): whether it was waiting."""
        if self.queue.pop(ticket, None) is None:
            return False
        self.cancelled += 1
        return True

    def drop_oldest(self) -> T | None:
        """Remove the oldest waiter (a bounded queue making room), counted as expired."""
        if not self.queue:
            return None
        ticket, _ = self.queue.popitem(last=False)
        self.expired_count += 1
        return ticket

    def expired(self, now: float | None = None) -> list[T]:
        """Remove and return the waiters held longer than `hold_max` (oldest first)."""
        if now is None:
            now = self.clock()
        out = []
        while self.queue:
            ticket, since = next(iter(self.queue.items()))
            if now - since <= self.hold_max:
                break
            del self.queue[ticket]
            out.append(ticket)
        self.expired_count += len(out)
        return out

    def position(self, ticket: T) -> int:
        """1 for the oldest waiter; 0 when not waiting."""
        for i, waiter in enumerate(self.queue, 1):
            if waiter == ticket:
                return i
        return 0

    def _admit_next(self) -> T | None:
        if not self.queue or (self.cap and len(self.active) >= self.cap):
            return None
        ticket, since = self.queue.popitem(last=False)
        self.active.add(ticket)
        self.admitted += 1
        self.held_seconds.append(self.clock() - since)
        return ticket

    def percentile(self, q: float) -> float:
        """The q-quantile (0..1) of recent hold times, 0.0 when nobody waited."""
        if not self.held_seconds:
            return 0.0
        values = sorted(self.held_seconds)
        return values[min(len(values) - 1, round(q * (len(values) - 1)))]

    def summary(self) -> str:
        cap = self.cap or "unlimited"
        text = f"{len(self.active)} active of {cap}, {len(self.queue)} waiting"
        if self.held:
            text += (
                f"; {self.held} held since start (longest queue {self.max_queue}, "
                f"p99 wait {self.percentile(0.99):.1f} s, {self.expired_count} expired)"
            )
        return text
