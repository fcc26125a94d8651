"""`metalplane init --database-host ...` / `--database-uri ...`: an existing PostgreSQL.

Before anything is written, the database must accept the region's user,
give it CREATE on the database and on schema public (the migrations create
tables there; PostgreSQL 15 no longer grants that to everyone), and hold
the connections of every region already registered in it plus this one.
Each refusal is one line that says what to change.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import psycopg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from metalplane.config.region import RegionConfig
from metalplane.region.budget import RegionNeed, compute_budget
from metalplane.region.db.engine import async_engine
from metalplane.region.services import controllers


class DatabaseRefused(Exception):
    """One line: why this database cannot be used, and what to do."""


@dataclass(frozen=True)
class DatabaseSettings:
    hosts: list[str]
    port: int | None
    name: str | None
    user: str | None
    password: str | None

    def config_values(self) -> dict:
        values: dict = {"database_host": self.hosts[0] if len(self.hosts) == 1 else self.hosts}
        for key, value in (
            ("database_port", self.port),
            ("database_name", self.name),
            ("database_user", self.user),
            ("database_pass", self.password),
        ):
            if value is not None:
                values[key] = value
        return values


def parse_database_uri(uri: str) -> DatabaseSettings:
    """MAAS's `--database-uri postgres://USER:PASS@HOST[:PORT][,HOST2[:PORT]]/NAME` (libpq's URI form)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError("--database-uri must start with postgres:// or postgresql://")
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    hosts = [h for h in hostlist.split(",") if h]
    if not hosts:
        raise ValueError("--database-uri names no host")
    port = None
    ports = {h.rsplit(":", 1)[1] for h in hosts if not h.endswith("]") and ":" in h}
    if len(ports) == 1 and all(h.endswith(":" + next(iter(ports))) for h in hosts):
        port = int(next(iter(ports)))
        hosts = [h[: -len(str(port)) - 1] for h in hosts]
    name = unquote(parts.path.lstrip("/")) or None
    return DatabaseSettings(
        [unquote(h) for h in hosts], port, name, unquote(user) or None, unquote(password) if password else None
    )


def first_line(exc: BaseException) -> str:
    """psycopg's message without its multi-line detail, and never a parameter."""
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


def where(config: RegionConfig) -> str:
    hosts = ",".join(config.database_hosts)
    return f"database {config.database_name!r} on {hosts} (port {config.database_port}) as {config.database_user!r}"


async def _inspect(config: RegionConfig, system_id: str | None) -> list[str]:
    engine = async_engine(config, "metalplane-init-check", pool_size=1)
    try:
        async with engine.connect() as conn:
            rights = (
                await conn.execute(
                    text(
                        "SELECT has_database_privilege(current_user, current_database(), 'CREATE'), "
                        "has_schema_privilege(current_user, 'public', 'CREATE')"
                    )
                )
            ).one()
            problems = []
            if not rights[0]:
                problems.append(
                    f"user {config.database_user!r} lacks CREATE on database {config.database_name!r} "
                    f"(GRANT CREATE ON DATABASE {config.database_name} TO {config.database_user}, "
                    "or make it the owner)"
                )
            if not rights[1]:
                problems.append(
                    f"user {config.database_user!r} lacks CREATE on schema public of "
                    f"{config.database_name!r} (GRANT CREATE ON SCHEMA public TO {config.database_user}, "
                    "or make it the database's owner)"
                )
            if problems:
                return problems
            needs = [RegionNeed(f"{socket.gethostname().split('.')[0]} (this host)", config.connections_needed())]
            if (await conn.execute(text("SELECT to_regclass('public.controller_info') IS NOT NULL"))).scalar():
                needs += [
                    n
                    for n in await controllers.region_needs(conn)
                    if not (system_id and n.hostname.endswith(f"({system_id})"))
                ]
            budget = compute_budget(needs, *await controllers.connection_limits(conn))
            return [] if budget.ok else [budget.message()]
    finally:
        await engine.dispose()


def check_database(config: RegionConfig, system_id: str | None = None) -> None:
    """Raise DatabaseRefused (one line) unless the region can use this database."""
    try:
        problems = asyncio.run(_inspect(config, system_id))
    except (DBAPIError, psycopg.Error, OSError) as exc:
        raise DatabaseRefused(f"cannot use the {where(config)}: {first_line(exc)}") from None
    if problems:
        raise DatabaseRefused(f"cannot use the {where(config)}: " + "; ".join(problems))
