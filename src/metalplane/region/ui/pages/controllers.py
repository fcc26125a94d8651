"""Controllers, Add rack controller, and a controller's own page."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from starlette.responses import Response
from starlette.routing import BaseRoute

from metalplane.region.errors import Forbidden
from metalplane.region.services import cluster
from metalplane.region.services import controller_overview as overview
from metalplane.region.ui.guard import UI_PREFIX, UiRequest, ui_route

PAGE_SIZE = 50
MAX_PAGE = 1_000_000


@dataclass(frozen=True)
class RackCommands:
    urls: list[str]
    register: str
    init: str


def rack_commands(urls: list[str], secret: str) -> RackCommands:
    """What to run on a new rack host: `rack register` with every region, or `init --mode rack` with one."""
    register = " ".join(["metalplane rack register", *(f"--url {shlex.quote(u)}" for u in urls),
                         f"--secret {shlex.quote(secret)}"])
    init = f"metalplane init --mode rack --maas-url {shlex.quote(urls[0])} --secret {shlex.quote(secret)}"
    return RackCommands(urls, register, init)


def page_count(total: int, size: int = PAGE_SIZE) -> int:
    return max(1, -(-total // size))


async def controllers(ui: UiRequest) -> Response:
    page = ui.params.int("page", 1, min_value=1, max_value=MAX_PAGE) or 1
    adding = ui.params.str("add") == "rack"
    if adding and not ui.user.is_superuser:
        raise Forbidden("Only admins can add rack controllers.")
    per_rack = ui.config.rpc_connections_per_rack
    async with ui.ctx.tx() as conn:
        rows, total = await overview.controller_page(conn, per_rack, (page - 1) * PAGE_SIZE, PAGE_SIZE)
        commands = None
        if adding:
            urls = await overview.region_urls(conn) or [ui.ctx.site + "/MAAS"]
            commands = rack_commands(urls, await cluster.get_value(conn, cluster.SECRET_KEY) or "")
    query = f"page={page}" + ("&add=rack" if adding else "")
    return ui.render("controllers.html", parts={"table": "controllers_table.html"}, nav="controllers",
                     live=["controllers"], rows=rows, total=total, page=page, pages=page_count(total),
                     commands=commands, live_src=f"{UI_PREFIX}controllers/?{query}&part=table")


async def controller(ui: UiRequest) -> Response:
    system_id = ui.ctx.path["system_id"]
    async with ui.ctx.tx() as conn:
        detail = await overview.controller_detail(conn, system_id, ui.config.rpc_connections_per_rack)
    return ui.render("controller.html", parts={"body": "controller_body.html"}, nav="controllers",
                     live=["controllers"], live_src=f"{UI_PREFIX}controller/{system_id}/?part=body", **detail)


def routes() -> list[BaseRoute]:
    return [
        ui_route(UI_PREFIX + "controllers/", controllers),
        ui_route(UI_PREFIX + "controller/{system_id}/", controller),
    ]
