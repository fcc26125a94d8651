"""The settings catalogue against MAAS 3.7.3's (tests/data/maas_settings.json): names, defaults, rules, messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from metalplane.region.errors import Invalid
from metalplane.region.services import dhcp, settings

MAAS = json.loads((Path(__file__).parent.parent / "data" / "maas_settings.json").read_text())
BY_NAME = {s["name"]: s for s in MAAS["settings"]}
PROBES = [(s["name"], p) for s in MAAS["settings"] for p in s.get("probes", [])]
METALPLANE_OWN = {
    "dhcp_ha_mode",
    "dhcp_lease_time",
    "power_poll_interval",
    "power_max_concurrency",
    "commissioning_timeout",
}


def test_every_maas_name_and_only_those_plus_ours():
    assert set(settings.SETTINGS) == set(BY_NAME) | METALPLANE_OWN
    assert list(settings.SETTINGS)[:66] == MAAS["valid_settings_order"]  # MAAS's order in its error message
    assert settings.ALIASES == MAAS["alias"]


@pytest.mark.parametrize("name", sorted(set(BY_NAME) - {"maas_name"}))
def test_defaults_are_maas(name):
    assert settings.SETTINGS[name].default == BY_NAME[name]["default"]


@pytest.mark.parametrize("name, probe", PROBES, ids=[f"{n}:{str(p['input'])[:20]}" for n, p in PROBES])
def test_maas_probes(name, probe):
    value = str(probe["input"])
    if "error" in probe:
        with pytest.raises(Invalid) as info:
            settings.parse_setting(name, value)
        assert info.value.errors == {name: [probe["error"]]}
    else:
        assert settings.parse_setting(name, value) == probe["accepted_as"]


@pytest.mark.parametrize("name", sorted(n for n, s in BY_NAME.items() if s.get("choices") and s["type"] == "choice"))
def test_choices_are_maas(name):
    spec = BY_NAME[name]
    for choice in spec["choices"]:
        assert str(settings.parse_setting(name, choice)) == choice
    with pytest.raises(Invalid) as info:
        settings.parse_setting(name, "no-such-choice")
    expected = spec.get(
        "invalid_choice_message", "Select a valid choice. %(value)s is not one of the available choices."
    ).replace("%(value)s", "no-such-choice")
    if "%(value)s" not in spec.get("invalid_choice_message", "%(value)s"):
        expected = spec["invalid_choice_message"]
    assert info.value.errors == {name: [expected]}


@pytest.mark.parametrize(
    "word, value",
    [("true", True), ("no", True), ("", False), ("false", False), ("False", False), ("0", False), ("1", True)],
)
def test_booleans_read_as_djangos_boolean_field(word, value):
    assert settings.parse_setting("enable_analytics", word) is value


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("max_node_commissioning_results", "0", "Ensure this value is greater than or equal to 1."),
        ("session_length", "9", "Ensure this value is greater than or equal to 10."),
        ("tls_cert_expiration_notification_interval", "91", "Ensure this value is less than or equal to 90."),
        ("default_dns_ttl", "soon", "Enter a whole number."),
        (
            "upstream_dns",
            "8.8.8.8 dns.google",
            "Invalid IP address: dns.google; provide a list of space-separated IP addresses",
        ),
        (
            "upstream_dns",
            "fe80::1%eth0",
            "Invalid IP address: fe80::1%eth0; provide a list of space-separated IP addresses",
        ),
        ("maas_auto_ipmi_user", "u" * 21, "Ensure this value has at most 20 characters (it has 21)."),
        ("http_proxy", "not a url", "Enter a valid URL."),
        ("maas_name", " ", "This field is required."),
        ("kernel_opts", "a\x00b", "Null characters are not allowed."),
    ],
)
def test_values_maas_refuses(name, value, message):
    with pytest.raises(Invalid) as info:
        settings.parse_setting(name, value)
    assert info.value.errors == {name: [message]}


def test_lists_maas_keeps_as_strings_are_strings():
    assert settings.parse_setting("upstream_dns", "8.8.8.8, 2001:db8::53") == "8.8.8.8 2001:db8::53"
    assert settings.parse_setting("upstream_dns", "") is None
    assert settings.parse_setting("ntp_servers", "ntp.ubuntu.com") == "ntp.ubuntu.com"
    assert settings.shown_value("ntp_servers", ["10.0.0.1", "ntp.example.com"]) == "10.0.0.1 ntp.example.com"
    assert settings.shown_value("upstream_dns", []) is None


def test_unknown_names_get_maas_error_and_the_alias_works():
    with pytest.raises(Invalid) as info:
        settings.parse_setting("no_such", "x")
    assert info.value.errors == {
        "no_such": [
            MAAS["unknown_name_message_template"]
            .replace("%s", "no_such", 1)
            .replace(
                ").",
                ", main_archive, ports_archive, "
                + ", ".join(sorted(METALPLANE_OWN, key=list(settings.SETTINGS).index))
                + ").",
            )
        ]
    }
    assert settings.parse_setting("ntp_server", "10.0.0.1") == "10.0.0.1"


def test_every_setting_says_whether_it_acts():
    acting = {name for name, s in settings.SETTINGS.items() if s.acts}
    assert {
        "ntp_servers",
        "ntp_external_only",
        "upstream_dns",
        "dnssec_validation",
        "default_dns_ttl",
        "network_discovery",
        "session_length",
    } | METALPLANE_OWN == acting
    docs = (Path(__file__).parents[2] / "docs" / "settings.md").read_text()
    for name in settings.SETTINGS:
        assert f"`{name}`" in docs, f"docs/settings.md does not mention {name}"


# -- what DHCP hands out (the option 42 fix) -----------------------------------------------------------


def test_dhcp_ntp_servers_are_addresses_the_rack_can_serve():
    # MAAS's default is a hostname: DHCP then names the rack itself (it serves NTP to its VLANs).
    names = settings.split_list("ntp.ubuntu.com")
    assert dhcp.ntp_option(["10.0.0.2"], dhcp.ipv4_only(names), False) == ["10.0.0.2"]
    assert dhcp.ntp_option(["10.0.0.2"], dhcp.ipv4_only(names), True) == ["10.0.0.2"]
    external = dhcp.ipv4_only(settings.split_list("192.0.2.1 ntp.example.com 2001:db8::1"))
    assert external == ["192.0.2.1"]
    assert dhcp.ntp_option(["10.0.0.2"], external, True) == ["192.0.2.1"]
    assert dhcp.ntp_option(["10.0.0.2"], external, False) == ["10.0.0.2"]
