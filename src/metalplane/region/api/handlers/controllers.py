"""regioncontrollers/ and rackcontrollers/ (a region+rack host appears in both)."""

from __future__ import annotations

from metalplane.region.api import render
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.services import controllers as svc

region_controllers = Handler("RegionControllersHandler", "regioncontrollers/", "Manage region controllers.")
region_controller = Handler("RegionControllerHandler", "regioncontrollers/{system_id}/",
                            "Manage an individual region controller.")
rack_controllers = Handler("RackControllersHandler", "rackcontrollers/", "Manage rack controllers.")
rack_controller = Handler("RackControllerHandler", "rackcontrollers/{system_id}/",
                          "Manage an individual rack controller.")

READ_DOC = """List Nodes visible to the user, optionally filtered by criteria.

:param hostname: An optional hostname. Only nodes relating to the node with the matching hostname will be returned. This can be specified multiple times to see multiple nodes.
:type hostname: unicode
:param id: An optional list of system ids.  Only nodes relating to the nodes with matching system ids will be returned.
:type id: unicode
"""


async def render_region(conn, row: dict) -> dict:
    processes = await svc.live_processes(conn, row["id"])
    return render.controller(row, "regioncontrollers", extra={
        "processes": [
            {"pid": p.pid, "worker_index": p.worker_index, "rpc_port": p.rpc_port, "heartbeat": p.updated.isoformat()}
            for p in processes
        ],
    })


async def render_rack(conn, row: dict) -> dict:
    return render.controller(row, "rackcontrollers")


async def list_regions(ctx: Ctx) -> list:
    async with ctx.tx() as conn:
        rows = await svc.list_controllers(conn, svc.REGION_TYPES, ctx.params.get_list("id"),
                                          ctx.params.get_list("hostname"))
        return [await render_region(conn, r) for r in rows]


async def list_racks(ctx: Ctx) -> list:
    async with ctx.tx() as conn:
        rows = await svc.list_controllers(conn, svc.RACK_TYPES, ctx.params.get_list("id"),
                                          ctx.params.get_list("hostname"))
        return [await render_rack(conn, r) for r in rows]


list_regions.__doc__ = list_racks.__doc__ = READ_DOC
region_controllers.read(list_regions)
rack_controllers.read(list_racks)


@region_controller.read
async def read_region(ctx: Ctx) -> dict:
    """Read a specific region controller."""
    async with ctx.tx() as conn:
        return await render_region(conn, await svc.get_controller(conn, svc.REGION_TYPES, ctx.path["system_id"]))


@rack_controller.read
async def read_rack(ctx: Ctx) -> dict:
    """Read a specific rack controller."""
    async with ctx.tx() as conn:
        return await render_rack(conn, await svc.get_controller(conn, svc.RACK_TYPES, ctx.path["system_id"]))
