"""One transaction and the consequences of its change: the door every region write goes through.

A service whose change others must hear about (racks refetching DHCP state or
images, BMC owners, rack connection targets) does not act on it in the middle of
its work: it queues the consequence on the transaction it runs in, and the
transaction runs it.

- `on_commit(conn, key, action)`: `action` runs once per `key`, in the same
  transaction, after the body and right before COMMIT. Every consequence the
  region has today is of this kind (a NOTIFY, which PostgreSQL delivers only on
  COMMIT, or rows such as connection targets and BMC owners), so it commits with
  the change or not at all, whichever region or retry runs it.
- `settle(conn)`: run what is queued now, for a service that shows the state
  its consequences leave (a created machine with its BMC's owner).
- `after_commit(conn, key, action)`: `action` runs once per `key` after the
  COMMIT was acknowledged, never after a rollback: for effects outside the
  database (starting a task in this process). A failure there is logged, not
  raised: the change it follows is already committed.

A request the API replays (a database failover before COMMIT, see app.py) runs
in a new transaction: what the failed attempt queued was rolled back with it or
never ran, so nothing fires twice. `TxLog` records, for that retry decision,
the moment COMMIT goes out.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from metalplane.config.region import RegionConfig

log = logging.getLogger(__name__)

Consequence = Callable[["Transaction"], Awaitable[Any]]
Effect = Callable[[], Awaitable[Any]]


@dataclass
class TxLog:
    """What one attempt at an action did, for the retry decision.

    `commit_sent` turns true just before a transaction's COMMIT goes out, or
    when the action starts work outside the database (`outside_effect`): from
    then on a lost connection leaves the outcome unknown, so a write must not
    be replayed (app.py answers 503 instead).
    """

    commit_sent: bool = False
    committed: int = 0

    def outside_effect(self) -> None:
        """The action is about to act outside the database (e.g. power a machine): never replay it."""
        self.commit_sent = True


@dataclass(eq=False)
class Transaction:
    """An open transaction and what it must do before and after it commits."""

    conn: AsyncConnection
    config: RegionConfig | None  # the region's settings, for consequences that need them
    consequences: dict[Hashable, Consequence] = field(default_factory=dict)  # pending, in the order queued
    effects: dict[Hashable, Effect] = field(default_factory=dict)

    @property
    def region_config(self) -> RegionConfig:
        if self.config is None:
            raise RuntimeError("this consequence needs the region's configuration: open the transaction with it")
        return self.config

    async def run_consequences(self) -> None:
        """The pending ones, in the order queued; one queued while they run (a consequence
        of a consequence) runs too."""
        while self.consequences:
            key = next(iter(self.consequences))
            await self.consequences.pop(key)(self)

    async def run_effects(self) -> None:
        for key, effect in self.effects.items():
            try:
                await effect()
            except Exception:
                log.exception("after commit: %r failed (the change itself is committed)", key)


_open: dict[AsyncConnection, Transaction] = {}


def current(conn: AsyncConnection) -> Transaction:
    found = _open.get(conn)
    if found is None:
        raise RuntimeError(
            "a change with consequences must run in a transaction opened by "
            "metalplane.region.db.transaction.transaction()"
        )
    return found


def region_config(conn: AsyncConnection) -> RegionConfig:
    """The settings of the region this transaction runs in (rpc_connections_per_rack...)."""
    return current(conn).region_config


def on_commit(conn: AsyncConnection, key: Hashable, action: Consequence) -> None:
    """Run `action` once per `key`, in this transaction, just before it commits."""
    current(conn).consequences.setdefault(key, action)


async def settle(conn: AsyncConnection) -> None:
    """Run the consequences queued so far, now, in this transaction: for a service that
    shows the state they leave (a machine's BMC owner after the owners' recheck). One
    queued again afterwards runs again at COMMIT."""
    await current(conn).run_consequences()


def after_commit(conn: AsyncConnection, key: Hashable, effect: Effect) -> None:
    """Run `effect` once per `key`, after this transaction has committed (never after a rollback)."""
    current(conn).effects.setdefault(key, effect)


@contextlib.asynccontextmanager
async def transaction(
    engine: AsyncEngine, config: RegionConfig | None = None, txlog: TxLog | None = None
) -> AsyncIterator[AsyncConnection]:
    """One transaction: the body and its consequences commit together or not at all.

    A database failure before COMMIT is sent rolls everything back, so the
    caller may run the whole action again; `txlog` records when it is sent.
    """
    async with engine.begin() as conn:
        tx = _open[conn] = Transaction(conn, config)
        try:
            yield conn
            await tx.run_consequences()
        finally:
            del _open[conn]
        if txlog is not None:
            txlog.commit_sent = True  # begin() commits on the way out
    if txlog is not None:
        txlog.committed += 1
    await tx.run_effects()


@dataclass
class Work:
    """One unit of work (an API request, a UI action, a command): the database, the
    region's settings, and what the work has done so far (for the retry decision).
    Services that need several transactions, or act outside the database between
    them, take this rather than a connection."""

    engine: AsyncEngine
    config: RegionConfig | None = None
    txlog: TxLog = field(default_factory=TxLog)

    def tx(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return transaction(self.engine, self.config, self.txlog)

    def acting_outside(self) -> None:
        """About to act outside the database (e.g. power a machine): the work is never replayed."""
        self.txlog.outside_effect()

    @property
    def region_config(self) -> RegionConfig:
        if self.config is None:
            raise RuntimeError("this work needs the region's configuration")
        return self.config
