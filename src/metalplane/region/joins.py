"""Racks joining a region worker: a bounded number at once, the next in arrival order.

A rack joining a worker costs a TLS handshake, the secret handshake and a Register
(database writes on the worker's bounded pool). When 1,000 racks arrive at once, or
the 250 racks of a killed worker move together, admitting all of them queues their
Registers behind each other past every timeout: links are dropped and redone, and
the work feeds on itself. So a worker lets `cap` racks join at once (ha.admission);
the next wait on the WebSocket upgrade, their TLS handshake done and nothing else,
and go in as soon as a place frees, oldest first. One that waited `wait` seconds,
or finds `queue_max` waiting already, is told to come back (HTTP 503, Retry-After),
which the rack honours with jitter. Waiting in line rather than being sent away at
once leaves no place idle while the sent-away sleep out their jitter, and spares
each of them a second TLS handshake.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

from metalplane.admission_line import REFUSED, AdmissionLine
from metalplane.ha.admission import Admission

RETRY_AFTER = 1  # seconds (HTTP's Retry-After is whole seconds)


class Joins:
    def __init__(self, cap: int, wait: float, queue_max: int):
        self.admission: Admission[Hashable] = Admission(cap, hold_max=wait)
        self.line = AdmissionLine(self.admission)
        self.wait = wait
        self.queue_max = queue_max
        self.refused = 0
        # Told how each join went: "at once", "after a wait" or "refused", and how long it
        # waited in line (the metrics).
        self.on_outcome: Callable[[str, float], None] = lambda outcome, waited: None

    async def enter(self, key: Hashable) -> bool:
        """Whether `key` (a connection) may join now, after its wait in line if need be.
        Once admitted it holds its place until `leave(key)`."""
        started = time.monotonic()
        outcome = await self.line.enter(key, self.wait, self.queue_max)
        self.on_outcome(outcome, time.monotonic() - started)
        if outcome == REFUSED:
            self.refused += 1
            return False
        return True

    def leave(self, key: Hashable) -> None:
        """`key` joined, or is gone (still in line: it leaves the line)."""
        self.line.leave(key)
