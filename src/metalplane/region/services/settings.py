"""Cluster settings: `maas PROFILE maas get-config/set-config`, with MAAS 3.x's names, types and rules.

Every name MAAS's get_config/set_config accepts is here (its 66 CONFIG_ITEMS and
the two archive URLs MAAS keeps elsewhere), with MAAS's default, type and
validation, word for word, and the `ntp_server` alias; metalplane adds a few of
its own at the end (DHCP HA, lease time, power polling, commissioning timeout).
Values live in the `config` table as JSON. A setting metalplane does not act
on yet is stored and returned all the same; `Setting.acts` says what acting
means, and docs/settings.md lists them. Lists MAAS keeps as one string
(`ntp_servers`, `upstream_dns`, `dns_trusted_acl`) are strings here too.

A value the racks would refuse is refused here, with the setting's name as the
field: `ntp_servers` may hold hostnames (MAAS's default is `ntp.ubuntu.com`)
because DHCP hands out the rack's own address, not these.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region import validation as v
from metalplane.region.db.tables import boot_resources, config
from metalplane.region.errors import Invalid, raise_if
from metalplane.region.services import consequences
from metalplane.region.services.rows import first_row
from metalplane.rpc.services import DNSSEC_MODES

HA_MODES = ("hot-standby", "load-balancing")
ALIASES = {"ntp_server": "ntp_servers"}
SEPARATORS = re.compile(r"[,\s]+")
MAX_VALUE = 4096  # characters of any one setting's value


class Refusal(ValueError):
    """A value a setting does not take; the message is MAAS's."""


Parser = Callable[[str], Any]


@dataclass(frozen=True)
class Setting:
    parse: Parser
    default: Any
    doc: str
    acts: str = ""  # what metalplane does with it; "" = stored and returned only
    choices_from_images: str = ""  # "osystem", "release", "commissioning", "kernel": checked against images
    consequence: Callable[[AsyncConnection], None] | None = field(default=None, compare=False)

    @property
    def choices(self) -> tuple[str, ...] | None:
        """The fixed values it takes, when it takes only those; a boolean takes true or false."""
        if self.parse is boolean:
            return ("true", "false")
        if self.parse is ha_mode:
            return HA_MODES
        return self.parse.choices if isinstance(self.parse, Choice) else None


# -- parsers (each raises Refusal with MAAS's message) ------------------------------------------


def text(max_length: int = MAX_VALUE, required: bool = False) -> Parser:
    def parse(value: str) -> str:
        value = value.strip()  # Django's CharField strips
        if required and not value:
            raise Refusal(v.REQUIRED)
        if len(value) > max_length:
            raise Refusal(v.too_long(max_length, len(value)))
        return value

    return parse


def boolean(value: str) -> bool:
    """Django's BooleanField: 'false', 'False', '0' and '' are false, anything else true."""
    return value.strip().lower() not in ("false", "0", "")


def integer(min_value: int | None = None, max_value: int | None = None) -> Parser:
    def parse(value: str) -> int:
        try:
            return v.check_int(value, "value", min_value, max_value)
        except Invalid as exc:
            raise Refusal(exc.errors["value"][0]) from None

    return parse


def port(allowed: int | None = None) -> Parser:
    """MAAS's port rule: 1-65535, not a system port, not one of MAAS's own (5239-5284)."""

    def parse(value: str) -> int:
        number = integer()(value)
        if number == allowed:
            return number
        if number > 65535 or number <= 0:
            raise Refusal("Unable to change port number. Port number is not between 0 - 65535.")
        if number <= 1023:
            raise Refusal("Unable to change port number. Port number is reserved for system services.")
        if 5239 <= number <= 5284:
            raise Refusal("Unable to change port number. Port number is reserved for MAAS services.")
        return number

    return parse


@dataclass(frozen=True)
class Choice:
    """A parser that takes one of `choices` (a form offers them as a list)."""

    choices: tuple[str, ...]
    message: str | None = None

    def __call__(self, value: str) -> str:
        value = value.strip()
        if value not in self.choices:
            raise Refusal(self.message % {"value": value} if self.message else v.not_a_choice(value))
        return value


def choice(choices: tuple[str, ...], message: str | None = None) -> Parser:
    return Choice(choices, message)


def invalid_choice_text(name: str, choices: tuple[str, ...]) -> str:
    """MAAS's compose_invalid_choice_text (two spaces before "It should")."""
    listed = ", ".join(f"'{c}'" for c in choices)
    return "'%(value)s' is not a valid " + name + ".  It should be one of: " + listed + "."


def url(value: str) -> str | None:
    """Django's URLField: http(s)/ftp(s) with a host; blank clears it."""
    value = value.strip()
    if not value:
        return None
    parts = urlsplit(value)
    host = parts.hostname or ""
    if (
        parts.scheme not in ("http", "https", "ftp", "ftps")
        or not host
        or len(value) > 2048
        or (v.hostname_problem(host) and v.parse_ip(host) is None)
    ):
        raise Refusal("Enter a valid URL.")
    try:
        parts.port  # noqa: B018 -- a bad port raises here
    except ValueError:
        raise Refusal("Enter a valid URL.") from None
    return value


def split_list(value: str) -> list[str]:
    return [item for item in (i.strip() for i in SEPARATORS.split(value)) if item]


def as_list(value: Any) -> list[str]:
    """A stored list setting (MAAS's space-separated string; None: empty) as a list."""
    return split_list(value or "") if not isinstance(value, list) else [str(item) for item in value]


def ip_list(value: str) -> str | None:
    """upstream_dns: addresses, normalised to one space-separated string."""
    items = split_list(value)
    for item in items:
        _address(item, f"Invalid IP address: {v.shown(item)}; provide a list of space-separated IP addresses")
    return _joined(items, value)


_IPV4_LIKE = r"(?:\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})"
_IP_LIKE = re.compile(rf"^(?:{_IPV4_LIKE}|(?:(?:[\da-fA-F]+:+)+(?:[\da-fA-F]+|{_IPV4_LIKE})+))$")


def _address(item: str, message: str) -> str:
    address = v.parse_ip(item)
    if address is None:
        raise Refusal(message)
    return str(address)


def _hostname(item: str) -> str:
    problem = v.hostname_problem(item)
    if problem:
        raise Refusal(f"Invalid hostname: {problem}")
    return item


def _joined(items: list[str], value: str) -> str | None:
    return " ".join(items) if value.strip() else None


def host_list(value: str) -> str | None:
    """ntp_servers: addresses or hostnames; what looks like an address must be one."""
    return _joined(
        [
            _address(item, f"Failed to detect a valid IP address from '{v.shown(item)}'.")
            if _IP_LIKE.match(item) or ":" in item
            else _hostname(item)
            for item in split_list(value)
        ],
        value,
    )


_SUBNET_LIKE = re.compile(rf"^(?:{_IPV4_LIKE}|(?:[0-9A-Fa-f]{{1,4}})?:(?:[0-9A-Fa-f]{{1,4}})?:.*)/\d+$")
_ACL_IP_LIKE = re.compile(rf"^(?:{_IPV4_LIKE}|(?:[0-9A-Fa-f]{{1,4}})?:(?:[0-9A-Fa-f]{{1,4}})?:.*)$")


def acl_list(value: str) -> str | None:
    """dns_trusted_acl: networks, addresses or hostnames."""
    out = []
    for item in split_list(value):
        if _SUBNET_LIKE.match(item):
            network = v.parse_network(item)
            if network is None:
                raise Refusal(f"Invalid network: {v.shown(item)}.")
            out.append(item)  # as given, host bits included (MAAS keeps netaddr's form)
        elif _ACL_IP_LIKE.match(item):
            out.append(_address(item, f"Invalid IP address: {v.shown(item)}."))
        else:
            out.append(_hostname(item))
    return _joined(out, value)


def domain_name(value: str) -> str:
    value = value.strip()
    if (
        not re.fullmatch(
            r"(?:[a-zA-Z0-9](?:[-a-zA-Z0-9]{0,62}[a-zA-Z0-9])?\.)*"
            r"[a-zA-Z0-9](?:[-a-zA-Z0-9]{0,62}[a-zA-Z0-9])?\.?",
            value,
        )
        or len(value) > 255
    ):
        raise Refusal(f"Invalid domain name: {value}.")  # whole, as MAAS (MAX_VALUE bounds it)
    return value


def remote_syslog(value: str) -> str | None:
    """host[:port] (port 514 by default), stored as host:port; blank clears it."""
    value = value.strip()
    if not value:
        return None
    parts = urlsplit("//" + value)
    try:
        host, number = parts.hostname or "", parts.port or 514
    except ValueError:
        raise Refusal("Enter a valid host:port (a port between 1 and 65535).") from None
    if not host or (v.parse_ip(host) is None and v.hostname_problem(host)):
        raise Refusal(f"Invalid hostname: {v.shown(host)}.")
    shown_host = f"[{host}]" if ":" in host else host
    return f"{shown_host}:{number}"


def k_g(value: str) -> str:
    """An IPMI K_g key: empty, 20 characters, or 0x and 40 hex digits."""
    if value == "" or len(value) == 20 or re.fullmatch(r"0x[0-9a-fA-F]{40}", value):
        return value
    raise Refusal(
        "Error: K_g must either be 20 characters in length, or 40 hexadecimal characters "
        f'prefixed with "0x" (current length is {len(value)}).'
    )


_INTERVAL = re.compile(
    r"((?P<hours>\d+?)(\s?(hours?|hr|h))\s?)?((?P<minutes>\d+?)(\s?(minutes?|min|m))\s?)?"
    r"((?P<seconds>\d+?)(\s?(seconds?|sec|s))\s?)?"
)


def systemd_interval(value: str) -> str:
    value = value.strip()
    if not value or not _INTERVAL.fullmatch(value):
        raise Refusal(
            f"'{v.shown(value)}' is not a valid interval. Only 'h|hr|hour|hours, m|min|minute|minutes."
            "s|sec|second|seconds' are valid units"
        )
    return value


WORKAROUND_FLAGS = (
    "opensesspriv",
    "authcap",
    "idzero",
    "unexpectedauth",
    "forcepermsg",
    "endianseq",
    "intel20",
    "supermicro20",
    "sun20",
    "nochecksumcheck",
    "integritycheckvalue",
    "ipmiping",
    "",
)


def workaround_flags(value: str) -> list[str]:
    flags = split_list(value) if value.strip() else []
    for flag in flags:
        if flag not in WORKAROUND_FLAGS:
            raise Refusal("Valid choices are " + ", ".join(WORKAROUND_FLAGS))
    return flags


def ha_mode(value: str) -> str:
    if value not in HA_MODES:
        raise Refusal(f"must be one of {', '.join(HA_MODES)}")
    return value


def seconds(value: str) -> int:
    try:
        return v.check_int(value, "value", 30, 7 * 86400)
    except Invalid:
        raise Refusal("must be between 30 and 604800 seconds") from None


def concurrency(value: str) -> int:
    try:
        return v.check_int(value, "value", 1, 256)
    except Invalid:
        raise Refusal("must be between 1 and 256") from None


def dynamic_choice(value: str) -> str:
    return text(255)(value)  # the choices come from the images (checked in set_setting)


# -- the settings ---------------------------------------------------------------------------------

DHCP = "racks' DHCP"
_B = boolean
_DISCOVERY_INTERVALS = ("0", "604800", "86400", "43200", "21600", "10800", "3600", "1800", "600")


def _dhcp(conn: AsyncConnection) -> None:
    consequences.dhcp_changed(conn)


def _power(conn: AsyncConnection) -> None:
    consequences.power_settings_changed(conn)


def _regions(conn: AsyncConnection) -> None:
    consequences.region_services_changed(conn)


def _racks(conn: AsyncConnection) -> None:
    consequences.rack_services_changed(conn)


def _all_of(*each: Callable[[AsyncConnection], None]) -> Callable[[AsyncConnection], None]:
    def consequence(conn: AsyncConnection) -> None:
        for one in each:
            one(conn)

    return consequence


REGIONS_DNS = "regions' named"
RACKS_DNS = "racks' resolvers"


SETTINGS: dict[str, Setting] = {
    "maas_name": Setting(text(required=True), socket.gethostname(), "The name of this MAAS."),
    "theme": Setting(text(), "", "The web UI theme."),
    "kernel_opts": Setting(text(), None, "Boot parameters to pass to the kernel by default."),
    "enable_http_proxy": Setting(_B, True, "Enable the use of an APT or YUM and HTTP/HTTPS proxy."),
    "maas_proxy_port": Setting(port(), 8000, "Port to bind the MAAS built-in proxy."),
    "use_peer_proxy": Setting(_B, False, "Use the built-in proxy with an external proxy as a peer."),
    "prefer_v4_proxy": Setting(_B, False, "Sets IPv4 DNS resolution before IPv6."),
    "http_proxy": Setting(url, None, "Proxy for APT or YUM and HTTP/HTTPS."),
    "default_dns_ttl": Setting(
        integer(),
        30,
        "Default Time-To-Live for the DNS.",
        acts=f"{REGIONS_DNS}: the TTL of records whose domain or record sets none",
        consequence=_regions,
    ),
    "upstream_dns": Setting(
        ip_list,
        None,
        "Upstream DNS used to resolve domains not managed by this MAAS (space-separated IP addresses).",
        acts=f"{RACKS_DNS}: where names outside MAAS's zones are forwarded (none: resolved from the root)",
        consequence=_racks,
    ),
    "dnssec_validation": Setting(
        choice(DNSSEC_MODES, invalid_choice_text("dnssec_validation", DNSSEC_MODES)),
        "auto",
        "Enable DNSSEC validation of upstream zones.",
        acts=f"{RACKS_DNS}: dnssec-validation",
        consequence=_racks,
    ),
    "maas_internal_domain": Setting(
        domain_name, "maas-internal", "Domain name used by MAAS for internal mapping of MAAS provided services."
    ),
    "dns_trusted_acl": Setting(
        acl_list, None, "List of external networks that will be allowed to use MAAS for DNS resolution."
    ),
    "ntp_servers": Setting(
        host_list,
        "ntp.ubuntu.com",
        "Addresses of NTP servers.",
        acts="regions' chronyd follows them; with ntp_external_only the racks' chronyd too, "
        f"and in the {DHCP} the literal addresses among them are the NTP servers "
        "(option 42); otherwise the racks offer themselves",
        consequence=_all_of(_dhcp, _regions, _racks),
    ),
    "ntp_external_only": Setting(
        _B,
        False,
        "Use external NTP servers only.",
        acts=f"racks' chronyd follows ntp_servers instead of the regions; {DHCP}: which NTP servers option 42 names",
        consequence=_all_of(_dhcp, _racks),
    ),
    "allow_only_trusted_transfers": Setting(_B, False, "Allow only trusted zone transfers."),
    "remote_syslog": Setting(remote_syslog, None, "Remote syslog server to forward machine logs."),
    "maas_syslog_port": Setting(port(5247), 5247, "Port to bind the MAAS built-in syslog."),
    "network_discovery": Setting(
        choice(("enabled", "disabled"), invalid_choice_text("network_discovery", ("enabled", "disabled"))),
        "enabled",
        "Passive network discovery.",
        acts="racks' ARP listeners",
        consequence=_racks,
    ),
    "active_discovery_interval": Setting(
        lambda value: int(
            choice(_DISCOVERY_INTERVALS, invalid_choice_text("active_discovery_interval", _DISCOVERY_INTERVALS))(value)
        ),
        10800,
        "Active subnet mapping interval.",
    ),
    "default_boot_interface_link_type": Setting(
        choice(("auto", "dhcp", "static", "link_up")), "auto", "Default boot interface IP mode."
    ),
    "default_osystem": Setting(
        dynamic_choice, "ubuntu", "Default operating system used for deployment.", choices_from_images="osystem"
    ),
    "default_distro_series": Setting(
        dynamic_choice, "noble", "Default OS release used for deployment.", choices_from_images="release"
    ),
    "default_min_hwe_kernel": Setting(
        dynamic_choice, "", "Default minimum kernel version.", choices_from_images="kernel"
    ),
    "enable_kernel_crash_dump": Setting(_B, False, "Enable the kernel crash dump feature in deployed machines."),
    "default_storage_layout": Setting(
        choice(("bcache", "blank", "custom", "flat", "lvm", "vmfs6", "vmfs7")), "flat", "Default storage layout."
    ),
    "commissioning_distro_series": Setting(
        dynamic_choice, "noble", "Default Ubuntu release used for commissioning.", choices_from_images="commissioning"
    ),
    "enable_third_party_drivers": Setting(_B, True, "Enable the installation of proprietary drivers."),
    "windows_kms_host": Setting(text(), None, "Windows KMS activation host."),
    "enable_disk_erasing_on_release": Setting(_B, False, "Erase nodes' disks prior to releasing."),
    "disk_erase_with_secure_erase": Setting(_B, True, "Use secure erase by default when erasing disks."),
    "disk_erase_with_quick_erase": Setting(_B, False, "Use quick erase by default when erasing disks."),
    "boot_images_auto_import": Setting(_B, True, "Automatically import/refresh the boot images."),
    "boot_images_no_proxy": Setting(_B, False, "Set no_proxy with the image repository address."),
    "curtin_verbose": Setting(_B, True, "Run the fast-path installer with higher verbosity."),
    "force_v1_network_yaml": Setting(_B, False, "Always use the legacy v1 YAML for network configuration."),
    "enable_analytics": Setting(_B, True, "Enable Google Analytics in the web UI."),
    "completed_intro": Setting(_B, False, "Marks if the initial intro has been completed."),
    "max_node_commissioning_results": Setting(integer(1), 10, "Commissioning results kept per node."),
    "max_node_testing_results": Setting(integer(1), 10, "Testing results kept per node."),
    "max_node_installation_results": Setting(integer(1), 3, "Installation results kept per node."),
    "max_node_release_results": Setting(integer(1), 3, "Release results kept per node."),
    "subnet_ip_exhaustion_threshold_count": Setting(integer(1), 16, "Free addresses below which a subnet warns."),
    "release_notifications": Setting(_B, True, "Enable or disable notifications for new MAAS releases."),
    "use_rack_proxy": Setting(_B, True, "Use DNS and HTTP metadata proxy on the rack controllers."),
    "node_timeout": Setting(integer(1), 30, "Time, in minutes, until the node times out during a deployment."),
    "prometheus_enabled": Setting(_B, False, "Enable Prometheus exporter."),
    "prometheus_push_gateway": Setting(text(), None, "Address or hostname of the Prometheus push gateway."),
    "prometheus_push_interval": Setting(integer(), 60, "Interval of push to Prometheus gateway (minutes)."),
    "promtail_enabled": Setting(_B, False, "Enable streaming logs to Promtail."),
    "promtail_port": Setting(integer(), 5238, "TCP port of the Promtail push API."),
    "enlist_commissioning": Setting(_B, True, "Whether to run commissioning during enlistment."),
    "maas_auto_ipmi_user": Setting(text(20), "maas", "MAAS IPMI user."),
    "maas_auto_ipmi_user_privilege_level": Setting(
        choice(("USER", "OPERATOR", "ADMIN"), "Valid choices are ADMIN, OPERATOR, or USER"),
        "ADMIN",
        "MAAS IPMI privilege level.",
    ),
    "maas_auto_ipmi_k_g_bmc_key": Setting(k_g, "", "The IPMI K_g key to set during BMC configuration."),
    "maas_auto_ipmi_cipher_suite_id": Setting(
        choice(("17", "3", "", "8", "12"), "Valid choices are 17,3,,8,12"), "3", "MAAS IPMI default Cipher Suite ID."
    ),
    "maas_auto_ipmi_workaround_flags": Setting(workaround_flags, None, "IPMI workaround flags."),
    "vcenter_server": Setting(text(), "", "VMware vCenter server FQDN or IP address."),
    "vcenter_username": Setting(text(), "", "VMware vCenter username."),
    "vcenter_password": Setting(text(), "", "VMware vCenter password."),
    "vcenter_datacenter": Setting(text(), "", "VMware vCenter datacenter."),
    "hardware_sync_interval": Setting(systemd_interval, "15m", "Hardware Sync Interval."),
    "tls_cert_expiration_notification_enabled": Setting(_B, False, "Notify when the certificate is due to expire."),
    "tls_cert_expiration_notification_interval": Setting(integer(1, 90), 30, "Certificate expiration reminder (days)."),
    "session_length": Setting(
        integer(10, 1209600), 1209600, "Session timeout (seconds).", acts="web UI sessions: how long one lasts unused"
    ),
    "auto_vlan_creation": Setting(_B, True, "Automatically create VLANs and fabrics for interfaces."),
    # MAAS keeps these two as its default package repositories' URLs.
    "main_archive": Setting(url, "http://archive.ubuntu.com/ubuntu", "Main archive (amd64, i386)."),
    "ports_archive": Setting(url, "http://ports.ubuntu.com/ubuntu-ports", "Ports archive (other architectures)."),
    # metalplane's own.
    "dhcp_ha_mode": Setting(
        ha_mode,
        "hot-standby",
        "DHCP HA mode: hot-standby (MAAS's split 255) or load-balancing (split 128).",
        acts=f"{DHCP}: the HA mode of VLANs with two racks",
        consequence=_dhcp,
    ),
    "dhcp_lease_time": Setting(
        seconds, 600, "DHCP lease time in seconds.", acts=f"{DHCP}: the lease time", consequence=_dhcp
    ),
    "power_poll_interval": Setting(
        seconds,
        300,
        "Seconds between background power queries of each machine.",
        acts="racks' power polling",
        consequence=_power,
    ),
    "power_max_concurrency": Setting(
        concurrency,
        16,
        "Power calls a rack runs at once (all BMCs together).",
        acts="racks' power calls",
        consequence=_power,
    ),
    "commissioning_timeout": Setting(
        seconds,
        1800,
        "Seconds a commissioning machine has to report back before it fails.",
        acts="commissioning deadlines",
    ),
}


def canonical_name(name: str) -> str:
    return ALIASES.get(name, name)


def unknown(name: str) -> Invalid:
    shown = v.shown(name)
    return Invalid({shown: [f"{shown} is not a valid config setting (valid settings are: {', '.join(SETTINGS)})."]})


def setting(name: str) -> Setting:
    found = SETTINGS.get(canonical_name(name))
    if found is None:
        raise unknown(name)
    return found


def parse_setting(name: str, value: str) -> Any:
    """The stored form of `value`, or Invalid({name: [MAAS's reason]})."""
    found = setting(name)
    problem = v.text_problem(value, MAX_VALUE)
    if problem:
        raise Invalid.field(name, problem)
    try:
        return found.parse(value)
    except Refusal as exc:
        raise Invalid.field(name, str(exc)) from None


def shown_value(name: str, stored: Any) -> Any:
    """What get_config answers: strings where MAAS has strings (older metalplane stored lists)."""
    if name in ("ntp_servers", "upstream_dns", "dns_trusted_acl") and isinstance(stored, list):
        return " ".join(str(item) for item in stored) or None
    return stored


async def get_setting(conn: AsyncConnection, name: str) -> Any:
    name = canonical_name(name)
    found = setting(name)
    stored = await first_row(conn, select(config.c.value).where(config.c.name == f"setting:{name}"))
    return found.default if stored is None else shown_value(name, stored.value)


async def image_choices(conn: AsyncConnection, kind: str) -> list[str]:
    """The values an image-backed setting may take: from the boot resources' names
    ("os/release") and subarches. Empty when there are no images (then MAAS refuses)."""
    rows = (await conn.execute(select(boot_resources.c.name, boot_resources.c.extra))).all()
    found: set[str] = set()
    default_os = await get_setting(conn, "default_osystem") if kind == "release" else None
    for name, extra in rows:
        osystem, _, release = name.partition("/")
        if kind == "osystem":
            found.add(osystem)
        elif (kind == "release" and osystem == default_os) or (kind == "commissioning" and osystem == "ubuntu"):
            found.add(release)
        elif kind == "kernel":
            subarches = (extra or {}).get("subarches", "")
            found.update(s for s in str(subarches).split(",") if s.startswith(("hwe-", "ga-")))
    return sorted(found)


CHOICE_WORDS = {
    "osystem": "osystem",
    "release": "release",
    "commissioning": "commissioning_distro_series",
    "kernel": "default_min_hwe_kernel",
}


async def check_image_choice(conn: AsyncConnection, name: str, kind: str, value: str) -> None:
    if kind == "kernel" and value == "":
        return
    choices = await image_choices(conn, kind)
    if not choices:
        raise Invalid.field(name, "Unable to determine supported operating systems, due to missing boot images.")
    if value not in choices:
        shown = [""] + choices if kind == "kernel" else choices
        listed = ", ".join(f"'{c}'" for c in shown)
        raise Invalid.field(
            name, f"'{v.shown(value)}' is not a valid {CHOICE_WORDS[kind]}.  It should be one of: {listed}."
        )


async def set_setting(conn: AsyncConnection, name: str, value: str) -> Any:
    """Store a setting (MAAS's validation first); the racks that use it refetch what depends on it."""
    name = canonical_name(name)
    found = setting(name)
    parsed = parse_setting(name, value)
    # Writing back the value in force changes nothing, so it needs no image to back it
    # (clients that save every setting they read, as python-libmaas does, keep working).
    if found.choices_from_images and parsed != await get_setting(conn, name):
        await check_image_choice(conn, name, found.choices_from_images, parsed)
    await conn.execute(
        insert(config)
        .values(name=f"setting:{name}", value=parsed)
        .on_conflict_do_update(index_elements=["name"], set_={"value": parsed})
    )
    if found.consequence is not None:
        found.consequence(conn)
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
