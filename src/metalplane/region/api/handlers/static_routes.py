"""static-routes/ and static-routes/{id}/."""

from __future__ import annotations

from typing import Any

from metalplane.region.api import render_network_extras as render
from metalplane.region.api.checks import path_id
from metalplane.region.api.context import Ctx
from metalplane.region.api.crud import Crud, first
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


def _route_id(ctx: Ctx) -> int:
    return path_id(ctx, "id", "StaticRoute")


crud = Crud(routes, (route,), first(render.static_routes), render.static_routes, key=_route_id)
crud.list_all(svc.show_routes, "List all static routes.")
crud.create(svc.create_route, _fields, "Create a static route.\n" + ROUTE_DOC)
crud.read(svc.show_routes, "Get a static route.")


@route.action("PUT", doc="Update a static route.\n" + ROUTE_DOC)
async def update_route(ctx: Ctx) -> dict:
    route_id, fields = _route_id(ctx), _fields(ctx)
    return crud.shape(await ctx.run(svc.update_route, ctx.me, route_id, fields))


@route.delete
async def delete_route(ctx: Ctx) -> None:
    """Delete a static route."""
    await ctx.run(svc.delete_route, ctx.me, _route_id(ctx))
