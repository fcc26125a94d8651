"""Spaces: named groups of VLANs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import spaces
from metalplane.region.errors import Invalid, NotFound
from metalplane.region.services import network, subnets
from metalplane.region.services.rows import execute_unique, next_id

DUPLICATE = "Space with this Name already exists."


async def list_spaces(conn: AsyncConnection) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in await conn.execute(select(spaces).order_by(spaces.c.id))]


async def get_space(conn: AsyncConnection, space_id: int) -> dict[str, Any]:
    row = (await conn.execute(select(spaces).where(spaces.c.id == space_id))).first()
    if row is None:
        raise NotFound("Space")
    return dict(row._mapping)


@dataclass(frozen=True)
class Spaces:
    """Spaces as shown: each with its VLANs and their subnets."""

    spaces: list[dict[str, Any]]
    vlans: list[dict[str, Any]]  # every VLAN
    subnets: list[dict[str, Any]]  # every subnet


async def show_spaces(conn: AsyncConnection, space_id: int | None = None) -> Spaces:
    shown = [await get_space(conn, space_id)] if space_id is not None else await list_spaces(conn)
    return Spaces(shown, await network.list_vlans(conn), await subnets.list_subnets(conn))


async def create_space(conn: AsyncConnection, name: str | None, description: str) -> Spaces:
    space_id = await next_id(conn, "spaces")
    name = name or f"space-{space_id}"
    if name == "undefined":
        raise Invalid.field("name", "Reserved space name.")
    await execute_unique(conn, insert(spaces).values(id=space_id, name=name, description=description),
                         "name", DUPLICATE)
    return await show_spaces(conn, space_id)


async def update_space(conn: AsyncConnection, space_id: int, changes: dict[str, Any]) -> Spaces:
    await get_space(conn, space_id)
    if changes.get("name") == "undefined":
        raise Invalid.field("name", "Reserved space name.")
    if changes:
        await execute_unique(conn, update(spaces).where(spaces.c.id == space_id).values(**changes, updated=func.now()),
                             "name", DUPLICATE)
    return await show_spaces(conn, space_id)


async def delete_space(conn: AsyncConnection, space_id: int) -> None:
    await get_space(conn, space_id)
    await conn.execute(delete(spaces).where(spaces.c.id == space_id))
