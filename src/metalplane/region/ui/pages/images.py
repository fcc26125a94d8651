"""Images: boot resources with their progress, imports (the API's import, same
service) and each rack's image cache as the rack reports it."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute

from metalplane.region.errors import Conflict, Invalid
from metalplane.region.services import boot_import, boot_resources, image_overview
from metalplane.region.ui.guard import UI_PREFIX, LivePage, UiRequest, message_of, ui_route

IMAGES_PATH = UI_PREFIX + "images/"
IMAGES_PAGE = LivePage("images.html", "images", {"body": "images_body.html"})
DONE = {"import": "Import started.", "stop": "The import is being stopped; what is stored stays stored."}


async def _images(
    ui: UiRequest, source: str = "", errors: dict[str, list[str]] | None = None, status: int = 200
) -> Response:
    page = await ui.ctx.run(image_overview.images_page)
    return ui.live_page(
        IMAGES_PAGE,
        IMAGES_PATH + "?part=body",
        status=status,
        page=page,
        source=source,
        errors=errors or {},
        progress=boot_resources.progress,
        done=ui.done(DONE),
    )


async def images(ui: UiRequest) -> Response:
    return await _images(ui)


async def start_import(ui: UiRequest) -> Response:
    """`boot-resources import`: `source` is a mirror URL (http, https, file) or a path on this region."""
    source = (ui.params.str("source") or "").strip()
    state = ui.ctx.app_state
    owner = boot_import.owner_name(getattr(state, "region_id", "?"), getattr(state, "worker_index", "?"))
    try:
        await boot_import.start_import(ui.ctx.work, source, owner)
    except Invalid as exc:
        return await _images(ui, source, {"source": [m for reasons in exc.errors.values() for m in reasons]}, 400)
    except Conflict as exc:
        return await _images(ui, source, {"source": [message_of(exc)]}, 409)
    return ui.redirect(IMAGES_PATH + "?done=import")


async def stop_import(ui: UiRequest) -> Response:
    await ui.ctx.run(boot_import.request_stop)
    return ui.redirect(IMAGES_PATH + "?done=stop")


def routes() -> list[BaseRoute]:
    return [
        ui_route(IMAGES_PATH, images),
        ui_route(IMAGES_PATH + "import/", start_import, admin=True, methods=("POST",)),
        ui_route(IMAGES_PATH + "stop/", stop_import, admin=True, methods=("POST",)),
    ]
