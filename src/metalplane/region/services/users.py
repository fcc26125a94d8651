"""Users, passwords and API tokens (OAuth 1.0 PLAINTEXT, as MAAS)."""

from __future__ import annotations

import asyncio
import functools
import secrets
import string
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region import validation
from metalplane.region.db.tables import ipranges, nodes, tokens, users
from metalplane.region.errors import Invalid, NotFound, Refused, raise_if
from metalplane.region.services import accountrules
from metalplane.region.services.rows import first_row, only_row

KEY_CHARS = string.ascii_letters + string.digits
KEY_SIZE = 18
SECRET_SIZE = 32
GENERIC_CONSUMER = "MAAS consumer"  # MAAS's name for a token created without one
_hasher = PasswordHasher()


@dataclass(frozen=True)
class User:
    id: int
    username: str
    email: str
    is_superuser: bool


@dataclass(frozen=True)
class Token:
    consumer_key: str
    token_key: str
    token_secret: str
    name: str

    @property
    def api_key(self) -> str:
        return f"{self.consumer_key}:{self.token_key}:{self.token_secret}"


def random_key(size: int) -> str:
    return "".join(secrets.choice(KEY_CHARS) for _ in range(size))


@functools.cache
def _dummy_hash() -> str:
    """Verified when the user does not exist, so that a wrong name takes as long as a
    wrong password. Made on first use: a hash costs tens of milliseconds."""
    return _hasher.hash(secrets.token_hex(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def user_from_row(row) -> User:
    return User(row.id, row.username, row.email, row.is_superuser)


async def get_user(conn: AsyncConnection, username: str) -> User | None:
    row = await first_row(conn, select(users).where(users.c.username == username))
    return user_from_row(row) if row else None


async def create_user(
    conn: AsyncConnection, username: str, password: str, email: str = "", is_superuser: bool = False
) -> User:
    """A new account, under a name nobody has, checked by MAAS's (Django's) rules."""
    raise_if({**accountrules.check_username(username), **accountrules.check_email(email)})
    validation.check_text(password, "password", 4096)
    if await get_user(conn, username) is not None:
        raise Invalid.field("username", "A user with that username already exists.")
    row = await only_row(
        conn,
        insert(users)
        .values(username=username, password=hash_password(password), email=email, is_superuser=is_superuser)
        .returning(users),
    )
    return user_from_row(row)


async def authenticate(conn: AsyncConnection, username: str, password: str) -> User | None:
    """The active user with this username and password, or None.

    argon2 takes tens of milliseconds on purpose: it runs in a thread so that
    the worker's event loop keeps serving everyone else meanwhile.
    """
    row = await first_row(conn, select(users).where(users.c.username == username))
    hashed = row.password if row is not None else _dummy_hash()
    matches = await asyncio.to_thread(check_password, hashed, password)
    if row is None or not matches or not row.is_active:
        return None
    return user_from_row(row)


async def token_for_consumer(conn: AsyncConnection, user_id: int, consumer: str | None) -> Token:
    """As MAAS's accounts/authenticate/: the user's first token (named `consumer`
    when given), created when there is none."""
    query = select(tokens).where(tokens.c.user_id == user_id).order_by(tokens.c.id).limit(1)
    if consumer is not None:
        query = query.where(tokens.c.name == consumer)
    row = await first_row(conn, query)
    if row is None:
        return await create_token(conn, user_id, consumer or GENERIC_CONSUMER)
    return Token(row.consumer_key, row.token_key, row.token_secret, row.name)


async def show_user(conn: AsyncConnection, username: str) -> User:
    found = await get_user(conn, username)
    if found is None:
        raise NotFound("User")
    return found


# What a user can own that keeps it from being deleted (MAAS: nodes, static IP
# addresses, IP ranges): (column pointing at the owner, MAAS's words for it).
OWNED = [(ipranges.c.user_id, "IP range(s)"), (nodes.c.owner_id, "node(s)")]


async def remove_user(conn: AsyncConnection, username: str, by: User, transfer_to: str | None = None) -> None:
    """`users delete` by an admin, who may not delete themselves. What the user owns
    goes to `transfer_to` first when given; anything still owned refuses the delete.
    Their keys, files and tokens go with them. A user that does not exist is already
    gone (MAAS answers 204 too)."""
    if username == by.username:
        raise Refused("An administrator cannot self-delete.")
    user = await first_row(conn, select(users).where(users.c.username == username).with_for_update())
    if user is None:
        return
    if transfer_to:
        heir = await show_user(conn, transfer_to)
        for column, _ in OWNED:
            await conn.execute(update(column.table).where(column == user.id).values({column.name: heir.id}))
    owned = []
    for column, words in OWNED:
        count = (await conn.execute(select(func.count()).where(column == user.id))).scalar_one()
        if count:
            owned.append(f"{count} {words}")
    if owned:
        raise Refused(f"User {username} cannot be deleted: {', '.join(owned)} are still allocated")
    await delete_user(conn, username)


async def create_token(conn: AsyncConnection, user_id: int, name: str | None = None) -> Token:
    """A new API token; MAAS names one created without a name GENERIC_CONSUMER."""
    name = name or GENERIC_CONSUMER
    token = Token(random_key(KEY_SIZE), random_key(KEY_SIZE), random_key(SECRET_SIZE), name)
    await conn.execute(
        insert(tokens).values(
            user_id=user_id,
            name=name,
            consumer_key=token.consumer_key,
            token_key=token.token_key,
            token_secret=token.token_secret,
        )
    )
    return token


async def list_tokens(conn: AsyncConnection, user_id: int) -> list[Token]:
    rows = await conn.execute(select(tokens).where(tokens.c.user_id == user_id).order_by(tokens.c.id))
    return [Token(r.consumer_key, r.token_key, r.token_secret, r.name) for r in rows]


async def delete_token(conn: AsyncConnection, user_id: int, token_key: str) -> None:
    result = await conn.execute(delete(tokens).where(tokens.c.user_id == user_id, tokens.c.token_key == token_key))
    if result.rowcount == 0:
        raise NotFound("Token")


async def rename_token(conn: AsyncConnection, user_id: int, token: str, name: str) -> None:
    """`update_token_name`: `token` is the token key or the whole API key."""
    parts = token.split(":")
    token_key = parts[1] if len(parts) == 3 else token
    result = await conn.execute(
        update(tokens)
        .where(tokens.c.user_id == user_id, tokens.c.token_key == token_key)
        .values(name=name, updated=func.now())
    )
    if result.rowcount == 0:
        raise NotFound("Token")


async def user_for_token(conn: AsyncConnection, consumer_key: str, token_key: str) -> tuple[User, str] | None:
    """The token's user and its secret, or None."""
    row = await first_row(
        conn,
        select(users, tokens.c.token_secret)
        .join(tokens, tokens.c.user_id == users.c.id)
        .where(tokens.c.token_key == token_key, tokens.c.consumer_key == consumer_key, users.c.is_active.is_(True)),
    )
    return (user_from_row(row), row.token_secret) if row else None


async def count_users(conn: AsyncConnection) -> int:
    return (await conn.execute(select(func.count()).select_from(users))).scalar_one()


async def list_users(conn: AsyncConnection) -> list[User]:
    return [user_from_row(r) for r in await conn.execute(select(users).order_by(users.c.username))]


async def delete_user(conn: AsyncConnection, username: str) -> bool:
    result = await conn.execute(delete(users).where(users.c.username == username))
    return result.rowcount > 0
