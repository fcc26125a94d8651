"""resourcepools/ and resourcepool/{id}/ (MAAS's singular path): where machines are grouped."""

from __future__ import annotations

from metalplane.region.api.context import Ctx
from metalplane.region.api.crud import Crud, given
from metalplane.region.api.framework import Handler
from metalplane.region.api.render_nodes import pool
from metalplane.region.services import resource_pools as svc

pools = Handler("ResourcePoolsHandler", "resourcepools/", "Manage resource pools.")
pool_h = Handler("ResourcePoolHandler", "resourcepool/{id}/", "Manage a resource pool.")
crud = Crud(pools, (pool_h,), pool)
crud.list_all(svc.list_pools, "Get a listing of all resource pools (there is always the default pool).")
crud.read(svc.get_pool, "Returns a resource pool (by id, or name).")
crud.update(
    svc.update_pool,
    given({"name": "str", "description": "str"}),
    """Update a resource pool's name or description.

    :param name: The new name.
    :type name: unicode
    :param description: The new description.
    :type description: unicode
    """,
)
crud.delete(svc.delete_pool, "Delete a resource pool (not the default one, not one with machines).")


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
