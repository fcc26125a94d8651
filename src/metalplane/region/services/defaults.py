"""Objects MAAS always has: the default zone and fabric-0 with its untagged VLAN."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import zones
from metalplane.region.services import network


async def ensure_defaults(conn: AsyncConnection) -> None:
    await conn.execute(insert(zones).values(name="default").on_conflict_do_nothing(index_elements=["name"]))
    await network.ensure_default_fabric(conn)
