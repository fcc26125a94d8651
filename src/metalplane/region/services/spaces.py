"""Spaces: named groups of VLANs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import spaces
from metalplane.region.errors import Invalid, NotFound, Refused, raise_if
from metalplane.region.services import lookups, netrules, network, subnets
from metalplane.region.services.rows import delete_row, execute_unique, next_id, one, update_unique

DUPLICATE = "Space with this Name already exists."
UNDEFINED = lookups.UNDEFINED_SPACE
# MAAS's pseudo-space of every VLAN without a space: read as spaces/-1/ or spaces/undefined/.
UNDEFINED_SPACE = {
    "id": -1,
    "name": UNDEFINED,
    "description": "Backward compatibility object to ensure objects not associated with a space can be found.",
}


def is_undefined(space: int | str) -> bool:
    return str(space).strip() in ("-1", UNDEFINED)


async def list_spaces(conn: AsyncConnection) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in await conn.execute(select(spaces).order_by(spaces.c.id))]


async def get_space(conn: AsyncConnection, space: int | str) -> dict[str, Any]:
    """By id, or by a MAAS space specifier (id, name, "space-1", "name:", "subnet:")."""
    if isinstance(space, str):
        return await lookups.space(conn, space)
    return one(await conn.execute(select(spaces).where(spaces.c.id == space)), "Space")


@dataclass(frozen=True)
class Spaces:
    """Spaces as shown: each with its VLANs and their subnets."""

    spaces: list[dict[str, Any]]  # UNDEFINED_SPACE stands for the VLANs without a space
    vlans: list[dict[str, Any]]  # every VLAN
    subnets: list[dict[str, Any]]  # every subnet


async def show_spaces(conn: AsyncConnection, space: int | str | None = None) -> Spaces:
    """Every space, then MAAS's "undefined" while some VLAN has no space; or the one
    `space` names ("-1" and "undefined" name the pseudo-space)."""
    all_vlans = await network.list_vlans(conn)
    if space is not None and is_undefined(space):
        if str(space).strip() == UNDEFINED and all(v["space_id"] is not None for v in all_vlans):
            raise NotFound("Space")  # as MAAS: "undefined" exists only while some VLAN has no space
        shown = [UNDEFINED_SPACE]
    elif space is not None:
        shown = [await get_space(conn, space)]
    else:
        shown = await list_spaces(conn)
        if any(v["space_id"] is None for v in all_vlans):
            shown.append(UNDEFINED_SPACE)
    return Spaces(shown, all_vlans, await subnets.list_subnets(conn))


async def create_space(conn: AsyncConnection, name: str | None, description: str) -> Spaces:
    space_id = await next_id(conn, "spaces")
    if name:
        raise_if(netrules.check_name("space", name))
    name = name or f"space-{space_id}"
    if name == "undefined":
        raise Invalid.field("name", "Reserved space name.")
    await execute_unique(
        conn, insert(spaces).values(id=space_id, name=name, description=description), "name", DUPLICATE
    )
    return await show_spaces(conn, space_id)


async def update_space(conn: AsyncConnection, space: int | str, changes: dict[str, Any]) -> Spaces:
    if is_undefined(space):
        raise Refused(f"Space cannot be modified: {UNDEFINED}")
    space_id = (await get_space(conn, space))["id"]
    if "name" in changes:
        raise_if(netrules.check_name("space", changes["name"]))
    if changes.get("name") == "undefined":
        raise Invalid.field("name", "Reserved space name.")
    if changes:
        await update_unique(conn, spaces, space_id, "name", DUPLICATE, **changes)
    return await show_spaces(conn, space_id)


async def delete_space(conn: AsyncConnection, space: int | str) -> None:
    if is_undefined(space):
        raise Refused(f"Space cannot be deleted: {UNDEFINED}")
    space_id = (await get_space(conn, space))["id"]
    await delete_row(conn, spaces, space_id)
