"""The one front door to a region database: bring its schema up to date, give it
what MAAS always has, make its first admin, and run one transaction from outside
a region process.

Every caller uses these small functions: the supervisor at start-up, `metalplane
init`, `createadmin` and `apikey`, `metalplane region dbupgrade`, and the test
house (its template database and its admins).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.config.region import RegionConfig
from metalplane.region.db.engine import async_engine, sync_engine
from metalplane.region.db.migrate import upgrade
from metalplane.region.db.tables import zones
from metalplane.region.db.transaction import transaction
from metalplane.region.errors import Invalid
from metalplane.region.services import boot_sources, network, package_repositories, resource_pools, users
from metalplane.region.services.zones import DEFAULT_ZONE

T = TypeVar("T")


class AdminExists(Exception):
    """createadmin: the user name is taken."""


def migrate(config: RegionConfig, application_name: str = "metalplane-migrate") -> None:
    """Bring the schema to head; safe while other regions do the same (an advisory lock)."""
    engine = sync_engine(config, application_name)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


async def ensure_defaults(conn: AsyncConnection) -> None:
    """What MAAS always has: the default zone, fabric-0 with its untagged VLAN, the
    default boot source and the main and ports archives."""
    await conn.execute(insert(zones).values(name=DEFAULT_ZONE).on_conflict_do_nothing(index_elements=["name"]))
    await resource_pools.ensure_default_pool(conn)
    await network.ensure_default_fabric(conn)
    await boot_sources.ensure_default_source(conn)
    await package_repositories.ensure_default_archives(conn)


async def create_admin(conn: AsyncConnection, username: str, password: str, email: str, token_name: str) -> str:
    """A new superuser and an API key for it; AdminExists when the name is taken."""
    try:
        user = await users.create_user(conn, username, password, email, is_superuser=True)
    except Invalid:
        raise AdminExists(f"a user named {username!r} already exists") from None
    return (await users.create_token(conn, user.id, token_name)).api_key


async def ensure_admin(
    conn: AsyncConnection, username: str, password: str | None, email: str, token_name: str
) -> tuple[str, str | None]:
    """The defaults, the admin (created when missing, with a generated password when
    none is given) and its first API key. Returns (api key, generated password or None)."""
    await ensure_defaults(conn)
    user = await users.get_user(conn, username)
    generated = None
    if user is None:
        if password is None:
            password = generated = secrets.token_urlsafe(12)
        user = await users.create_user(conn, username, password, email, is_superuser=True)
    tokens = await users.list_tokens(conn, user.id)
    token = tokens[0] if tokens else await users.create_token(conn, user.id, token_name)
    return token.api_key, generated


def run_db(
    config: RegionConfig, work: Callable[[AsyncConnection], Awaitable[T]], application_name: str = "metalplane-cli"
) -> T:
    """Run `work` in one transaction against the region database, from outside a region
    process (a CLI command, a test)."""

    async def go() -> T:
        engine = async_engine(config, application_name, pool_size=1)
        try:
            async with transaction(engine, config) as conn:
                return await work(conn)
        finally:
            await engine.dispose()

    return asyncio.run(go())
