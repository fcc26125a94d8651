"""Cluster settings MAAS exposes through `maas PROFILE maas get-config/set-config`.

Values live in the `config` table beside the cluster's secret; each setting
has a parser that refuses bad input with the reason.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import config
from metalplane.region.errors import Invalid, raise_if
from metalplane.region.services import consequences

HA_MODES = ("hot-standby", "load-balancing")


def _text(value: str) -> str:
    return value.strip()


def _addresses(value: str) -> list[str]:
    items = [v for v in value.replace(",", " ").split() if v]
    for item in items:
        try:
            ipaddress.ip_address(item)
        except ValueError:
            if not all(part.isalnum() or part == "-" for part in item.split(".")):
                raise ValueError(f"{item!r} is neither an IP address nor a host name") from None
    return items


def _ha_mode(value: str) -> str:
    if value not in HA_MODES:
        raise ValueError(f"must be one of {', '.join(HA_MODES)}")
    return value


def _seconds(value: str) -> int:
    seconds = int(value)
    if not 30 <= seconds <= 7 * 86400:
        raise ValueError("must be between 30 and 604800 seconds")
    return seconds


def _session_length(value: str) -> int:
    seconds = int(value)
    if not 10 <= seconds <= 1209600:
        raise ValueError("must be between 10 seconds and 2 weeks (1209600 seconds)")
    return seconds


def _concurrency(value: str) -> int:
    n = int(value)
    if not 1 <= n <= 256:
        raise ValueError("must be between 1 and 256")
    return n


@dataclass(frozen=True)
class Setting:
    parse: Callable[[str], Any]
    default: Any
    doc: str


SETTINGS: dict[str, Setting] = {
    "maas_name": Setting(_text, "metalplane", "The name of this MAAS."),
    "ntp_servers": Setting(_addresses, [], "Upstream NTP servers the racks' chrony follows."),
    "upstream_dns": Setting(_addresses, [], "Upstream DNS servers the region forwards to."),
    "dhcp_ha_mode": Setting(_ha_mode, "hot-standby",
                            "DHCP HA mode: hot-standby (MAAS's split 255) or load-balancing (split 128)."),
    "dhcp_lease_time": Setting(_seconds, 600, "DHCP lease time in seconds."),
    "power_poll_interval": Setting(_seconds, 300, "Seconds between background power queries of each machine."),
    "power_max_concurrency": Setting(_concurrency, 16, "Power calls a rack runs at once (all BMCs together)."),
    "commissioning_timeout": Setting(_seconds, 1800,
                                     "Seconds a commissioning machine has to report back before it fails."),
    "session_length": Setting(_session_length, 1209600,
                              "Seconds a web UI session lasts without being used (MAAS's default: 2 weeks)."),
}


def parse_setting(name: str, value: str) -> Any:
    if name not in SETTINGS:
        raise Invalid.field("name", f"{name} is not a valid config setting (valid: {', '.join(SETTINGS)}).")
    try:
        return SETTINGS[name].parse(value)
    except ValueError as exc:
        raise Invalid.field("value", f"{name}: {exc}") from None


async def get_setting(conn: AsyncConnection, name: str) -> Any:
    if name not in SETTINGS:
        raise Invalid.field("name", f"{name} is not a valid config setting (valid: {', '.join(SETTINGS)}).")
    stored = (await conn.execute(select(config.c.value).where(config.c.name == f"setting:{name}"))).scalar_one_or_none()
    return SETTINGS[name].default if stored is None else stored


async def set_setting(conn: AsyncConnection, name: str, value: str) -> Any:
    """Store a setting; the racks that use it refetch what depends on it."""
    parsed = parse_setting(name, value)
    await conn.execute(insert(config).values(name=f"setting:{name}", value=parsed)
                       .on_conflict_do_update(index_elements=["name"], set_={"value": parsed}))
    if name.startswith("dhcp_") or name == "ntp_servers":
        consequences.dhcp_changed(conn)
    if name.startswith("power_"):
        consequences.power_settings_changed(conn)
    return parsed


async def set_settings(conn: AsyncConnection, values: dict[str, str]) -> dict[str, Any]:
    """Several settings, all or none (the web UI's Settings form): Invalid names every
    bad one by its own name, with the reason set-config gives, and nothing is stored."""
    errors: dict[str, list[str]] = {}
    for name, value in values.items():
        try:
            parse_setting(name, value)
        except Invalid as exc:
            errors[name] = [reason for reasons in exc.errors.values() for reason in reasons]
    raise_if(errors)
    return {name: await set_setting(conn, name, value) for name, value in values.items()}
