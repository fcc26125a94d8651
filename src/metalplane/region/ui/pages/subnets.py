"""Subnets (grouped by fabric and VLAN) and a VLAN's page with Configure DHCP.

The dialog's submit runs vlan_dhcp.configure_dhcp in one transaction: the API's
range and VLAN rules decide, and their messages are shown beside the field
they name (`place_errors`); on any refusal nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.responses import Response
from starlette.routing import BaseRoute

from metalplane.region.errors import Invalid, PermissionDenied
from metalplane.region.services import network_overview as overview
from metalplane.region.services import settings, vlan_dhcp
from metalplane.region.services.network_overview import VlanPage
from metalplane.region.ui.guard import UI_PREFIX, LivePage, UiRequest, ui_route

SUBNETS_PATH = UI_PREFIX + "subnets/"
SUBNETS_PAGE = LivePage("subnets.html", "subnets", {"table": "subnets_table.html"})
VLAN_PAGE = LivePage("vlan.html", "subnets", {"body": "vlan_body.html"})
ALL = "__all__"
# Where each API field's message goes in the dialog. The VLAN's rules that name no
# field (primary = secondary, no primary, a primary that is down) are about the
# racks: they go beside the rack choice.
SLOTS = {
    "primary_rack": "primary_rack",
    "secondary_rack": "secondary_rack",
    ALL: "racks",
    "dhcp_on": "dynamic_range",
    "dynamic_range": "dynamic_range",
    "type": "dynamic_range",
    "subnet": "subnet",
    "start_ip": "start_ip",
    "end_ip": "end_ip",
    "dhcp_ha_mode": "dhcp_ha_mode",
}


# After a change, the page says what happened (fixed words: nothing from the URL is shown).
DONE = {"on": "DHCP is on: the racks are starting it.", "off": "DHCP is off: the racks are stopping it."}


def vlan_path(vlan_id: int) -> str:
    return f"{UI_PREFIX}vlan/{vlan_id}/"


def place_errors(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """The API's {field: [message]} as {dialog slot: [message]}; a field the dialog does
    not show goes with the racks (it is a VLAN rule), never dropped."""
    placed: dict[str, list[str]] = {}
    for name, messages in errors.items():
        placed.setdefault(SLOTS.get(name, "racks"), []).extend(messages)
    return placed


@dataclass
class DhcpForm:
    """The dialog's values: what was submitted, or the defaults for this VLAN."""

    primary_rack: str
    secondary_rack: str
    dynamic_range: str
    subnet: str
    start_ip: str
    end_ip: str
    ha_mode: str
    errors: dict[str, list[str]] = field(default_factory=dict)


def default_form(page: VlanPage) -> DhcpForm:
    """MAAS's choices: the current racks (or the first rack on the VLAN), the existing
    dynamic range, else a new one from the suggested free block."""
    vlan = page.vlan
    racks = [r.system_id for r in page.racks]
    primary = vlan.primary_rack or (racks[0] if racks else "")
    secondary = vlan.secondary_rack or ""
    suggestion = page.suggestion
    if page.dynamic_ranges:
        choice, subnet, start, end = "existing", str(page.dynamic_ranges[0][0].id), "", ""
    elif suggestion is not None:
        choice, subnet, start, end = "new", str(suggestion[0].id), suggestion[1][0], suggestion[1][1]
    else:
        choice, subnet, start, end = "new", str(vlan.subnets[0].id) if vlan.subnets else "", "", ""
    return DhcpForm(primary, secondary, choice, subnet, start, end, page.ha_mode)


def submitted_form(ui: UiRequest) -> DhcpForm:
    p = ui.params
    return DhcpForm(
        p.str("primary_rack") or "",
        p.str("secondary_rack") or "",
        p.str("dynamic_range") or "",
        p.str("subnet") or "",
        (p.str("start_ip") or "").strip(),
        (p.str("end_ip") or "").strip(),
        p.str("dhcp_ha_mode") or "",
    )


async def subnets(ui: UiRequest) -> Response:
    fabrics = await ui.ctx.run(overview.subnets_by_fabric)
    return ui.live_page(
        SUBNETS_PAGE,
        SUBNETS_PATH + "?part=table",
        fabrics=fabrics,
    )


async def _vlan(ui: UiRequest, form: DhcpForm | None = None, status: int = 200, message: str = "") -> Response:
    vlan_id = ui.ctx.path_int("vlan_id")
    page = await ui.ctx.run(overview.vlan_page, vlan_id)
    configuring = form is not None or ui.params.str("dhcp") == "configure"
    if configuring and not ui.user.is_superuser:
        raise PermissionDenied("Only admins can configure DHCP.")
    return ui.live_page(
        VLAN_PAGE,
        vlan_path(vlan_id) + "?part=body",
        status=status,
        page=page,
        form=(form or default_form(page)) if configuring else None,
        ha_modes=settings.HA_MODES,
        message=message or ui.done(DONE),
    )


async def vlan(ui: UiRequest) -> Response:
    return await _vlan(ui)


def choice_of(form: DhcpForm) -> vlan_dhcp.DhcpChoice:
    return vlan_dhcp.DhcpChoice(
        primary_rack=form.primary_rack,
        secondary_rack=form.secondary_rack,
        dynamic_range=vlan_dhcp.parse_range_choice(form.dynamic_range),
        subnet=form.subnet,
        start_ip=form.start_ip,
        end_ip=form.end_ip,
        ha_mode=form.ha_mode or None,
    )


async def configure(ui: UiRequest) -> Response:
    """Configure (or reconfigure) DHCP: all or nothing, with the API's messages on refusal."""
    vlan_id = ui.ctx.path_int("vlan_id")
    form = submitted_form(ui)
    try:
        choice = choice_of(form)
        await ui.ctx.run(vlan_dhcp.configure_dhcp, vlan_id, choice, ui.user)
    except Invalid as exc:
        form.errors = place_errors(exc.errors)
        return await _vlan(ui, form, status=400)
    return ui.redirect(vlan_path(vlan_id) + "?done=on")


async def disable(ui: UiRequest) -> Response:
    vlan_id = ui.ctx.path_int("vlan_id")
    await ui.ctx.run(vlan_dhcp.disable_dhcp, vlan_id)
    return ui.redirect(vlan_path(vlan_id) + "?done=off")


def routes() -> list[BaseRoute]:
    return [
        ui_route(SUBNETS_PATH, subnets),
        ui_route(UI_PREFIX + "vlan/{vlan_id}/", vlan),
        ui_route(UI_PREFIX + "vlan/{vlan_id}/dhcp/", configure, admin=True, methods=("POST",)),
        ui_route(UI_PREFIX + "vlan/{vlan_id}/dhcp/off/", disable, admin=True, methods=("POST",)),
    ]
