"""Every PostgreSQL advisory lock the region takes, by name, in one place.

The numbers are shared with every running region, including regions of an
older version during an upgrade, so they never change; a new lock gets a new
number. Transaction locks (`xact_lock`) are released by COMMIT or ROLLBACK;
only the migration lock is held across transactions (`session_lock`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from enum import IntEnum

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection


class Lock(IntEnum):
    DEFAULT_FABRIC = 7001  # creating fabric-0 and its untagged VLAN
    RACK_REGISTRATION = 7002  # a rack's interfaces, and the fabrics/subnets they create
    REBALANCE = 7003  # rack connection targets; also taken to reap dead workers' rows
    BMC_OWNERS = 7004  # which rack owns each BMC
    SUBNET_NETWORKS = 7020  # a subnet's network, checked against every other one (no overlaps)
    BOOT_IMPORT = 0x6D70626F  # one boot image import starts at a time
    MIGRATION = 0x6D706C6E  # one region migrates the schema at a time


async def xact_lock(conn: AsyncConnection, lock: Lock) -> None:
    """Wait for `lock` and hold it until this transaction ends."""
    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": int(lock)})


@contextlib.contextmanager
def session_lock(conn: Connection, lock: Lock) -> Iterator[None]:
    """Hold `lock` on this (synchronous) connection across its transactions."""
    conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": int(lock)})
    try:
        conn.commit()
        yield
    finally:
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": int(lock)})
        conn.commit()
