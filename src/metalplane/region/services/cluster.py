"""Cluster-wide settings kept in the `config` table: the shared secret and the cluster uuid."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import config

SECRET_KEY = "rpc_shared_secret"
UUID_KEY = "uuid"


async def get_value(conn: AsyncConnection, name: str) -> Any | None:
    return (await conn.execute(select(config.c.value).where(config.c.name == name))).scalar_one_or_none()


async def get_or_create(conn: AsyncConnection, name: str, make: Any) -> Any:
    """Insert-if-missing then read, so concurrent regions agree on one value."""
    await conn.execute(insert(config).values(name=name, value=make).on_conflict_do_nothing(index_elements=["name"]))
    return await get_value(conn, name)


async def shared_secret(conn: AsyncConnection) -> str:
    return await get_or_create(conn, SECRET_KEY, secrets.token_hex(32))


async def cluster_uuid(conn: AsyncConnection) -> str:
    return await get_or_create(conn, UUID_KEY, str(uuid.uuid4()))
