"""Settings: the cluster settings `maas set-config` exposes, validated by the same service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from metalplane.region.errors import Invalid
from metalplane.region.services import settings
from metalplane.region.ui.guard import UI_PREFIX, UiRequest, ui_route

SETTINGS_PATH = UI_PREFIX + "settings/"
# How MAAS's settings pages name them; anything not listed shows its API name.
LABELS = {
    "maas_name": "MAAS name",
    "ntp_servers": "NTP servers",
    "upstream_dns": "Upstream DNS",
    "dhcp_ha_mode": "DHCP HA mode",
    "dhcp_lease_time": "DHCP lease time (seconds)",
    "power_poll_interval": "Power poll interval (seconds)",
    "power_max_concurrency": "Power calls at once per rack",
    "commissioning_timeout": "Commissioning timeout (seconds)",
    "session_length": "Session timeout (seconds)",
}
CHOICES = {"dhcp_ha_mode": settings.HA_MODES}


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    help: str
    value: str
    choices: tuple[str, ...] | None
    errors: list[str]


def as_text(value: Any) -> str:
    """A stored value as the form shows it (lists space-separated, as set-config accepts them)."""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return "" if value is None else str(value)


def fields(current: dict[str, str], errors: dict[str, list[str]]) -> list[Field]:
    return [Field(name, LABELS.get(name, name), spec.doc, current[name], CHOICES.get(name), errors.get(name, []))
            for name, spec in settings.SETTINGS.items()]


async def _current(ui: UiRequest) -> dict[str, str]:
    async with ui.ctx.tx() as conn:
        return {name: as_text(await settings.get_setting(conn, name)) for name in settings.SETTINGS}


async def show(ui: UiRequest) -> Response:
    current = await _current(ui)
    return ui.render("settings.html", parts={"form": "settings_form.html"}, nav="settings", live=["settings"],
                     live_src=SETTINGS_PATH + "?part=form", fields=fields(current, {}),
                     saved=ui.params.str("saved") == "1")


async def save(ui: UiRequest) -> Response:
    current = await _current(ui)
    submitted = {name: ui.params.str(name, "") or "" for name in settings.SETTINGS if name in ui.params}
    changed = {name: value for name, value in submitted.items() if value != current[name]}
    try:
        async with ui.ctx.tx() as conn:
            await settings.set_settings(conn, changed)
    except Invalid as exc:
        return ui.render("settings.html", status=400, nav="settings", live=[], live_src="",
                         fields=fields({**current, **submitted}, exc.errors), saved=False)
    return ui.redirect(SETTINGS_PATH + "?saved=1")


def routes() -> list[BaseRoute]:
    return [
        ui_route(SETTINGS_PATH, show, admin=True),
        ui_route(SETTINGS_PATH, save, admin=True, methods=("POST",)),
    ]
