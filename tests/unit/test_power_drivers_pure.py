"""Pure parts of the drivers: command lines, output parsing, error classification, Redfish decisions."""

from __future__ import annotations

import pytest

from metalplane.rack.power import ipmi, redfish, webhook
from metalplane.rack.power.errors import (
    PowerAuthError,
    PowerBackoffError,
    PowerBMCError,
    PowerConfigError,
    PowerConnectionError,
    PowerTimeoutError,
)
from metalplane.rpc.power_schema import with_defaults

PARAMS = with_defaults(
    "ipmi", {"power_address": "10.0.0.5:1623", "power_user": "admin", "power_pass": "hunter22", "k_g": "kgsecret"}
)


def test_ipmitool_command_keeps_secrets_out_of_argv():
    argv, env = ipmi.ipmitool_command(PARAMS, ["chassis", "power", "status"], timeout=20)
    assert argv[:7] == ["ipmitool", "-I", "lanplus", "-H", "10.0.0.5", "-p", "1623"]
    assert ["-C", "3"] == argv[argv.index("-C") : argv.index("-C") + 2]
    assert ["-L", "OPERATOR"] == argv[argv.index("-L") : argv.index("-L") + 2]
    assert "-E" in argv and "-K" in argv and argv[-3:] == ["chassis", "power", "status"]
    assert env == {"IPMI_PASSWORD": "hunter22", "IPMI_KGKEY": "kgsecret"}
    assert not any("hunter22" in a or "kgsecret" in a for a in argv)


def test_ipmitool_command_variants():
    lan = dict(PARAMS, power_driver="LAN", privilege_level="ADMIN", cipher_suite_id="17")
    argv, _env = ipmi.ipmitool_command(lan, ["x"], timeout=5)
    assert argv[2] == "lan" and "-C" not in argv and "-K" not in argv
    assert argv[argv.index("-L") + 1] == "ADMINISTRATOR"
    assert argv[argv.index("-R") + 1] == "1"
    assert ipmi.ipmitool_retries(1) == 1 and ipmi.ipmitool_retries(6) == 2 and ipmi.ipmitool_retries(30) == 3
    v6 = dict(PARAMS, power_address="[fd00::5]:623")
    assert ipmi.ipmitool_command(v6, [], timeout=5)[0][3:7] == ["-H", "fd00::5", "-p", "623"]


def test_bootdev_args():
    assert ipmi.ipmitool_bootdev_args("pxe", persistent=False, boot_type="auto") == ["chassis", "bootdev", "pxe"]
    assert ipmi.ipmitool_bootdev_args("pxe", persistent=True, boot_type="efi") == [
        "chassis",
        "bootdev",
        "pxe",
        "options=efiboot,persistent",
    ]


def test_ipmipower_command_and_config():
    argv = ipmi.ipmipower_command(PARAMS, "status", config_file="/run/x/c.conf", timeout=10)
    assert argv[:7] == ["ipmipower", "--config-file", "/run/x/c.conf", "-D", "LAN_2_0", "-h", "10.0.0.5:1623"]
    assert argv[-1] == "--stat" and ["-W", "opensesspriv"] == argv[argv.index("-W") : argv.index("-W") + 2]
    assert argv[argv.index("--session-timeout") + 1] == "9500"
    assert not any("hunter22" in a for a in argv)
    assert ipmi.freeipmi_config(PARAMS) == "username admin\npassword hunter22\nk_g kgsecret\n"
    plain = dict(PARAMS, power_address="10.0.0.5", workaround_flags="none")
    argv = ipmi.ipmipower_command(plain, "cycle", config_file="c", timeout=60)
    assert "-W" not in argv and argv[argv.index("-h") + 1] == "10.0.0.5" and argv[-1] == "--cycle"
    assert argv[argv.index("--session-timeout") + 1] == "20000"


def test_parse_status():
    assert ipmi.parse_ipmitool_status("Loading IANA PEN Registry...\nChassis Power is on\n") == "on"
    assert ipmi.parse_ipmitool_status("Chassis Power is off") == "off"
    assert ipmi.parse_ipmitool_status("garbage") is None
    assert ipmi.parse_ipmipower("10.0.0.5: on\n") == "on"
    assert ipmi.parse_ipmipower("fd00::5: password invalid\n") == "password invalid"
    assert ipmi.parse_ipmipower("") == ""


# Real outputs of ipmitool -v and ipmipower against ipmi_sim (see FIELD-NOTES "IPMI emulation").
WRONG_PASSWORD = (
    "Loading IANA PEN Registry...\n> RAKP 2 HMAC is invalid\nError: Unable to establish IPMI v2 / RMCP+ session\n"
)
WRONG_USER = (
    "Loading IANA PEN Registry...\nRAKP 2 message indicates an error : unauthorized name\n"
    "Error: Unable to establish IPMI v2 / RMCP+ session\n"
)
BAD_CIPHER = (
    "Error in open session response message : invalid authentication algorithm\n\n"
    "Error: Unable to establish IPMI v2 / RMCP+ session\n"
)
NO_PRIV = (
    "Loading IANA PEN Registry...\nGet HPM.x Capabilities request failed, compcode = d4\n"
    "Running Get VSO Capabilities my_addr 0x20, transit 0, target 0x20\n"
    "Invalid completion code received: Insufficient privilege level\nDiscovered IPMB address 0x0\n"
    "Set Chassis Power Control to Down/Off failed: Insufficient privilege level\n"
)
SILENT = (
    "Loading IANA PEN Registry...\nGet Auth Capabilities error\n"
    "Error issuing Get Channel Authentication Capabilities request\n"
    "Error: Unable to establish IPMI v2 / RMCP+ session\n"
)
NO_NAME = (
    "Address lookup for nosuch.invalid failed\nCould not open socket!\n"
    "Error: Unable to establish IPMI v2 / RMCP+ session\n"
)


@pytest.mark.parametrize(
    "output, cls, answer",
    [
        (WRONG_PASSWORD, PowerAuthError, "RAKP 2 HMAC is invalid"),
        (WRONG_USER, PowerAuthError, "RAKP 2 message indicates an error : unauthorized name"),
        (BAD_CIPHER, PowerConfigError, "Error in open session response message : invalid authentication algorithm"),
        (NO_PRIV, PowerConfigError, "Set Chassis Power Control to Down/Off failed: Insufficient privilege level"),
        (SILENT, PowerTimeoutError, "Error issuing Get Channel Authentication Capabilities request"),
        (NO_NAME, PowerConnectionError, "Address lookup for nosuch.invalid failed; Could not open socket!"),
        ("password invalid", PowerAuthError, "password invalid"),
        ("username invalid", PowerAuthError, "username invalid"),
        ("k_g invalid", PowerAuthError, "k_g invalid"),
        ("'off' requires atleast operator privilege", PowerConfigError, "'off' requires atleast operator privilege"),
        ("connection timeout", PowerTimeoutError, "connection timeout"),
        ("invalid hostname", PowerConnectionError, "invalid hostname"),
        ("BMC busy", PowerBMCError, "BMC busy"),
        (
            "Error: Unable to establish IPMI v2 / RMCP+ session\n",
            PowerTimeoutError,
            "Error: Unable to establish IPMI v2 / RMCP+ session",
        ),
    ],
)
def test_classify_failure(output, cls, answer):
    error = ipmi.classify_failure("10.0.0.5", output)
    assert type(error) is cls
    assert error.answer == answer
    assert "10.0.0.5" in str(error)
    assert answer in str(error)


def test_auth_message_reads_well():
    assert str(ipmi.classify_failure("10.0.0.5", WRONG_PASSWORD)) == (
        "authentication failed at BMC 10.0.0.5: wrong user name, password or BMC key "
        "(BMC answered: RAKP 2 HMAC is invalid)"
    )
    assert not PowerAuthError.retryable and PowerAuthError.persistent
    assert PowerTimeoutError.retryable and not PowerTimeoutError.persistent


def test_backoff_error_carries_last_error():
    e = PowerBackoffError("10.0.0.5", "retry in 30 s", last_error="x", retry_in=30)
    assert e.kind == "backoff" and e.last_error == "x" and e.retry_in == 30
    assert str(e).startswith("BMC 10.0.0.5 is failing")


def test_redfish_decisions():
    path = "/redfish/v1/Systems/1"
    system = {
        "PowerState": "On",
        "Actions": {
            "#ComputerSystem.Reset": {
                "target": "https://bmc/redfish/v1/Systems/1/Actions/ComputerSystem.Reset",
                "ResetType@Redfish.AllowableValues": ["On", "ForceOff", "ForceRestart"],
            }
        },
    }
    assert redfish.power_state_of(system) == "on"
    assert redfish.power_state_of({"PowerState": "PoweringOff"}) == "off"
    assert redfish.power_state_of({}) == "unknown"
    assert redfish.reset_target(system, path) == "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset"
    assert (
        redfish.reset_target({"Actions": {"#ComputerSystem.Reset": {"target": "http://evil/x"}}}, path)
        == path + "/Actions/ComputerSystem.Reset"
    )
    assert redfish.cycle_reset_type(system) == "ForceRestart"
    assert redfish.cycle_reset_type({**system, "PowerState": "Off"}) == "On"
    assert redfish.cycle_reset_type({"PowerState": "On"}) == "PowerCycle"


def test_webhook_regex():
    on, off = r"status.*\:.*running", r"status.*\:.*stopped"
    assert webhook.match_power_state('{"status": "running"}', on, off) == "on"
    assert webhook.match_power_state('{"status": "stopped"}', on, off) == "off"
    assert webhook.match_power_state("???", on, off) == "unknown"
