"""Settings: the cluster settings `maas set-config` exposes, validated by the same service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from metalplane.region.errors import Invalid
from metalplane.region.services import settings
from metalplane.region.ui.guard import UI_PREFIX, LivePage, UiRequest, ui_route

SETTINGS_PATH = UI_PREFIX + "settings/"
SETTINGS_PAGE = LivePage("settings.html", "settings", {"form": "settings_form.html"})
# MAAS's settings pages, in their order; each setting in one section. A setting not
# named here (a new one) lands in "Other" with its API name, so none is ever hidden.
SECTIONS: dict[str, tuple[str, ...]] = {
    "General": ("maas_name", "theme", "enable_analytics", "release_notifications"),
    "Security": (
        "session_length",
        "tls_cert_expiration_notification_enabled",
        "tls_cert_expiration_notification_interval",
    ),
    "Network": (
        "enable_http_proxy",
        "http_proxy",
        "use_peer_proxy",
        "prefer_v4_proxy",
        "maas_proxy_port",
        "upstream_dns",
        "dnssec_validation",
        "maas_internal_domain",
        "dns_trusted_acl",
        "default_dns_ttl",
        "allow_only_trusted_transfers",
        "use_rack_proxy",
        "ntp_servers",
        "ntp_external_only",
        "remote_syslog",
        "maas_syslog_port",
        "network_discovery",
        "active_discovery_interval",
        "auto_vlan_creation",
    ),
    "DHCP and power": ("dhcp_ha_mode", "dhcp_lease_time", "power_poll_interval", "power_max_concurrency"),
    "Commissioning": (
        "commissioning_distro_series",
        "default_min_hwe_kernel",
        "enlist_commissioning",
        "commissioning_timeout",
        "maas_auto_ipmi_user",
        "maas_auto_ipmi_user_privilege_level",
        "maas_auto_ipmi_k_g_bmc_key",
        "maas_auto_ipmi_cipher_suite_id",
        "maas_auto_ipmi_workaround_flags",
    ),
    "Deploy": (
        "default_osystem",
        "default_distro_series",
        "kernel_opts",
        "default_boot_interface_link_type",
        "enable_kernel_crash_dump",
        "enable_third_party_drivers",
        "curtin_verbose",
        "force_v1_network_yaml",
        "node_timeout",
        "hardware_sync_interval",
        "windows_kms_host",
        "vcenter_server",
        "vcenter_username",
        "vcenter_password",
        "vcenter_datacenter",
    ),
    "Storage": (
        "default_storage_layout",
        "enable_disk_erasing_on_release",
        "disk_erase_with_secure_erase",
        "disk_erase_with_quick_erase",
    ),
    "Images": ("boot_images_auto_import", "boot_images_no_proxy", "main_archive", "ports_archive"),
    "Monitoring": (
        "prometheus_enabled",
        "prometheus_push_gateway",
        "prometheus_push_interval",
        "promtail_enabled",
        "promtail_port",
        "subnet_ip_exhaustion_threshold_count",
        "max_node_commissioning_results",
        "max_node_testing_results",
        "max_node_installation_results",
        "max_node_release_results",
    ),
}
OTHER = "Other"
# How MAAS's settings pages name them; anything not listed shows its API name.
LABELS = {
    "maas_name": "MAAS name",
    "ntp_servers": "NTP servers",
    "ntp_external_only": "Use external NTP servers only",
    "upstream_dns": "Upstream DNS",
    "dnssec_validation": "DNSSEC validation",
    "http_proxy": "HTTP proxy",
    "dhcp_ha_mode": "DHCP HA mode",
    "dhcp_lease_time": "DHCP lease time (seconds)",
    "power_poll_interval": "Power poll interval (seconds)",
    "power_max_concurrency": "Power calls at once per rack",
    "commissioning_timeout": "Commissioning timeout (seconds)",
    "session_length": "Session timeout (seconds)",
    "default_osystem": "Default operating system",
    "default_distro_series": "Default OS release",
    "commissioning_distro_series": "Default commissioning release",
    "default_min_hwe_kernel": "Default minimum kernel version",
}


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    help: str
    value: str
    choices: tuple[str, ...] | None
    errors: list[str]


@dataclass(frozen=True)
class Section:
    title: str
    anchor: str
    fields: list[Field]


def as_text(value: Any) -> str:
    """A stored value as the form shows it (lists space-separated, as set-config accepts them;
    booleans as MAAS writes them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return "" if value is None else str(value)


def label_of(name: str) -> str:
    return LABELS.get(name) or name.replace("_", " ").capitalize()


def section_of(name: str) -> str:
    return next((title for title, names in SECTIONS.items() if name in names), OTHER)


def choices_of(spec: settings.Setting, value: str, from_images: list[str]) -> tuple[str, ...] | None:
    """What a select offers: the setting's fixed values, or the images' (with the current
    value kept, so saving the form never changes it unasked); None: a text box."""
    offered = spec.choices or tuple(from_images)
    if not offered:
        return None
    return offered if value in offered else (value, *offered)


def sections(
    current: dict[str, str], errors: dict[str, list[str]], image_choices: dict[str, list[str]]
) -> list[Section]:
    def field_of(name: str) -> Field:
        spec, value = settings.SETTINGS[name], current[name]
        return Field(
            name,
            label_of(name),
            spec.doc + (f" Acts: {spec.acts}." if spec.acts else ""),
            value,
            choices_of(spec, value, image_choices.get(name, [])),
            errors.get(name, []),
        )

    named = {title: [n for n in names if n in settings.SETTINGS] for title, names in SECTIONS.items()}
    named[OTHER] = [n for n in settings.SETTINGS if section_of(n) == OTHER]
    return [
        Section(title, "section-" + title.lower().replace(" ", "-"), [field_of(n) for n in names])
        for title, names in named.items()
        if names
    ]


async def _current(ui: UiRequest) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Every setting's value as text, and the images' values for the settings that take them."""
    async with ui.ctx.tx() as conn:
        current = {name: as_text(await settings.get_setting(conn, name)) for name in settings.SETTINGS}
        offered = {
            name: await settings.image_choices(conn, spec.choices_from_images)
            for name, spec in settings.SETTINGS.items()
            if spec.choices_from_images
        }
    return current, offered


async def show(ui: UiRequest) -> Response:
    current, offered = await _current(ui)
    return ui.live_page(
        SETTINGS_PAGE,
        SETTINGS_PATH + "?part=form",
        sections=sections(current, {}, offered),
        saved=ui.params.str("saved") == "1",
    )


async def save(ui: UiRequest) -> Response:
    """Only what the form changed is set (all or nothing), through set-config's own checks."""
    current, offered = await _current(ui)
    submitted = {name: ui.params.str(name, "") or "" for name in settings.SETTINGS if name in ui.params}
    changed = {name: value for name, value in submitted.items() if value != current[name]}
    try:
        await ui.ctx.run(settings.set_settings, changed)
    except Invalid as exc:
        return ui.render(
            "settings.html",
            status=400,
            nav="settings",
            live=[],
            live_src="",
            sections=sections({**current, **submitted}, exc.errors, offered),
            saved=False,
        )
    return ui.redirect(SETTINGS_PATH + "?saved=1")


def routes() -> list[BaseRoute]:
    return [
        ui_route(SETTINGS_PATH, show, admin=True),
        ui_route(SETTINGS_PATH, save, admin=True, methods=("POST",)),
    ]
