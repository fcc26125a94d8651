"""The power parameter schema: validation, defaults, identity, secrets (pure)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from metalplane.rpc.power_schema import (
    POWER_TYPES,
    REDACTED,
    Problem,
    bmc_address,
    bmc_identity,
    describe_power_types,
    redact,
    redfish_base_url,
    scrub,
    secret_values,
    split_host_port,
    validate_power_parameters,
    with_defaults,
)


def fields_of(problems: list[Problem]) -> set[str]:
    return {p.field for p in problems}


def test_power_types_are_maas_names():
    assert set(POWER_TYPES) == {"ipmi", "redfish", "webhook", "manual"}
    ipmi = {f.name for f in POWER_TYPES["ipmi"].fields}
    assert {
        "power_address",
        "power_user",
        "power_pass",
        "power_driver",
        "cipher_suite_id",
        "privilege_level",
        "power_boot_type",
        "k_g",
        "workaround_flags",
    } <= ipmi
    assert {f.name for f in POWER_TYPES["redfish"].fields} >= {
        "power_address",
        "power_user",
        "power_pass",
        "node_id",
        "power_verify_ssl",
    }
    assert {f.name for f in POWER_TYPES["webhook"].fields} >= {
        "power_on_uri",
        "power_off_uri",
        "power_query_uri",
        "power_on_regex",
        "power_off_regex",
        "power_user",
        "power_pass",
        "power_token",
    }
    assert POWER_TYPES["manual"].fields == ()


def test_valid_ipmi_and_defaults():
    params = {"power_address": "10.0.0.5", "power_user": "admin", "power_pass": "pw"}
    assert validate_power_parameters("ipmi", params) == []
    full = with_defaults("ipmi", params)
    assert full["cipher_suite_id"] == "3"
    assert full["privilege_level"] == "OPERATOR"
    assert full["power_driver"] == "LAN_2_0"
    assert full["workaround_flags"] == "opensesspriv"
    assert full["ipmi_client"] == "ipmitool"
    assert full["k_g"] == ""


@pytest.mark.parametrize(
    "params, bad",
    [
        ({}, {"power_address"}),
        ({"power_address": "10.0.0.5", "cipher_suite_id": "4"}, {"cipher_suite_id"}),
        ({"power_address": "10.0.0.5", "privilege_level": "ROOT"}, {"privilege_level"}),
        ({"power_address": "10.0.0.5", "power_driver": "LAN_3"}, {"power_driver"}),
        ({"power_address": "10.0.0.5:70000"}, {"power_address"}),
        ({"power_address": "bad host!"}, {"power_address"}),
        ({"power_address": "10.0.0.5", "workaround_flags": "opensesspriv,bogus"}, {"workaround_flags"}),
        ({"power_address": "10.0.0.5", "nonsense": "1"}, {"nonsense"}),
        ({"power_address": "10.0.0.5", "power_user": {"a": 1}}, {"power_user"}),
        ({"power_address": "10.0.0.5", "mac_address": "zz"}, {"mac_address"}),
        ({"power_address": "10.0.0.5\n"}, set()),  # stripped: fine
        ({"power_address": "10.0.0.5", "power_user": "a\nb"}, {"power_user"}),
    ],
)
def test_ipmi_problems(params, bad):
    assert fields_of(validate_power_parameters("ipmi", params)) == bad


def test_unknown_type_and_unknown_allowed():
    assert validate_power_parameters("virsh", {}) == [
        Problem("power_type", "unknown power type 'virsh'; known: ipmi, manual, redfish, webhook")
    ]
    assert validate_power_parameters("manual", {"x": "1"}, allow_unknown=True) == []


def test_multiple_choice_accepts_lists():
    assert (
        validate_power_parameters("ipmi", {"power_address": "h", "workaround_flags": ["opensesspriv", "authcap"]}) == []
    )
    assert with_defaults("ipmi", {"power_address": "h", "workaround_flags": ["a", "b"]})["workaround_flags"] == "a,b"


@pytest.mark.parametrize(
    "address, ok",
    [
        ("bmc1.example.com", True),
        ("https://10.0.0.6", True),
        ("http://127.0.0.1:8000", True),
        ("10.0.0.6:8443", True),
        ("[fd00::5]:443", True),
        ("ftp://x", False),
        ("https://u:p@x", False),
        ("https://x/redfish/v1", False),
        ("", False),
    ],
)
def test_redfish_address(address, ok):
    problems = validate_power_parameters("redfish", {"power_address": address})
    assert (problems == []) is ok, problems


def test_redfish_base_url():
    assert redfish_base_url("10.0.0.6") == "https://10.0.0.6"
    assert redfish_base_url("10.0.0.6:443") == "https://10.0.0.6"
    assert redfish_base_url("http://10.0.0.6:8000") == "http://10.0.0.6:8000"
    assert redfish_base_url("fd00::5") == "https://[fd00::5]"


def test_webhook_rules():
    base = {"power_on_uri": "http://h/on", "power_off_uri": "http://h/off"}
    assert validate_power_parameters("webhook", base) == []
    assert fields_of(validate_power_parameters("webhook", {**base, "power_on_uri": "h/on"})) == {"power_on_uri"}
    assert fields_of(validate_power_parameters("webhook", {**base, "power_on_regex": "("})) == {"power_on_regex"}
    both = {**base, "power_token": "t", "power_user": "u"}
    assert fields_of(validate_power_parameters("webhook", both)) == {"power_token"}
    assert with_defaults("webhook", base)["power_on_regex"] == r"status.*\:.*running"


def test_split_host_port():
    assert split_host_port("10.0.0.5", 623) == ("10.0.0.5", 623)
    assert split_host_port("10.0.0.5:1623", 623) == ("10.0.0.5", 1623)
    assert split_host_port("fd00::1", 623) == ("fd00::1", 623)
    assert split_host_port("[fd00::1]:99", 623) == ("fd00::1", 99)
    for bad in ("", "[fd00::1", "[fd00::1]x", "h:0", "h:x", "-bad-"):
        with pytest.raises(ValueError):
            split_host_port(bad, 623)


def test_identity_is_address_port_user_and_has_no_secret():
    a = {"power_address": "10.0.0.5", "power_user": "admin", "power_pass": "secret-one"}
    assert bmc_identity("ipmi", a) == "ipmi:10.0.0.5:623:admin"
    assert bmc_identity("ipmi", {**a, "power_pass": "other"}) == bmc_identity("ipmi", a)
    assert bmc_identity("ipmi", {**a, "power_address": "10.0.0.5:623"}) == bmc_identity("ipmi", a)
    assert bmc_identity("ipmi", {**a, "power_user": "root"}) != bmc_identity("ipmi", a)
    assert "secret-one" not in bmc_identity("ipmi", a)
    assert bmc_identity("redfish", {"power_address": "bmc1", "power_user": "root"}) == "redfish:https://bmc1:443:root"
    assert bmc_identity("manual", {}) is None
    assert bmc_identity("ipmi", {"power_address": "bad host!"}) is None
    hook = {"power_on_uri": "http://user:pw@hooks.example:8080/on?token=xyz", "power_off_uri": "http://h/off"}
    assert bmc_address("webhook", hook) == "http://hooks.example:8080"


def test_redact_and_scrub():
    params = {"power_address": "10.0.0.5", "power_user": "admin", "power_pass": "hunter22", "k_g": "kgkey1"}
    shown = redact("ipmi", params)
    assert shown["power_pass"] == REDACTED and shown["k_g"] == REDACTED and shown["power_user"] == "admin"
    assert sorted(secret_values("ipmi", params)) == ["hunter22", "kgkey1"]
    assert scrub("bad password hunter22 at 10.0.0.5", ["hunter22"]) == f"bad password {REDACTED} at 10.0.0.5"
    assert scrub("a message", ["a"]) == "a message"  # too short to scrub sensibly


def test_describe_is_maas_shaped_json():
    described = describe_power_types({"ipmi": ["ipmitool"]})
    json.dumps(described)
    by_name = {d["name"]: d for d in described}
    assert by_name["ipmi"]["missing_packages"] == ["ipmitool"]
    field = next(f for f in by_name["ipmi"]["fields"] if f["name"] == "power_pass")
    assert field["field_type"] == "password" and field["secret"] is True
    flags = next(f for f in by_name["ipmi"]["fields"] if f["name"] == "workaround_flags")
    assert flags["default"] == ["opensesspriv"]
    node_id = next(f for f in by_name["redfish"]["fields"] if f["name"] == "node_id")
    assert node_id["scope"] == "node"
    assert by_name["manual"]["queryable"] is False


def test_schema_import_is_light():
    code = (
        "import sys, metalplane.rpc.power_schema, metalplane.rack.power.errors; "
        "bad = [m for m in ('httpx', 'asyncio', 'subprocess', 'sqlalchemy', 'starlette') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
