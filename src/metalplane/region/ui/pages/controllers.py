"""Controllers, Add rack controller, and a controller's own page."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from urllib.parse import quote

from starlette.responses import Response
from starlette.routing import BaseRoute

from metalplane.region.errors import PermissionDenied, Refused
from metalplane.region.services import cluster, racks
from metalplane.region.services import controller_overview as overview
from metalplane.region.ui.guard import UI_PREFIX, LivePage, UiRequest, message_of, ui_route

PAGE_SIZE = 50
MAX_PAGE = 1_000_000
CONTROLLERS_PAGE = LivePage("controllers.html", "controllers", {"table": "controllers_table.html"})
CONTROLLER_PAGE = LivePage(
    "controller.html", "controllers", {"header": "controller_header.html", "body": "controller_body.html"}
)


@dataclass(frozen=True)
class RackCommands:
    urls: list[str]
    register: str
    init: str


def rack_commands(urls: list[str], secret: str) -> RackCommands:
    """What to run on a new rack host: `rack register` with every region, or `init --mode rack` with one."""
    register = " ".join(
        ["metalplane rack register", *(f"--url {shlex.quote(u)}" for u in urls), f"--secret {shlex.quote(secret)}"]
    )
    init = f"metalplane init --mode rack --maas-url {shlex.quote(urls[0])} --secret {shlex.quote(secret)}"
    return RackCommands(urls, register, init)


def page_count(total: int, size: int = PAGE_SIZE) -> int:
    return max(1, -(-total // size))


async def controllers(ui: UiRequest) -> Response:
    page = ui.params.int("page", 1, min_value=1, max_value=MAX_PAGE) or 1
    adding = ui.params.str("add") == "rack"
    if adding and not ui.user.is_superuser:
        raise PermissionDenied("Only admins can add rack controllers.")
    async with ui.ctx.tx() as conn:
        rows, total = await overview.controller_page(conn, (page - 1) * PAGE_SIZE, PAGE_SIZE)
        commands = None
        if adding:
            urls = await overview.region_urls(conn) or [ui.ctx.site + "/MAAS"]
            commands = rack_commands(urls, await cluster.get_value(conn, cluster.SECRET_KEY) or "")
    query = f"page={page}" + ("&add=rack" if adding else "")
    return ui.live_page(
        CONTROLLERS_PAGE,
        f"{UI_PREFIX}controllers/?{query}&part=table",
        rows=rows,
        total=total,
        page=page,
        pages=page_count(total),
        commands=commands,
        deleted=ui.params.str("deleted") or "",
    )


async def _controller_page(ui: UiRequest, deleting: bool, delete_error: str = "", status: int = 200) -> Response:
    system_id = ui.ctx.path["system_id"]
    detail = await ui.ctx.run(overview.controller_detail, system_id)
    query = "delete=1&" if deleting else ""
    return ui.live_page(
        CONTROLLER_PAGE,
        f"{UI_PREFIX}controller/{system_id}/?{query}",
        status=status,
        deleting=deleting,
        delete_error=delete_error,
        **detail,
    )


async def controller(ui: UiRequest) -> Response:
    deleting = ui.params.str("delete") == "1"
    if deleting and not ui.user.is_superuser:
        raise PermissionDenied("Only admins can delete rack controllers.")
    return await _controller_page(ui, deleting)


async def delete_rack(ui: UiRequest) -> Response:
    """The API's rack delete, same service: refused while the rack serves DHCP unless forced."""
    force = bool(ui.params.bool("force", False))
    system_id = ui.ctx.path["system_id"]
    try:
        node = await ui.ctx.run(racks.delete_rack, system_id, force)
    except Refused as exc:
        return await _controller_page(ui, True, message_of(exc), status=400)
    return ui.redirect(f"{UI_PREFIX}controllers/?deleted={quote(node['hostname'])}")


def routes() -> list[BaseRoute]:
    return [
        ui_route(UI_PREFIX + "controllers/", controllers),
        ui_route(UI_PREFIX + "controller/{system_id}/", controller),
        ui_route(UI_PREFIX + "controller/{system_id}/delete/", delete_rack, admin=True, methods=("POST",)),
    ]
