"""Supervised asyncio tasks: a long-lived task that dies is logged and restarted.

    supervisor = TaskSupervisor(logging.getLogger("metalplane.rack"), on_change=report)
    supervisor.start("region-links", links.run)     # a coroutine function, called anew per run
    ...
    supervisor.health()   # ("running", "") or ("degraded", "region-links down after OSError: ...")
    await supervisor.stop()

A task that raises (anything but cancellation) or returns is logged with its cause
and traceback once; a task that keeps dying of the same cause gets one line at its
2nd, 4th, 8th... death in a row. It is started again after a `Backoff`: `first`
doubling up to `maximum`, back to `first` once a run has lasted `stable_after`
seconds. A task counts as unhealthy from its death until its new run has lasted
`stable_after` seconds, so a crash loop stays visible in `health()` between
restarts. The supervisor's own loop catches everything: it never dies.

(`metalplane.supervised` is the other kind: a daemon *process* kept alive.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

FIRST_DELAY = 0.1
MAX_DELAY = 5.0
STABLE_AFTER = 10.0


@dataclass(frozen=True)
class Backoff:
    """When a dead task is started again: the wait doubles from `first` with each short run,
    up to `maximum`, and is back to `first` once a run has lasted `stable_after` seconds
    (also how long a new run must last before the task counts as healthy again)."""

    first: float = FIRST_DELAY
    maximum: float = MAX_DELAY
    stable_after: float = STABLE_AFTER

    def next(self, delay: float, ran: float) -> float:
        """The wait before the next restart, given the last wait and how long the run lasted."""
        if ran >= self.stable_after:
            return self.first
        return min(max(delay * 2, self.first), self.maximum)


def describe(exc: BaseException | None) -> str:
    """A death's cause in one line: "OSError: [Errno 24] Too many open files"."""
    if exc is None:
        return "returned (a long-lived task must not)"
    text = str(exc)
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def signature(exc: BaseException | None) -> tuple:
    """Deaths with the same signature are one cause: type, message and where it was raised."""
    if exc is None:
        return ("returned",)
    frames = traceback.extract_tb(exc.__traceback__)
    where = (frames[-1].filename, frames[-1].lineno) if frames else ()
    return (type(exc).__name__, str(exc)[:300], where)


@dataclass
class TaskState:
    name: str
    deaths: int = 0
    cause: str = ""  # of the last death
    down_since: float | None = None  # monotonic; None while healthy
    restarting_at: float | None = None  # monotonic; set while waiting to restart
    last_signature: tuple = ()
    repeats: int = 0  # deaths in a row with the same signature
    task: asyncio.Task | None = field(default=None, repr=False)

    def summary(self) -> str:
        if self.restarting_at is not None:
            return f"{self.name} down after {self.cause}, restarting ({self.deaths} death(s))"
        return f"{self.name} restarted after {self.cause} ({self.deaths} death(s))"


class TaskSupervisor:
    def __init__(
        self,
        log: logging.Logger,
        *,
        on_change: Callable[[], None] | None = None,
        backoff: Backoff = Backoff(),
    ):
        self.log = log
        self.on_change = on_change
        self.backoff = backoff
        self.tasks: dict[str, TaskState] = {}

    # -- what callers use ---------------------------------------------------------------

    def start(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run `run()` under supervision as `name` (unique)."""
        if name in self.tasks:
            raise ValueError(f"a task named {name!r} is already supervised")
        state = self.tasks[name] = TaskState(name)
        state.task = asyncio.ensure_future(self._supervise(state, run))

    def health(self) -> tuple[str, str]:
        """("running", "") when every task is up and stable, else ("degraded", which and why)."""
        unhealthy = [s.summary() for s in self.tasks.values() if s.down_since is not None]
        return ("degraded", "; ".join(unhealthy)) if unhealthy else ("running", "")

    def unhealthy(self) -> list[str]:
        return [s.name for s in self.tasks.values() if s.down_since is not None]

    async def stop(self) -> None:
        """Cancel every task and wait for each to finish."""
        tasks = [s.task for s in self.tasks.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks.clear()

    # -- the loop ---------------------------------------------------------------------------

    async def _supervise(self, state: TaskState, run: Callable[[], Awaitable[None]]) -> None:
        backoff = self.backoff
        delay = backoff.first
        while True:
            started = time.monotonic()
            recovery = asyncio.get_running_loop().call_later(backoff.stable_after, self._recovered, state)
            try:
                await run()
                error: BaseException | None = None
            except asyncio.CancelledError:
                recovery.cancel()
                raise
            except Exception as exc:
                error = exc
            recovery.cancel()
            try:
                ran = time.monotonic() - started
                delay = backoff.next(delay, ran)
                self._died(state, error, ran, delay)
            except Exception:
                with contextlib.suppress(Exception):
                    self.log.exception("supervising %s", state.name)
            await asyncio.sleep(delay)
            state.restarting_at = None
            self._changed()

    def _died(self, state: TaskState, error: BaseException | None, ran: float, delay: float) -> None:
        now = time.monotonic()
        state.deaths += 1
        state.cause = describe(error)
        state.restarting_at = now + delay
        if state.down_since is None:
            state.down_since = now
        sig = signature(error)
        state.repeats = state.repeats + 1 if sig == state.last_signature else 1
        state.last_signature = sig
        if state.repeats == 1:
            self.log.error(
                "task %s died after %.1f s: %s; restarting in %.1f s",
                state.name,
                ran,
                state.cause,
                delay,
                exc_info=(type(error), error, error.__traceback__) if error else None,
            )
        elif state.repeats & (state.repeats - 1) == 0:  # 2, 4, 8...: a crash loop stays visible, quietly
            self.log.error(
                "task %s died again after %.1f s (same cause, %d times in a row): %s; restarting in %.1f s",
                state.name,
                ran,
                state.repeats,
                state.cause,
                delay,
            )
        self._changed()

    def _recovered(self, state: TaskState) -> None:
        if state.down_since is not None:
            self.log.info(
                "task %s has run %.0f s since its restart: healthy again", state.name, self.backoff.stable_after
            )
            state.down_since = None
            state.repeats = 0
            state.last_signature = ()
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:
                self.log.exception("supervisor on_change callback failed")
