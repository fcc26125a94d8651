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

import asyncio
import contextlib
from collections.abc import Callable, Hashable

from metalplane.ha.admission import Admission

RETRY_AFTER = 1  # seconds (HTTP's Retry-After is whole seconds)


class Joins:
    def __init__(self, cap: int, wait: float, queue_max: int):
        self.admission: Admission[Hashable] = Admission(cap, hold_max=wait)
        self.wait = wait
        self.queue_max = queue_max
        self.refused = 0
        self._turns: dict[Hashable, asyncio.Future[None]] = {}
        # Told how each join went: "at once", "after a wait" or "refused" (the metrics).
        self.on_outcome: Callable[[str], None] = lambda outcome: None

    async def enter(self, key: Hashable) -> bool:
        """Whether `key` (a connection) may join now, after its wait in line if need be.
        Once admitted it holds its place until `leave(key)`."""
        admission = self.admission
        if admission.try_enter(key):
            self.on_outcome("at once")
            return True
        if admission.waiting > self.queue_max:
            admission.cancel(key)
            return self._refuse()
        turn = self._turns[key] = asyncio.get_running_loop().create_future()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(turn), self.wait)
        except BaseException:  # the connection's task was cancelled: its place goes too
            if not admission.cancel(key):
                self.leave(key)
            raise
        finally:
            self._turns.pop(key, None)
        if key in admission.active:
            self.on_outcome("after a wait")
            return True
        admission.cancel(key)  # still in line when the wait ended (or gone meanwhile)
        return self._refuse()

    def _refuse(self) -> bool:
        self.refused += 1
        self.on_outcome("refused")
        return False

    def leave(self, key: Hashable) -> None:
        """`key` joined, or is gone: its place goes to the oldest in line. A key gone while
        still in line leaves the line (were it let in later, nothing would ever free its
        place). Twice, or for a key never admitted, does nothing."""
        if self.admission.cancel(key):
            turn = self._turns.get(key)
            if turn is not None and not turn.done():
                turn.set_result(None)  # its enter() returns at once, refused
            return
        admitted = self.admission.leave(key)
        while admitted is not None:
            turn = self._turns.get(admitted)
            if turn is not None and not turn.done():
                turn.set_result(None)
                return
            # Its wait is over (refused, or gone): the place is free again.
            admitted = self.admission.leave(admitted)
