"""The client side's keepalive: is the region still there?

websockets' own keepalive drops a link whose pong is later than a fixed
timeout after its ping. That also drops live links when this side's event loop
lags (a busy rack host, or a thousand simulated racks in one process): the pong
sits unread in the socket while the clock runs. At 1,000 racks such drops fed
on themselves (each one a new TLS link and Register elsewhere).

Here a link is judged by silence, counted only in time this side was awake to
hear: every frame received (a pong, a call, a reply) resets it; each check adds
at most one interval, however late the check ran. A region is declared dead
after `timeout` of such silence, so a frozen region is still noticed within
about `timeout + interval`, but a lagging rack does not condemn a live one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import ConnectionClosed

log = logging.getLogger(__name__)


@dataclass
class Silence:
    """The pure part: how long the peer has been silent, in checked time."""

    interval: float
    timeout: float
    silent: float = 0.0
    last_check: float | None = None

    def check(self, now: float, heard: bool) -> bool:
        """`heard`: anything came from the peer since the previous check. True: dead."""
        if heard or self.last_check is None:
            self.silent = 0.0
        else:
            self.silent += min(now - self.last_check, self.interval)
        self.last_check = now
        return self.silent >= self.timeout


async def keep_alive(ws: Any, heard_since: Callable[[float], bool], interval: float, timeout: float, name: str) -> None:
    """Ping every `interval` and close `ws` once Silence says the peer is dead.
    `heard_since(t)`: whether any frame arrived at or after loop time `t`."""
    loop = asyncio.get_running_loop()
    silence = Silence(interval, timeout)
    last = loop.time()
    silence.check(last, True)
    pong: asyncio.Future[Any] | None = None
    with contextlib.suppress(ConnectionClosed):
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            answered = pong is not None and pong.done() and not pong.cancelled() and pong.exception() is None
            if silence.check(now, answered or heard_since(last)):
                log.warning("%s: nothing heard for %.1f s of keepalive checks; closing the link", name, silence.silent)
                await ws.close(1011, "keepalive timeout")
                return
            last = now
            if pong is None or pong.done():  # one ping outstanding at a time
                pong = await ws.ping()
                pong.add_done_callback(_retrieve)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """A pong that never comes (the link closed) must not log an unread exception."""
    if not future.cancelled():
        future.exception()
