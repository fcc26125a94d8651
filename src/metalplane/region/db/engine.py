"""Connections to PostgreSQL from a region config: one host or several (HA).

With several hosts libpq tries them in order and keeps the first that
accepts writes (`target_session_attrs=read-write`), so after a failover new
connections land on the new primary by themselves. Pooled connections to the
old one fail; SQLAlchemy then invalidates the whole pool (every connection
older than the failure is replaced at its next checkout) and `pool_pre_ping`
catches any that died quietly. The API retries what is safe with backoff
(region/api/app.py); the heartbeats retry at their next beat and the LISTEN
connection with backoff (region/rpc_server.py).

TCP keepalives and `tcp_user_timeout` make a vanished database host (power
loss, partition: no RST ever arrives) an error within seconds instead of
the kernel's ~15 minutes of retransmissions.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy import Engine, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from metalplane.config.region import RegionConfig
from metalplane.hostport import split_host_port

CONNECT_TIMEOUT = 3  # seconds per host tried (libpq's minimum is 2)
KEEPALIVES_IDLE = 5
KEEPALIVES_INTERVAL = 1
KEEPALIVES_COUNT = 3
TCP_USER_TIMEOUT_MS = 5_000


def split_host(entry: str, default_port: int) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]:port` or a socket directory (ValueError otherwise)."""
    if entry.startswith("/"):
        return entry, default_port
    return split_host_port(entry, default_port)


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
        # Ignored on unix sockets.
        "keepalives": 1,
        "keepalives_idle": KEEPALIVES_IDLE,
        "keepalives_interval": KEEPALIVES_INTERVAL,
        "keepalives_count": KEEPALIVES_COUNT,
        "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
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
