"""Lease events for the region: read from Kea's memfile, kept in a durable queue.

Why tail the memfile CSV
------------------------
Kea 2.2's open-source hooks offer no lease notification but ``run_script``,
which forks a process per lease event (ISC's own numbers: it divides
throughput). The forensic-logging hook is not in the open-source build here.
But with memfile persistence Kea already appends one CSV record to its lease
file for every lease change, flushed at once, before it answers the client.
Reading that file costs Kea nothing, needs no extra process, and is exact:

* a record with ``state`` 0 and ``valid_lifetime`` > 0: a lease was given,
  renewed or updated (also leases replicated from an HA partner) -> ``commit``;
* ``state`` 2 (expired-reclaimed): Kea's reclamation found it expired -> ``expiry``;
* ``state`` 1 (declined): the client declined it -> ``decline``;
* ``valid_lifetime`` 0: the lease was deleted (DHCPRELEASE, ``lease4-del``,
  or the flush of a long-reclaimed lease). A deletion of a lease that was
  active is a ``release``; the flush of an already expired one says nothing new.

A record equal to what was last seen for that address (same MAC, expiry and
state) is a duplicate and emits nothing: HA sync rewrites leases the server
already has, a restart re-reads the file, a seeded file repeats records. The
last record per address is kept in the queue database, so this survives
restarts too.

Rotation: LFC (lease file cleanup, hourly) renames ``leases4.csv`` to
``leases4.csv.2`` and starts a new ``leases4.csv``; kea-lfc then compacts
``.1`` + ``.2`` into ``.1``. The tailer keeps its open file descriptor, reads the
old file to its end when a new inode appears under the name (Kea closed the
old one before creating the new one), then follows the new file from offset 0.
If the rack was down across a rotation, the saved (inode, offset) no longer
matches: the new file is read from its start, and deduplication keeps that
from repeating events.

The durable queue
-----------------
A SQLite database (WAL, synchronous=FULL) holds the events, each with a
increasing ``id``, and each tailer's (inode, offset) cursor, written in the
same transaction as the events read up to it: an event is never lost nor
read twice from the file across a crash. Consumers::

    async for batch in service.events.batches(max_events=500):
        await region.send_leases(batch)        # may fail: call events.rewind()
        service.events.ack(batch[-1]["id"])

``ack(upto)`` deletes every event with id <= upto. Unacked events stay on disk
and come again after ``rewind()`` or in a new ``batches()`` iterator (e.g. after
the rack restarts): delivery is at least once. Each event carries ``id``
(unique per rack, increasing) and ``key``, a digest of the lease change itself
(action, ip, mac, expiry, state), equal on both racks of an HA pair for the
same change, so the region can drop the copy it already has.

Event dict: ``{"id", "key", "action": "commit"|"expiry"|"release"|"decline",
"ip", "mac", "client_id", "hostname", "subnet_id", "lease_time",
"expires" (unix time), "cltt" (client last transmission time), "instance",
"time" (when the rack read it)}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Any

from metalplane.rack.event_queue import EventQueue

log = logging.getLogger(__name__)

ACTIONS = ("commit", "expiry", "release", "decline")


class LeaseQueue(EventQueue):
    """Lease events, with each tailer's file cursor and the last record seen per address
    stored in the same transaction as the events read up to it."""

    def __init__(self, path: str | Path):
        super().__init__(
            path,
            schema="""
            CREATE TABLE IF NOT EXISTS cursors (
                source TEXT PRIMARY KEY, dev INTEGER, inode INTEGER, offset INTEGER);
            CREATE TABLE IF NOT EXISTS known (
                ip TEXT PRIMARY KEY, mac TEXT, expires INTEGER, state INTEGER);
        """,
        )

    # producer side

    def cursor(self, source: str) -> tuple[int, int, int] | None:
        row = self.db.execute("SELECT dev, inode, offset FROM cursors WHERE source=?", (source,)).fetchone()
        return tuple(row) if row else None  # type: ignore[return-value]

    def known(self, ip: str) -> tuple[str, int, int] | None:
        row = self.db.execute("SELECT mac, expires, state FROM known WHERE ip=?", (ip,)).fetchone()
        return tuple(row) if row else None  # type: ignore[return-value]

    def record(self, source: str, records: list[dict[str, Any]], cursor: tuple[int, int, int]) -> int:
        """Turn lease records into events and store them with the new cursor, atomically.

        Returns the number of events added.
        """
        added = 0
        now = time.time()
        with self.transaction() as db:
            for rec in records:
                event = self._classify(rec)
                if event is None:
                    continue
                event["instance"] = source
                event["time"] = round(now, 3)
                self.insert(event)
                added += 1
            db.execute(
                "INSERT INTO cursors (source, dev, inode, offset) VALUES (?,?,?,?) "
                "ON CONFLICT(source) DO UPDATE SET dev=excluded.dev, inode=excluded.inode, "
                "offset=excluded.offset",
                (source, *cursor),
            )
        return added

    def _classify(self, rec: dict[str, Any]) -> dict[str, Any] | None:
        ip, mac, state = rec["ip"], rec["mac"], rec["state"]
        expires, lease_time = rec["expires"], rec["lease_time"]
        prev = self.db.execute("SELECT mac, expires, state FROM known WHERE ip=?", (ip,)).fetchone()
        if lease_time == 0:  # deleted
            if prev is None:
                return None
            self.db.execute("DELETE FROM known WHERE ip=?", (ip,))
            if prev[2] != 0:  # flush of a reclaimed/declined lease
                return None
            action = "release"
            mac = mac or prev[0]
        else:
            if prev is not None and tuple(prev) == (mac, expires, state):
                return None  # the same lease again
            self.db.execute(
                "INSERT INTO known (ip, mac, expires, state) VALUES (?,?,?,?) ON CONFLICT(ip) "
                "DO UPDATE SET mac=excluded.mac, expires=excluded.expires, state=excluded.state",
                (ip, mac, expires, state),
            )
            named = {0: "commit", 1: "decline", 2: "expiry"}.get(state)
            if named is None:
                return None
            action = named
        key = hashlib.sha256(f"{action}|{ip}|{mac}|{expires}|{state}".encode()).hexdigest()[:24]
        return {
            "key": key,
            "action": action,
            "ip": ip,
            "mac": mac,
            "client_id": rec.get("client_id") or None,
            "hostname": rec.get("hostname") or None,
            "subnet_id": rec.get("subnet_id"),
            "lease_time": lease_time,
            "expires": expires,
            "cltt": expires - lease_time,
        }


# --------------------------------------------------------------------------- the memfile tailer


def parse_header(line: str) -> list[str]:
    return [c.strip() for c in line.strip().split(",")]


def _unescape(value: str) -> str:
    return value.replace("&#x2c", ",")


def parse_record(columns: list[str], line: str) -> dict[str, Any] | None:
    """One Kea v4 memfile CSV line -> {ip, mac, client_id, lease_time, expires, subnet_id, hostname, state}."""
    parts = line.rstrip("\r\n").split(",")
    if len(parts) != len(columns):
        return None
    row = dict(zip(columns, parts))
    try:
        return {
            "ip": row["address"],
            "mac": row.get("hwaddr", "").lower(),
            "client_id": row.get("client_id", ""),
            "lease_time": int(row["valid_lifetime"]),
            "expires": int(row["expire"]),
            "subnet_id": int(row.get("subnet_id") or 0),
            "hostname": _unescape(row.get("hostname", "")),
            "state": int(row.get("state") or 0),
        }
    except (KeyError, ValueError):
        return None


class LeaseTailer:
    """Follows one instance's memfile lease file into the queue."""

    def __init__(self, source: str, path: str | Path, queue: LeaseQueue, *, interval: float = 0.25):
        self.source = source
        self.path = Path(path)
        self.queue = queue
        self.interval = interval
        self._f: Any = None
        self._ident: tuple[int, int] | None = None
        self._offset = 0
        self._columns: list[str] | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"leases-{self.source}")

    async def stop(self) -> None:
        """Read what is left, then stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            self.poll()
        if self._f is not None:
            self._f.close()
            self._f = None

    async def _run(self) -> None:
        while True:
            try:
                self.poll()
            except Exception:  # keep following; log and retry
                log.exception("reading lease file %s", self.path)
            await asyncio.sleep(self.interval)

    def _open(self) -> bool:
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return False
        st = os.fstat(f.fileno())
        ident = (st.st_dev, st.st_ino)
        saved = self.queue.cursor(self.source)
        self._f, self._ident, self._columns = f, ident, None
        self._offset = 0
        if saved is not None and (saved[0], saved[1]) == ident and saved[2] <= st.st_size:
            # resume; the header is the file's first line
            self._columns = parse_header(f.readline().decode(errors="replace"))
            self._offset = saved[2]
        return True

    def poll(self) -> int:
        """Read new complete records; returns the number of events queued."""
        added = 0
        if self._f is None and not self._open():
            return 0
        added += self._read()
        try:
            st = os.stat(self.path)
            current = (st.st_dev, st.st_ino)
        except FileNotFoundError:
            current = None
        if current != self._ident and current is not None:
            # rotated (LFC): the old file is closed by Kea; finish it, then follow the new one
            added += self._read()
            self._f.close()
            self._f = None
            if self._open():
                added += self._read()
        return added

    def _read(self) -> int:
        f = self._f
        f.seek(self._offset)
        data = f.read()
        if not data:
            return 0
        end = data.rfind(b"\n")
        if end < 0:
            return 0
        chunk = data[: end + 1]
        records = []
        for raw in chunk.decode(errors="replace").splitlines():
            if not raw.strip():
                continue
            if self._columns is None or raw.startswith("address,"):
                self._columns = parse_header(raw)
                continue
            rec = parse_record(self._columns, raw)
            if rec is not None:
                records.append(rec)
        self._offset += len(chunk)
        assert self._ident is not None
        return self.queue.record(self.source, records, (*self._ident, self._offset))
