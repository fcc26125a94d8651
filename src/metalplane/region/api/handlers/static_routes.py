"""static-routes/ and static-routes/{id}/."""

from __future__ import annotations

from typing import Any

from metalplane.region.api import render_network_extras as render
from metalplane.region.api.checks import path_id
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import Handler
from metalplane.region.services import static_routes as svc

routes = Handler("StaticRoutesHandler", "static-routes/", "Manage static routes.")
route = Handler("StaticRouteHandler", "static-routes/{id}/", "Manage a static route.")

ROUTE_DOC = """
:param source: Source subnet for the route (id or subnet specifier).
:type source: unicode
:param destination: Destination subnet for the route (id or subnet specifier).
:type destination: unicode
:param gateway_ip: IP address of the gateway on the source subnet.
:type gateway_ip: unicode
:param metric: Weight of the route on a deployed machine (default 0).
:type metric: int
"""


def _fields(ctx: Ctx) -> dict[str, Any]:
    p = ctx.params
    fields: dict[str, Any] = {k: p.str(k) for k in ("source", "destination", "gateway_ip") if k in p}
    if "metric" in p:
        fields["metric"] = p.int("metric", min_value=0, max_value=svc.METRIC_MAX)
    return fields


@routes.read
async def list_routes(ctx: Ctx) -> list:
    """List all static routes."""
    return render.static_routes(await ctx.run(svc.show_routes))


async def create_route(ctx: Ctx) -> dict:
    fields = _fields(ctx)
    return render.static_routes(await ctx.run(svc.create_route, fields))[0]


create_route.__doc__ = "Create a static route.\n" + ROUTE_DOC
routes.action("POST", admin=True)(create_route)


@route.read
async def read_route(ctx: Ctx) -> dict:
    """Get a static route."""
    route_id = path_id(ctx, "id", "StaticRoute")
    return render.static_routes(await ctx.run(svc.show_routes, route_id))[0]


async def update_route(ctx: Ctx) -> dict:
    route_id, fields = path_id(ctx, "id", "StaticRoute"), _fields(ctx)
    return render.static_routes(await ctx.run(svc.update_route, ctx.me, route_id, fields))[0]


update_route.__doc__ = "Update a static route.\n" + ROUTE_DOC
route.action("PUT")(update_route)


@route.delete
async def delete_route(ctx: Ctx) -> None:
    """Delete a static route."""
    route_id = path_id(ctx, "id", "StaticRoute")
    await ctx.run(svc.delete_route, ctx.me, route_id)
