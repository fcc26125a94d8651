"""A durable, ordered, at-least-once queue of events for the region (SQLite).

What the rack reports while no region may be reachable (DHCP lease events,
network discovery observations) waits here, on disk, and is replayed in
order when a region is back::

    async for batch in queue.batches(max_events=500):
        await region.send(batch)            # may fail: call queue.rewind()
        queue.ack(batch[-1]["id"])

Each event is a JSON-able dict stored with an increasing ``id`` (unique per
queue). ``ack(upto)`` deletes every event with id <= upto. Unacked events stay
on disk and come again after ``rewind()`` or in a new ``batches()`` iterator
(e.g. after the rack restarts). The database runs in WAL mode with
``synchronous=FULL``: an event stored is an event kept across a crash.

Producers add events with `append`, or inside `transaction` with `insert` when
other state of theirs (a file cursor, what they saw last) must change in the
same transaction (`leases.LeaseQueue` does so); subclasses add their tables
through `schema`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any


class EventQueue:
    def __init__(self, path: str | Path, schema: str = ""):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(
            "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);" + schema
        )
        self._wakeup = asyncio.Event()
        self._delivered = 0  # highest id handed out by batches() since the last rewind
        self._inserted = 0  # events inserted in the open transaction
        self._closed = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._wakeup.set()
            self.db.close()

    # producer side

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; consumers are woken when it committed new events."""
        self.db.execute("BEGIN IMMEDIATE")
        self._inserted = 0
        try:
            yield self.db
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        if self._inserted:
            self._wakeup.set()

    def insert(self, event: dict[str, Any]) -> None:
        """Store one event (inside `transaction`)."""
        self.db.execute("INSERT INTO events (body) VALUES (?)", (json.dumps(event),))
        self._inserted += 1

    def append(self, events: Iterable[dict[str, Any]]) -> int:
        """Store events in one transaction; returns how many."""
        with self.transaction():
            for event in events:
                self.insert(event)
            return self._inserted

    # consumer side

    def pending(self, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """Stored (unacked) events with id > after, oldest first."""
        rows = self.db.execute(
            "SELECT id, body FROM events WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
        ).fetchall()
        return [{"id": i, **json.loads(body)} for i, body in rows]

    def __len__(self) -> int:
        return self.db.execute("SELECT count(*) FROM events").fetchone()[0]

    def ack(self, upto: int) -> int:
        """The consumer has every event with id <= upto: delete them. Returns how many."""
        cur = self.db.execute("DELETE FROM events WHERE id <= ?", (upto,))
        return cur.rowcount

    def rewind(self) -> None:
        """Deliver every unacked event again (e.g. the region link dropped mid-batch)."""
        self._delivered = 0
        self._wakeup.set()

    async def batches(self, max_events: int = 500, linger: float = 0.05) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield batches of events not yet handed out, waiting for more when none is left.

        Starts with the oldest unacked event. `linger` seconds after the first new
        event, to gather a batch under load.
        """
        self._delivered = 0
        while not self._closed:
            batch = self.pending(self._delivered, max_events)
            if batch:
                self._delivered = batch[-1]["id"]
                yield batch
                continue
            self._wakeup.clear()
            if self.pending(self._delivered, 1):
                continue
            await self._wakeup.wait()
            if linger:
                await asyncio.sleep(linger)
