"""resourcepools/ and resourcepool/{id}/ (MAAS's singular path): where machines are grouped."""

from __future__ import annotations

from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.api.render_nodes import pool
from metalplane.region.services import resource_pools as svc

pools = Handler("ResourcePoolsHandler", "resourcepools/", "Manage resource pools.")
pool_h = Handler("ResourcePoolHandler", "resourcepool/{id}/", "Manage a resource pool.")


@pools.read
async def list_pools(ctx: Ctx) -> list:
    """Get a listing of all resource pools (there is always the default pool)."""
    return [pool(p) for p in await ctx.run(svc.list_pools)]


@pools.action("POST", admin=True)
async def create_pool(ctx: Ctx) -> dict:
    """Create a new resource pool.

    :param name: The new pool's name.
    :type name: unicode
    :param description: A description of the new pool.
    :type description: unicode
    """
    name, description = ctx.params.str("name", "") or "", ctx.params.str("description", "") or ""
    return pool(await ctx.run(svc.create_pool, name, description))


@pool_h.read
async def read_pool(ctx: Ctx) -> dict:
    """Returns a resource pool (by id, or name)."""
    return pool(await ctx.run(svc.get_pool, ctx.path["id"]))


@pool_h.action("PUT", admin=True)
async def update_pool(ctx: Ctx) -> dict:
    """Update a resource pool's name or description.

    :param name: The new name.
    :type name: unicode
    :param description: The new description.
    :type description: unicode
    """
    changes = ctx.params.given({"name": "str", "description": "str"})
    return pool(await ctx.run(svc.update_pool, ctx.path["id"], changes))


@pool_h.action("DELETE", admin=True)
async def delete_pool(ctx: Ctx) -> None:
    """Delete a resource pool (not the default one, not one with machines)."""
    await ctx.run(svc.delete_pool, ctx.path["id"])
