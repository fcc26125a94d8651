"""version/ (an anonymous handler) and describe/ (a plain view, as in MAAS)."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from metalplane import __version__
from metalplane.region.api.context import Ctx
from metalplane.region.api.framework import API_PREFIX, Handler, describe_api
from metalplane.region.api.proxies import site_of

# What MAAS 2.x advertises that metalplane honours.
CAPABILITIES = [
    "networks-management",
    "static-ipaddresses",
    "ipv6-deployment-ubuntu",
    "devices-management",
    "network-deployment-ubuntu",
]

version = Handler("VersionHandler", "version/", "Information about this MAAS instance.", anon=True)


@version.read
async def read_version(ctx: Ctx) -> dict:
    """Version and capabilities of this MAAS instance."""
    return {"capabilities": CAPABILITIES, "version": __version__, "subversion": "metalplane"}


async def describe(request: Request) -> Response:
    """The whole API; maascli insists on exactly `application/json`."""
    state = request.app.state
    body = describe_api(state.handlers, site_of(request), getattr(state, "api_hash", None))
    return Response(json.dumps(body, sort_keys=True), media_type="application/json")


def describe_route() -> Route:
    return Route(API_PREFIX + "describe/", describe, methods=["GET"])
