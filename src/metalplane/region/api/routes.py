"""The region's own endpoints beside the MAAS API: health for load balancers, rack discovery, metrics, the web UI."""

from __future__ import annotations

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from metalplane.region import metrics
from metalplane.region.services import connections

HEALTH_PATH = "/MAAS/metalplane/health"
RPC_PATH = "/MAAS/rpc/"


async def health(request: Request) -> Response:
    """200 only when this worker can reach a writable database: HAProxy's check."""
    try:
        async with request.app.state.db.connect() as conn:
            read_only = (await conn.execute(text("SHOW transaction_read_only"))).scalar_one()
    except Exception as exc:  # any failure means "do not send traffic here"
        return PlainTextResponse(f"database unreachable: {type(exc).__name__}\n", status_code=503)
    if read_only == "on":
        return PlainTextResponse("database is read-only (standby)\n", status_code=503)
    return PlainTextResponse("ok\n")


async def rpc_endpoints(request: Request) -> Response:
    """Where racks find the region workers' RPC endpoints (anonymous, as in MAAS); from the
    worker's RPC server's short-lived copy when it runs (RegionRpcServer.live_endpoints)."""
    rpc = getattr(request.app.state, "rpc", None)
    if rpc is not None:
        live = await rpc.live_endpoints()
    else:
        async with request.app.state.db.connect() as conn:
            live = await connections.live_endpoints(conn)
    return JSONResponse({"endpoints": [e.endpoint.wire() for e in live]})


async def prometheus_metrics(request: Request) -> Response:
    """Prometheus's scrape (anonymous, as in MAAS): the whole region's samples (region.metrics)."""
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


def region_routes() -> list[BaseRoute]:
    from metalplane.region.api.handlers.boot_resources import boot_resource_routes
    from metalplane.region.api.handlers.meta import describe_route
    from metalplane.region.api.metadata import metadata_routes
    from metalplane.region.ui.routes import ui_routes

    return [
        describe_route(),
        *boot_resource_routes(),
        Route(HEALTH_PATH, health, methods=["GET", "HEAD"]),
        Route(RPC_PATH, rpc_endpoints, methods=["GET"]),
        Route(metrics.METRICS_PATH, prometheus_metrics, methods=["GET"]),
        *metadata_routes(),
        *ui_routes(),
    ]
