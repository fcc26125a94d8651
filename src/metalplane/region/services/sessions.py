"""Web UI sessions, kept in PostgreSQL so that any region serves the next request.

The browser holds a random key; the table holds only its SHA-256, so a copy of
the table (a backup, a standby) hands out no live session. Each session has
its own CSRF token. Sessions last `session_length` seconds (MAAS's setting,
default two weeks) and are extended on use once half of that has passed.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import ui_sessions, users
from metalplane.region.services import settings
from metalplane.region.services.rows import first_row
from metalplane.region.services.users import User, user_from_row

KEY_BYTES = 32


@dataclass(frozen=True)
class Session:
    key: str
    user: User
    csrf_token: str
    expires: datetime


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def needs_extension(expires: datetime, now: datetime, length: int) -> bool:
    """Extend once less than half the session length is left: one write per half-life."""
    return expires - now < timedelta(seconds=length / 2)


async def session_length(conn: AsyncConnection) -> int:
    return int(await settings.get_setting(conn, "session_length"))


async def create_session(conn: AsyncConnection, user: User) -> Session:
    key = secrets.token_urlsafe(KEY_BYTES)
    csrf = secrets.token_urlsafe(KEY_BYTES)
    length = await session_length(conn)
    expires = (
        await conn.execute(
            insert(ui_sessions)
            .values(
                key_hash=key_hash(key), user_id=user.id, csrf_token=csrf, expires=func.now() + timedelta(seconds=length)
            )
            .returning(ui_sessions.c.expires)
        )
    ).scalar_one()
    return Session(key, user, csrf, expires)


async def session_for(conn: AsyncConnection, key: str | None) -> Session | None:
    """The live session of an active user for this key, extended if due; None otherwise."""
    if not key or len(key) > 200:
        return None
    row = await first_row(
        conn,
        select(users, ui_sessions.c.csrf_token, ui_sessions.c.expires, func.now().label("now"))
        .join(ui_sessions, ui_sessions.c.user_id == users.c.id)
        .where(
            ui_sessions.c.key_hash == key_hash(key), ui_sessions.c.expires > func.now(), users.c.is_active.is_(True)
        ),
    )
    if row is None:
        return None
    expires = row.expires
    length = await session_length(conn)
    if needs_extension(expires, row.now, length):
        expires = (
            await conn.execute(
                update(ui_sessions)
                .where(ui_sessions.c.key_hash == key_hash(key))
                .values(expires=func.now() + timedelta(seconds=length), updated=func.now())
                .returning(ui_sessions.c.expires)
            )
        ).scalar_one()
    return Session(key, user_from_row(row), row.csrf_token, expires)


async def delete_session(conn: AsyncConnection, key: str) -> None:
    await conn.execute(delete(ui_sessions).where(ui_sessions.c.key_hash == key_hash(key)))


async def purge_expired(conn: AsyncConnection) -> int:
    result = await conn.execute(delete(ui_sessions).where(ui_sessions.c.expires <= func.now()))
    return result.rowcount
