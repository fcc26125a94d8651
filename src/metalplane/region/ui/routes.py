"""Every web UI route: /MAAS/ and /MAAS/r/..., plus MAAS's /MAAS/accounts/ paths."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from metalplane.region.ui import live
from metalplane.region.ui.accounts import account_routes
from metalplane.region.ui.guard import HOME, UI_PREFIX, ui_route
from metalplane.region.ui.pages import controllers, images, machines, settings, subnets
from metalplane.region.ui.static import static_route


async def to_ui(request: Request) -> Response:
    return RedirectResponse(UI_PREFIX, status_code=302)


async def to_home(request: Request) -> Response:
    return RedirectResponse(HOME, status_code=302)


def ui_routes() -> list[BaseRoute]:
    return [
        Route("/MAAS/", to_ui, methods=["GET", "HEAD"]),
        Route("/MAAS", to_ui, methods=["GET", "HEAD"]),
        Route(UI_PREFIX, to_home, methods=["GET", "HEAD"]),
        static_route(),
        *account_routes(),
        ui_route(live.EVENTS_PATH, live.events),
        *machines.routes(),
        *controllers.routes(),
        *subnets.routes(),
        *images.routes(),
        *settings.routes(),
    ]
