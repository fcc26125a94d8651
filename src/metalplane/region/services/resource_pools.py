"""Resource pools: every machine is in one; the default pool (id 0) always exists."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import nodes, resource_pools
from metalplane.region.errors import Invalid, NotFound, Refused, raise_if
from metalplane.region.services.rows import Row, delete_row, first_row, insert_unique, one, rows, update_unique

DEFAULT_POOL_ID = 0
DEFAULT_POOL_NAME = "default"
DEFAULT_POOL_DESCRIPTION = "Default pool"
DUPLICATE = "Resource pool with this Name already exists."
POOL_NAME = re.compile(r"^\w[ \w-]*$")  # MAAS's MODEL_NAME_VALIDATOR


async def ensure_default_pool(conn: AsyncConnection) -> None:
    await conn.execute(
        pg_insert(resource_pools)
        .values(id=DEFAULT_POOL_ID, name=DEFAULT_POOL_NAME, description=DEFAULT_POOL_DESCRIPTION)
        .on_conflict_do_nothing(index_elements=["id"])
    )


def check_name(name: str) -> dict[str, list[str]]:
    if not name.strip():
        return {"name": ["This field is required."]}
    if len(name) > 256:
        return {"name": [f"Ensure this value has at most 256 characters (it has {len(name)})."]}
    if not POOL_NAME.match(name):
        return {"name": ["Enter a valid value."]}
    return {}


async def list_pools(conn: AsyncConnection) -> list[Row]:
    return rows(await conn.execute(select(resource_pools).order_by(resource_pools.c.id)))


async def get_pool(conn: AsyncConnection, ident: str, lock: bool = False) -> Row:
    """By MAAS's specifiers: `id:N`, `name:X`, or a bare id or name."""
    if "\x00" in ident:
        raise NotFound("ResourcePool")
    kind, _, value = ident.partition(":") if ident.startswith(("id:", "name:")) else ("", "", ident)
    query = select(resource_pools)
    if kind == "id" or (not kind and value.isdigit()):
        if not value.isdigit() or int(value) >= 2**31:
            raise NotFound("ResourcePool")
        query = query.where(resource_pools.c.id == int(value))
    else:
        query = query.where(resource_pools.c.name == value)
    if lock:
        query = query.with_for_update()
    return one(await conn.execute(query), "ResourcePool")


async def pool_id_for(conn: AsyncConnection, name: str, field: str = "pool") -> int:
    """A pool named in a node's form: 400 for `field` when there is none."""
    row = (
        None
        if "\x00" in name
        else await first_row(conn, select(resource_pools.c.id).where(resource_pools.c.name == name))
    )
    if row is None:
        raise Invalid.field(field, "Select a valid choice. That choice is not one of the available choices.")
    return row.id


async def create_pool(conn: AsyncConnection, name: str, description: str) -> Row:
    raise_if(check_name(name))
    new_id = await insert_unique(conn, resource_pools, "name", DUPLICATE, name=name, description=description)
    return await get_pool(conn, str(new_id))


async def update_pool(conn: AsyncConnection, ident: str, changes: dict[str, Any]) -> Row:
    pool = await get_pool(conn, ident, lock=True)
    if "name" in changes:
        raise_if(check_name(changes["name"]))
    if changes:
        await update_unique(conn, resource_pools, pool["id"], "name", DUPLICATE, **changes)
    return await get_pool(conn, str(pool["id"]))


async def delete_pool(conn: AsyncConnection, ident: str) -> None:
    pool = await get_pool(conn, ident, lock=True)
    if pool["id"] == DEFAULT_POOL_ID:
        raise Refused("This is the default pool, it cannot be deleted.")
    if await first_row(conn, select(nodes.c.id).where(nodes.c.pool_id == pool["id"]).limit(1)):
        raise Refused("Pool has machines in it, it cannot be deleted.")
    await delete_row(conn, resource_pools, pool["id"])
