"""Cluster settings MAAS exposes through `maas PROFILE maas get-config/set-config`.

Values live in the `config` table beside the cluster's secret; each setting
has a parser that refuses bad input with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.dns.conf import parse_upstream_dns
from metalplane.ntp.config import parse_ntp_servers
from metalplane.region.db.tables import config
from metalplane.region.errors import Invalid
from metalplane.region.services import consequences

HA_MODES = ("hot-standby", "load-balancing")
DNSSEC_MODES = ("auto", "yes", "no")
NETWORK_DISCOVERY = ("enabled", "disabled")
#: Settings the regions' named and chronyd follow, and those in the racks' resolver, NTP and discovery.
REGION_SERVICE_SETTINGS = ("default_dns_ttl", "ntp_servers")
RACK_SERVICE_SETTINGS = ("upstream_dns", "dnssec_validation", "ntp_servers", "ntp_external_only",
                         "network_discovery")


def _text(value: str) -> str:
    return value.strip()


def _upstream_dns(value: str) -> list[str]:
    """Addresses only (MAAS): the resolvers must reach them without a resolver."""
    return [str(ip) for ip in parse_upstream_dns(value)]


def _ntp_servers(value: str) -> list[str]:
    return list(parse_ntp_servers(value))


def _choice(name: str, choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in choices:
            raise ValueError(f"'{value}' is not a valid {name}.  It should be one of: "
                             + ", ".join(f"'{c}'" for c in choices) + ".")
        return value
    return parse


def _flag(value: str) -> bool:
    """Django's BooleanField: 'false', 'False', '0' and '' are false, anything else true."""
    return value.strip() not in ("false", "False", "0", "")


def _ttl(value: str) -> int:
    try:
        ttl = int(value)
    except ValueError:
        raise ValueError("Enter a whole number.") from None
    if not 0 <= ttl <= 2**31 - 1:
        raise ValueError("Ensure this value is between 0 and 2147483647.")
    return ttl


def as_list(value: Any) -> list[str]:
    """A stored list setting, whether kept as a list or as MAAS's space-separated string."""
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in value.replace(",", " ").split() if v]
    return [str(v) for v in value]


def _ha_mode(value: str) -> str:
    if value not in HA_MODES:
        raise ValueError(f"must be one of {', '.join(HA_MODES)}")
    return value


def _seconds(value: str) -> int:
    seconds = int(value)
    if not 30 <= seconds <= 7 * 86400:
        raise ValueError("must be between 30 and 604800 seconds")
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
    "ntp_servers": Setting(_ntp_servers, [], "Addresses or host names of the NTP servers the regions follow."),
    "ntp_external_only": Setting(_flag, False, "Racks follow ntp_servers directly instead of the regions."),
    "upstream_dns": Setting(_upstream_dns, [], "Addresses of the DNS servers the racks' resolvers forward "
                                                "names outside MAAS to (none: resolve from the root)."),
    "dnssec_validation": Setting(_choice("dnssec_validation", DNSSEC_MODES), "auto",
                                 "DNSSEC validation of upstream answers: auto, yes or no."),
    "default_dns_ttl": Setting(_ttl, 30, "TTL of the DNS records MAAS serves, unless a domain or record sets one."),
    "network_discovery": Setting(_choice("network_discovery", NETWORK_DISCOVERY), "enabled",
                                 "Racks listen for ARP on their interfaces and report what they see."),
    "dhcp_ha_mode": Setting(_ha_mode, "hot-standby",
                            "DHCP HA mode: hot-standby (MAAS's split 255) or load-balancing (split 128)."),
    "dhcp_lease_time": Setting(_seconds, 600, "DHCP lease time in seconds."),
    "power_poll_interval": Setting(_seconds, 300, "Seconds between background power queries of each machine."),
    "power_max_concurrency": Setting(_concurrency, 16, "Power calls a rack runs at once (all BMCs together)."),
    "commissioning_timeout": Setting(_seconds, 1800,
                                     "Seconds a commissioning machine has to report back before it fails."),
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
    if name.startswith("dhcp_") or name in ("ntp_servers", "ntp_external_only"):
        consequences.dhcp_changed(conn)
    if name in REGION_SERVICE_SETTINGS:
        consequences.region_services_changed(conn)
    if name in RACK_SERVICE_SETTINGS:
        consequences.rack_services_changed(conn)
    if name.startswith("power_"):
        consequences.power_settings_changed(conn)
    return parsed
