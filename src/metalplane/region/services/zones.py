"""Physical zones, looked up by name as MAAS's zones/{name}/ does."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import nodes, zones
from metalplane.region.errors import Refused, raise_if
from metalplane.region.services import netrules
from metalplane.region.services.rows import delete_row, execute_unique, one, update_unique

DEFAULT_ZONE = "default"
DUPLICATE = "Physical zone with this Name already exists."


def check_name(name: str) -> dict[str, list[str]]:
    """MAAS's zone name rule (letters, digits, spaces, '-' and '_'; not starting with a
    space or '-'; at most 256 characters); the name is also the URL key."""
    if not name.strip():
        return {"name": ["This field is required."]}
    return netrules.check_name("zone", name)


async def list_zones(conn: AsyncConnection) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in await conn.execute(select(zones).order_by(zones.c.name))]


async def get_zone(conn: AsyncConnection, name: str) -> dict[str, Any]:
    return one(await conn.execute(select(zones).where(zones.c.name == name)), "Zone")


async def create_zone(conn: AsyncConnection, name: str, description: str) -> dict[str, Any]:
    raise_if(check_name(name))
    await execute_unique(conn, insert(zones).values(name=name, description=description), "name", DUPLICATE)
    return await get_zone(conn, name)


async def update_zone(conn: AsyncConnection, name: str, changes: dict[str, Any]) -> dict[str, Any]:
    zone = await get_zone(conn, name)
    if "name" in changes:
        raise_if(check_name(changes["name"]))
    if "name" in changes and zone["name"] == DEFAULT_ZONE and changes["name"] != DEFAULT_ZONE:
        raise Refused("This zone is the default zone, it cannot be renamed.")
    if changes:
        await update_unique(conn, zones, zone["id"], "name", DUPLICATE, **changes)
    return await get_zone(conn, changes.get("name", name))


async def delete_zone(conn: AsyncConnection, name: str) -> None:
    zone = await get_zone(conn, name)
    if zone["name"] == DEFAULT_ZONE:
        raise Refused("This zone is the default zone, it cannot be deleted.")
    default_id = (await get_zone(conn, DEFAULT_ZONE))["id"]
    await conn.execute(update(nodes).where(nodes.c.zone_id == zone["id"]).values(zone_id=default_id))
    await delete_row(conn, zones, zone["id"])
