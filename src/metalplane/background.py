"""Fire-and-forget tasks that cannot vanish half-way.

The event loop keeps only weak references to tasks, so a task nobody holds may
be garbage-collected before it finishes. `background` holds each one until done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")

_running: set[asyncio.Future[Any]] = set()


def background(work: Awaitable[T]) -> asyncio.Future[T]:
    """Schedule `work` on the running loop and keep it alive until it finishes."""
    task = asyncio.ensure_future(work)
    _running.add(task)
    task.add_done_callback(_running.discard)
    return task
