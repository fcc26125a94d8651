"""Connections to PostgreSQL from a region config: one host or several (HA).

With several hosts libpq tries them in order and keeps the first that
accepts writes (`target_session_attrs=read-write`), so after a failover new
connections land on the new primary by themselves. Pooled connections to the
old one fail; SQLAlchemy then invalidates the whole pool (every connection
older than the failure is replaced at its next checkout) and `pool_pre_ping`
catches any that died quietly. The API retries what is safe with backoff
(region/api/app.py); the heartbeats retry at their next beat and the LISTEN
connection with backoff (region/rpc_server.py).

New connections try the host that last accepted one first
(`ordered_hosts`), so only the first connection after a failover pays for a
dead old primary.

TCP keepalives and `tcp_user_timeout` make a vanished database host (power
loss, partition: no RST ever arrives) an error within seconds instead of
the kernel's ~15 minutes of retransmissions.

Every engine hides statement parameters (`hide_parameters=True`): a failed
statement's error (logged, or shown in a 500's log line) names the SQL but
never the values, which may be token secrets or password hashes. PostgreSQL
repeats values in its own DETAIL line too ("Key (token)=(...) already
exists") and in data errors' messages, so errors keep only the server's primary
message, without the value (`_values_hidden`); code that needs more reads
`exc.orig.diag`.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext
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


# The host that last accepted a read-write session, per host list: new
# connections of this process try it first. After a failover the first
# connection finds the new primary (waiting `connect_timeout` once if the old
# one's host vanished); the ones after it go straight there.
_last_primary: dict[tuple[str, ...], tuple[str, int]] = {}


def _key(config: RegionConfig) -> tuple[str, ...]:
    return (*config.database_hosts, str(config.database_port))


def ordered_hosts(config: RegionConfig) -> list[tuple[str, int]]:
    """The configured hosts, the last known primary first, the rest in the configured order."""
    pairs = [split_host(h, config.database_port) for h in config.database_hosts]
    best = _last_primary.get(_key(config))
    if best in pairs:
        pairs.remove(best)
        pairs.insert(0, best)
    return pairs


def remember_primary(config: RegionConfig, conn: psycopg.Connection | psycopg.AsyncConnection) -> None:
    """Note which host `conn` (a read-write session) reached, for `ordered_hosts`."""
    _last_primary[_key(config)] = (conn.info.host, conn.info.port)


def conninfo(config: RegionConfig, application_name: str = "metalplane") -> str:
    """libpq conninfo that lands on whichever listed host is the writable primary."""
    pairs = ordered_hosts(config)
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


def _values_hidden(context: ExceptionContext) -> None:
    """Keep PostgreSQL's primary message only: its DETAIL and CONTEXT lines quote row
    values, and so does the primary message of a data exception (class 22: `invalid
    input syntax for type integer: "<the value>"`)."""
    orig = context.original_exception
    if not isinstance(orig, psycopg.Error) or not orig.args or not isinstance(orig.args[0], str):
        return
    full = orig.args[0]
    primary = full.split("\n", 1)[0]
    if (orig.sqlstate or "").startswith("22") and ": " in primary:
        primary = primary.rsplit(": ", 1)[0] + ": (value hidden)"
    if primary == full:
        return
    orig.args = (primary, *orig.args[1:])
    wrapped = context.sqlalchemy_exception
    if wrapped is not None and wrapped.args and isinstance(wrapped.args[0], str):
        wrapped.args = (wrapped.args[0].replace(full, primary), *wrapped.args[1:])


def _hiding_values(engine: Engine) -> Engine:
    event.listen(engine, "handle_error", _values_hidden)
    return engine


def sync_engine(config: RegionConfig, application_name: str = "metalplane") -> Engine:
    def connect() -> psycopg.Connection:
        conn = psycopg.connect(conninfo(config, application_name))
        remember_primary(config, conn)
        return conn

    return _hiding_values(
        create_engine(
            "postgresql+psycopg://",
            creator=connect,
            pool_size=1,
            max_overflow=0,
            pool_pre_ping=True,
            hide_parameters=True,  # an error's text would otherwise carry its SQL parameters into a log line
        )
    )


def async_engine(
    config: RegionConfig, application_name: str = "metalplane-worker", pool_size: int | None = None
) -> AsyncEngine:
    """A bounded pool (`database_pool_size`, no overflow) so the budget holds."""

    async def connect() -> psycopg.AsyncConnection:
        conn = await psycopg.AsyncConnection.connect(conninfo(config, application_name))
        remember_primary(config, conn)
        return conn

    engine = create_async_engine(
        "postgresql+psycopg_async://",
        async_creator=connect,
        pool_size=pool_size or config.database_pool_size,
        max_overflow=0,
        pool_timeout=30,
        pool_pre_ping=True,
        pool_recycle=3600,
        hide_parameters=True,
    )
    _hiding_values(engine.sync_engine)
    return engine
