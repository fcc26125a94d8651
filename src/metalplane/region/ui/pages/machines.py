"""Machines (paged and filtered in the database) and a machine's page: power,
commissioning and its results, events, through the services the API's machine
actions use (with their rights: powering is for admins and the machine's owner,
commissioning for admins, as in MAAS)."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import Response
from starlette.routing import BaseRoute

from metalplane.region.api.errors import status_of
from metalplane.region.errors import Invalid, Refused, Unavailable
from metalplane.region.services import commissioning, machine_list, machines, power
from metalplane.region.services.machine_list import MachineFilter
from metalplane.region.ui.guard import UI_PREFIX, LivePage, UiRequest, message_of, ui_route
from metalplane.region.ui.pages.controllers import MAX_PAGE, page_count

MACHINES_PATH = UI_PREFIX + "machines/"
MACHINES_PAGE = LivePage("machines.html", "machines", {"table": "machines_table.html"})
MACHINE_PAGE = LivePage("machine.html", "machines", {"body": "machine_body.html"})
POWER_ACTIONS = {"on": "Power on", "off": "Power off", "cycle": "Power cycle"}
# What the page says after an action (fixed words: nothing from the URL is shown).
DONE = {
    "on": "Powered on.",
    "off": "Powered off.",
    "cycle": "Power cycled.",
    "commission": "Commissioning started: the machine boots the ephemeral image and reports back.",
}


def machine_path(system_id: str) -> str:
    return f"{UI_PREFIX}machine/{system_id}/"


def parse_filter(status: str | None, zone: str | None, search: str | None) -> MachineFilter:
    """The filter form's values; a status that is not one of MAAS's is refused by name."""
    status_value = None
    if status:
        if not status.isdigit() or int(status) not in machines.STATUS_NAMES:
            raise Invalid.field("status", f"Select a valid choice. {status} is not one of the available choices.")
        status_value = int(status)
    return MachineFilter(status_value, zone or None, machine_list.parse_search(search))


def query_of(status: str, zone: str, search: str, page: int | None = None) -> str:
    """The list's URL query for these filters (empty ones left out), so paging keeps them."""
    pairs = [(k, v) for k, v in (("status", status), ("zone", zone), ("q", search)) if v]
    if page is not None:
        pairs.append(("page", str(page)))
    return urlencode(pairs)


async def machine_list_view(ui: UiRequest) -> Response:
    p = ui.params
    page = p.int("page", 1, min_value=1, max_value=MAX_PAGE) or 1
    status, zone, search = p.str("status") or "", p.str("zone") or "", (p.str("q") or "").strip()
    flt = parse_filter(status, zone, search)
    size = machine_list.PAGE_SIZE
    async with ui.ctx.tx() as conn:
        rows, total = await machine_list.machine_page(conn, flt, ui.user, (page - 1) * size, size)
        zones = await machine_list.zone_names(conn)
    query = query_of(status, zone, search)
    return ui.live_page(
        MACHINES_PAGE,
        f"{MACHINES_PATH}?{query_of(status, zone, search, page)}&part=table",
        rows=rows,
        total=total,
        page=page,
        pages=page_count(total, size),
        pager_base=f"{MACHINES_PATH}?{query + '&' if query else ''}",
        statuses=machines.STATUS_NAMES,
        zones=zones,
        status_filter=status,
        zone=zone,
        search=search,
    )


async def _machine(ui: UiRequest, error: str = "", status: int = 200) -> Response:
    system_id = ui.ctx.path["system_id"]
    detail = await ui.ctx.run(machine_list.machine_detail, system_id, ui.user)
    return ui.live_page(
        MACHINE_PAGE,
        machine_path(system_id) + "?part=body",
        status=status,
        d=detail,
        power_actions=POWER_ACTIONS,
        error=error,
        done=ui.done(DONE),
    )


async def machine(ui: UiRequest) -> Response:
    return await _machine(ui)


async def power_action(ui: UiRequest) -> Response:
    """The API's power_on/power_off/power_cycle (same service, same rule: admins and the
    machine's owner); the BMC's owner rack acts."""
    action = ui.params.str("action") or ""
    if action not in POWER_ACTIONS:
        raise Invalid.field("action", f"Select a valid choice. {action} is not one of the available choices.")
    system_id = ui.ctx.path["system_id"]
    try:
        await power.power_machine(ui.ctx.work, ui.ctx.rpc, system_id, action, ui.user)
    except power.PowerFailed as exc:
        return await _machine(ui, message_of(exc), status=status_of(exc))
    return ui.redirect(machine_path(system_id) + f"?done={action}")


async def commission(ui: UiRequest) -> Response:
    """The API's commission (same service): into Commissioning, then powered on to boot."""
    system_id = ui.ctx.path["system_id"]
    try:
        await commissioning.commission(ui.ctx.work, ui.ctx.rpc, system_id, None, ui.user)
    except (Invalid, Refused, Unavailable) as exc:  # not commissionable now, or the BMC did not answer
        return await _machine(ui, message_of(exc), status=status_of(exc))
    return ui.redirect(machine_path(system_id) + "?done=commission")


def routes() -> list[BaseRoute]:
    return [
        ui_route(MACHINES_PATH, machine_list_view),
        ui_route(UI_PREFIX + "machine/{system_id}/", machine),
        ui_route(UI_PREFIX + "machine/{system_id}/power/", power_action, methods=("POST",)),
        ui_route(UI_PREFIX + "machine/{system_id}/commission/", commission, admin=True, methods=("POST",)),
    ]
