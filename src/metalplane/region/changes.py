"""What changed in the database, fanned out to whoever in this worker listens.

Triggers (migration 0010) send `NOTIFY metalplane_changes, '<table>'`; each
worker's one LISTEN connection (rpc_server.py) hands every payload to its
`ChangeHub`, and the hub wakes its subscribers: the web UI's open pages, over
server-sent events. No subscriber holds a database connection.
"""

from __future__ import annotations

import asyncio

from metalplane.region.db.change_triggers import CHANNEL as CHANNEL  # the triggers' NOTIFY channel

EVERYTHING = "*"  # published after the LISTEN connection came back: anything may have changed


class Subscription:
    def __init__(self, hub: ChangeHub):
        self._hub = hub
        self._pending: set[str] = set()
        self._wake = asyncio.Event()

    def _push(self, table: str) -> None:
        self._pending.add(table)
        self._wake.set()

    async def wait(self, timeout: float) -> set[str]:
        """The tables changed since the last call; empty when `timeout` passed with none."""
        if not self._pending:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                return set()
        changed, self._pending = self._pending, set()
        self._wake.clear()
        return changed

    def close(self) -> None:
        self._hub._subscribers.discard(self)


class ChangeHub:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    def subscribe(self) -> Subscription:
        subscription = Subscription(self)
        self._subscribers.add(subscription)
        return subscription

    def publish(self, table: str) -> None:
        for subscription in list(self._subscribers):
            subscription._push(table)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)
