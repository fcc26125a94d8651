"""Users' SSH public keys (MAAS's account/prefs/sshkeys/), added by hand or imported
from Launchpad or GitHub, and SSL keys (PEM certificates, account/prefs/sslkeys/).

Keys are parsed and re-encoded before they are stored (accountrules), so garbage
never reaches a machine's authorized_keys. An import fetches over HTTPS with a
bounded timeout and outside any transaction; a site without internet gets one
503 line saying which host could not be reached.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass

import httpx
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import sshkeys, sslkeys, users
from metalplane.region.db.transaction import Work
from metalplane.region.errors import Invalid, NotFound, PermissionDenied, Refused, Unavailable, raise_if
from metalplane.region.services import accountrules
from metalplane.region.services.rows import Row, delete_row, first_row, insert_unique, one, rows
from metalplane.region.services.users import User

# Where imports fetch from; overridable for mirrors (and tests) as MAAS's image URL is.
LAUNCHPAD_URL = "https://launchpad.net/"
GITHUB_URL = "https://api.github.com/"
IMPORT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
IMPORT_DEADLINE = 15.0  # seconds for the whole fetch, whatever the server does
MAX_IMPORT_BYTES = 1 << 20
PROTOCOL_NAMES = {"lp": "Launchpad", "gh": "Github"}


def keysource(row: Row) -> str:
    return f"{row['protocol']}:{row['auth_id']}" if row["protocol"] else ""


# -- SSH keys -------------------------------------------------------------------------


async def list_ssh_keys(conn: AsyncConnection, user: User) -> list[Row]:
    return rows(await conn.execute(select(sshkeys).where(sshkeys.c.user_id == user.id).order_by(sshkeys.c.id)))


async def get_ssh_key(conn: AsyncConnection, key_id: int) -> Row:
    """Any user may read any key by id, as in MAAS."""
    return one(await conn.execute(select(sshkeys).where(sshkeys.c.id == key_id)), "SSHKey")


async def _owner(conn: AsyncConnection, by: User, username: str | None) -> User:
    """The user a key is added for: the caller, or (admins only) the named user."""
    if username is None:
        return by
    if not by.is_superuser:
        raise Refused("Only administrators can specify a user when creating an SSH key.")
    row = await first_row(conn, select(users).where(users.c.username == username))
    if row is None:
        raise Refused("Supplied username does not match any current users.")
    return User(row.id, row.username, row.email, row.is_superuser)


async def create_ssh_key(conn: AsyncConnection, by: User, key: str | None, username: str | None = None) -> Row:
    owner = await _owner(conn, by, username)
    normalised, errors = accountrules.check_ssh_key(key or "")
    raise_if(errors)
    key_id = await insert_unique(
        conn,
        sshkeys,
        "key",
        accountrules.DUPLICATE_KEY,
        user_id=owner.id,
        key=normalised,
        digest=accountrules.key_digest(normalised),
    )
    return await get_ssh_key(conn, key_id)


async def delete_ssh_key(conn: AsyncConnection, by: User, key_id: int) -> None:
    key = await get_ssh_key(conn, key_id)
    if key["user_id"] != by.id:
        raise PermissionDenied("Can't delete a key you don't own.")
    await delete_row(conn, sshkeys, key_id)


def source_url(protocol: str, auth_id: str) -> str:
    if protocol == "gh":
        return os.environ.get("METALPLANE_GITHUB_URL", GITHUB_URL).rstrip("/") + f"/users/{auth_id}/keys"
    return os.environ.get("METALPLANE_LAUNCHPAD_URL", LAUNCHPAD_URL).rstrip("/") + f"/~{auth_id}/+sshkeys"


def keys_in(protocol: str, body: bytes) -> list[str]:
    """Launchpad answers one key per line; GitHub a JSON list of {"key": ...}."""
    if protocol == "gh":
        try:
            data = json.loads(body)
        except ValueError:
            raise Unavailable("Unable to import SSH keys: GitHub's answer is not JSON.") from None
        if not isinstance(data, list):
            raise Unavailable("Unable to import SSH keys: GitHub's answer is not a list of keys.")
        return [item["key"] for item in data if isinstance(item, dict) and isinstance(item.get("key"), str)]
    return [line.strip() for line in body.decode("utf-8", errors="replace").splitlines() if line.strip()]


async def fetch_keys(protocol: str, auth_id: str) -> list[str]:
    """The public keys `auth_id` has on Launchpad or GitHub. Unavailable (503) when the
    service cannot be reached or answered strangely in time; Invalid when the user
    has no keys or does not exist."""
    url = source_url(protocol, auth_id)
    service = PROTOCOL_NAMES[protocol]
    host = httpx.URL(url).host

    async def get() -> tuple[int, bytes]:
        async with httpx.AsyncClient(timeout=IMPORT_TIMEOUT, follow_redirects=True, trust_env=True) as client:
            async with client.stream("GET", url) as response:
                body = bytearray()
                async for piece in response.aiter_bytes():
                    body += piece
                    if len(body) > MAX_IMPORT_BYTES:
                        raise Unavailable(f"Unable to import SSH keys: {host} sent more than {MAX_IMPORT_BYTES} bytes.")
                return response.status_code, bytes(body)

    try:
        status, body = await asyncio.wait_for(get(), IMPORT_DEADLINE)
    except (httpx.HTTPError, TimeoutError) as exc:
        reason = type(exc).__name__ + (f": {exc}" if str(exc) else "")
        reason = " ".join(reason.split())  # one line, whatever the library said
        raise Unavailable(f"Unable to import SSH keys: {host} could not be reached ({reason}).") from None
    if status in (404, 410):
        raise Invalid.field("auth_id", f"Unable to import SSH keys. {service} user {auth_id} doesn't exist.")
    if status != 200:
        raise Unavailable(f"Unable to import SSH keys: {host} answered HTTP {status}.")
    keys = keys_in(protocol, body)
    if not keys:
        raise Invalid.field(
            "auth_id", f"Unable to import SSH keys. There are no SSH keys for {protocol} user {auth_id}."
        )
    return keys


@dataclass(frozen=True)
class Imported:
    keys: list[Row]  # the imported keys, with the ones imported before


async def import_ssh_keys(work: Work, by: User, keysource_text: str | None) -> Imported:
    """`sshkeys import keysource=gh:octocat`: fetch (no transaction open), check every
    key, then store the new ones in one transaction."""
    try:
        protocol, auth_id = accountrules.parse_keysource(keysource_text)
    except accountrules.BadAuthId as exc:
        raise Invalid.field("keysource", str(exc)) from None
    except ValueError as exc:
        raise Refused(str(exc)) from None  # MAAS's plain-text answers
    fetched = await fetch_keys(protocol, auth_id)
    normalised = []
    for key in fetched:
        try:
            normalised.append(accountrules.normalise_ssh_key(key))
        except accountrules.BadKey as exc:
            raise Invalid.field("key", f"Invalid SSH public key: {exc}") from None
    async with work.tx() as conn:
        existing = {
            r["digest"]
            for r in rows(
                await conn.execute(
                    select(sshkeys).where(
                        sshkeys.c.user_id == by.id, sshkeys.c.protocol == protocol, sshkeys.c.auth_id == auth_id
                    )
                )
            )
        }
        for key in dict.fromkeys(normalised):
            digest = accountrules.key_digest(key)
            if digest not in existing:
                await conn.execute(
                    insert(sshkeys).values(user_id=by.id, key=key, digest=digest, protocol=protocol, auth_id=auth_id)
                )
        return Imported(
            rows(
                await conn.execute(
                    select(sshkeys)
                    .where(sshkeys.c.user_id == by.id, sshkeys.c.protocol == protocol, sshkeys.c.auth_id == auth_id)
                    .order_by(sshkeys.c.id)
                )
            )
        )


# -- SSL keys -------------------------------------------------------------------------


async def list_ssl_keys(conn: AsyncConnection, user: User) -> list[Row]:
    return rows(await conn.execute(select(sslkeys).where(sslkeys.c.user_id == user.id).order_by(sslkeys.c.id)))


async def get_ssl_key(conn: AsyncConnection, by: User, key_id: int, verb: str = "get") -> Row:
    row = await first_row(conn, select(sslkeys).where(sslkeys.c.id == key_id))
    if row is None:
        raise NotFound("SSLKey")
    if row.user_id != by.id:
        raise PermissionDenied(f"Can't {verb} a key you don't own.")
    return dict(row._mapping)


async def create_ssl_key(conn: AsyncConnection, by: User, key: str | None) -> Row:
    text = key or ""
    raise_if(accountrules.check_ssl_key(text))
    key_id = await insert_unique(
        conn, sslkeys, "key", accountrules.DUPLICATE_KEY, user_id=by.id, key=text, digest=accountrules.key_digest(text)
    )
    return await get_ssl_key(conn, by, key_id)


async def delete_ssl_key(conn: AsyncConnection, by: User, key_id: int) -> None:
    await get_ssl_key(conn, by, key_id, verb="delete")
    await delete_row(conn, sslkeys, key_id)
