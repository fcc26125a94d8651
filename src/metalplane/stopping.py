"""A daemon's shutdown in bounded steps: a step that hangs is logged with what every task
was doing, and the shutdown goes on, so the daemons a rack supervises are stopped anyway."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable


def task_stacks(limit: int = 8) -> str:
    """What each task of the running loop is awaiting (its innermost frames)."""
    out = io.StringIO()
    for task in asyncio.all_tasks():
        if task is asyncio.current_task():
            continue
        out.write(f"--- {task.get_name()}: {task.get_coro()!r}\n")
        task.print_stack(limit=limit, file=out)
    return out.getvalue()


async def stop_within(name: str, stop: Callable[[], Awaitable[None]], timeout: float, log: logging.Logger) -> bool:
    """Run one shutdown step for at most `timeout` seconds; True when it finished.

    A step past its time is left running (shielded: cancelling it could leave half a stop)
    and logged with every task's stack, so the next step still runs."""
    step = asyncio.ensure_future(stop())
    try:
        await asyncio.wait_for(asyncio.shield(step), timeout)
        return True
    except TimeoutError:
        log.error("stopping %s took more than %.0f s; going on without it. Tasks:\n%s", name, timeout, task_stacks())
    except Exception:
        log.exception("stopping %s failed", name)
    return False
