"""Connections to PostgreSQL from a region config: one host or several (HA)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy import Engine, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from metalplane.config.region import RegionConfig

CONNECT_TIMEOUT = 5


def split_host(entry: str, default_port: int) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]:port` or a socket directory."""
    if entry.startswith("/"):
        return entry, default_port
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if entry.count(":") == 1:
        host, port = entry.split(":")
        return host, int(port)
    return entry, default_port


def conninfo(config: RegionConfig, application_name: str = "metalplane") -> str:
    """libpq conninfo that lands on whichever listed host is the writable primary."""
    pairs = [split_host(h, config.database_port) for h in config.database_hosts]
    params: dict[str, Any] = {
        "host": ",".join(h for h, _ in pairs),
        "port": ",".join(str(p) for _, p in pairs),
        "dbname": config.database_name,
        "user": config.database_user,
        "connect_timeout": CONNECT_TIMEOUT,
        "application_name": application_name,
        "target_session_attrs": "read-write",
    }
    if config.database_pass:
        params["password"] = config.database_pass
    return make_conninfo(**params)


def sync_engine(config: RegionConfig, application_name: str = "metalplane") -> Engine:
    info = conninfo(config, application_name)
    return create_engine(
        "postgresql+psycopg://",
        creator=lambda: psycopg.connect(info),
        pool_size=1,
        max_overflow=0,
        pool_pre_ping=True,
    )


def async_engine(config: RegionConfig, application_name: str = "metalplane-worker",
                 pool_size: int | None = None) -> AsyncEngine:
    """A bounded pool (`database_pool_size`, no overflow) so the budget holds."""
    info = conninfo(config, application_name)

    async def connect() -> psycopg.AsyncConnection:
        return await psycopg.AsyncConnection.connect(info)

    return create_async_engine(
        "postgresql+psycopg_async://",
        async_creator=connect,
        pool_size=pool_size or config.database_pool_size,
        max_overflow=0,
        pool_timeout=30,
        pool_pre_ping=True,
        pool_recycle=3600,
    )
