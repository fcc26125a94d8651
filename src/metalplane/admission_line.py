"""Waiting in line for an `ha.admission.Admission` place, in asyncio: the waits the rack's
GetBootConfig calls (rack.boot.service) and a region worker's joining racks
(region.joins) make. `Admission` decides who is in; this wakes the one let in."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Hashable
from typing import Generic, TypeVar

from metalplane.ha.admission import Admission

T = TypeVar("T", bound=Hashable)
AT_ONCE, AFTER_A_WAIT, REFUSED = "at once", "after a wait", "refused"


class AdmissionLine(Generic[T]):
    def __init__(self, admission: Admission[T]):
        self.admission = admission
        self._turns: dict[T, asyncio.Future[None]] = {}

    async def enter(self, key: T, wait: float | None = None, queue_max: int | None = None) -> str:
        """Let `key` in: AT_ONCE, AFTER_A_WAIT in line, or REFUSED (more than `queue_max` in
        line already, or `wait` seconds went by, or it left the line). Once in, it holds
        its place until `leave(key)`; cancelled while in line, it gives its place up."""
        admission = self.admission
        if admission.try_enter(key):
            return AT_ONCE
        if queue_max is not None and admission.waiting > queue_max:
            admission.cancel(key)
            return REFUSED
        turn = self._turns[key] = asyncio.get_running_loop().create_future()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(turn), wait)
        except BaseException:
            if not admission.cancel(key):  # let in just as it was cancelled: pass the turn on
                self.leave(key)
            raise
        finally:
            self._turns.pop(key, None)
        if key in admission.active:
            return AFTER_A_WAIT
        admission.cancel(key)  # still in line when the wait ended (or gone meanwhile)
        return REFUSED

    def leave(self, key: T) -> None:
        """`key` is done, or gone: its place goes to the oldest in line. A key gone while
        still in line leaves the line (were it let in later, nothing would ever free its
        place). Twice, or for a key never let in, does nothing."""
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
