"""Failed logins per user and per address, per minute, shared by every region.

A password is checked only while both its user and the address it comes from
are under their limit of failures in the current one-minute window; past it the
web UI's login and accounts/authenticate/ answer 429 with Retry-After. Only
failures count, so a person who types their password right is never held up by
an attacker guessing someone else's. The counters live in PostgreSQL
(`login_failures`), so spreading guesses over regions does not help.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import login_failures
from metalplane.region.errors import Throttled
from metalplane.region.services import users
from metalplane.region.services.users import User

WINDOW = timedelta(minutes=1)
_EXPIRED = f"login_failures.window_start <= now() - interval '{int(WINDOW.total_seconds())} seconds'"
PER_USER = 5
PER_ADDRESS = 20


@dataclass(frozen=True)
class Keys:
    user: str
    address: str

    @classmethod
    def of(cls, username: str, address: str) -> Keys:
        return cls("user:" + username[:150], "addr:" + address[:64])

    def limits(self) -> dict[str, int]:
        return {self.user: PER_USER, self.address: PER_ADDRESS}


def retry_after(window_start: datetime, now: datetime) -> int:
    """Whole seconds until the window that is full ends (at least 1)."""
    return max(1, int((window_start + WINDOW - now).total_seconds() + 0.999))


async def blocked_for(conn: AsyncConnection, keys: Keys) -> int | None:
    """Seconds to wait when the user or the address has used up its failures, else None."""
    limits = keys.limits()
    rows = (
        await conn.execute(
            select(login_failures.c.key, login_failures.c.failures, login_failures.c.window_start, func.now()).where(
                login_failures.c.key.in_(list(limits)), login_failures.c.window_start > func.now() - WINDOW
            )
        )
    ).all()
    waits = [retry_after(r.window_start, r.now) for r in rows if r.failures >= limits[r.key]]
    return max(waits) if waits else None


async def record_failure(conn: AsyncConnection, keys: Keys) -> None:
    """One more failure for the user and the address; a window older than a minute restarts."""
    stale = login_failures.c.window_start <= func.now() - WINDOW
    for key in keys.limits():
        statement = insert(login_failures).values(key=key, failures=1)
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=["key"],
                set_={
                    "failures": text(f"CASE WHEN {_EXPIRED} THEN 1 ELSE login_failures.failures + 1 END"),
                    "window_start": text(f"CASE WHEN {_EXPIRED} THEN now() ELSE login_failures.window_start END"),
                },
            )
        )
    await conn.execute(delete(login_failures).where(stale, login_failures.c.key.notin_(list(keys.limits()))))


async def authenticate(conn: AsyncConnection, username: str, password: str, address: str) -> User | None:
    """users.authenticate behind the limits: Throttled while the user or the address is
    over its failures (the password is then not even checked); a failure is counted."""
    keys = Keys.of(username, address)
    wait = await blocked_for(conn, keys)
    if wait is not None:
        raise Throttled(f"Too many failed logins; try again in {wait} seconds.", wait)
    user = await users.authenticate(conn, username, password)
    if user is None:
        await record_failure(conn, keys)
    return user
