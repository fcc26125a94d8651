"""Power control and BMC HA: a region, 3 racks and emulated BMCs (ipmi_sim and Redfish)
in network namespaces; every call through the `metalplane` CLI."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from tests.support.bmc_ipmi import IpmiSimBmc
from tests.support.bmc_redfish import HttpBmc, HttpBmcEmulator
from tests.support.netlab import Lab
from tests.support.processes import wait_until
from tests.support.stack import PYTHON, Stack

pytestmark = pytest.mark.system
RACKS = ("rack1", "rack2", "rack3")
PASSWORD = "bmc-secret-1"


@pytest.fixture(scope="module")
def lab(databases):
    with Lab() as lab:
        lab.add_network("ctl", "10.71.0.0/24")
        lab.add_network("bmc", "10.70.0.0/24")
        region = lab.add_host("region", {"ctl": "10.71.0.10/24"})
        bmchost = lab.add_host("bmchost", {"bmc": "10.70.0.100/24"})
        for n in range(101, 108):
            bmchost.add_address("bmc", f"10.70.0.{n}/24")
        stack = Stack(lab, databases)
        stack.start_region(region, "ctl")
        stack.cli("admin", "maas", "set-config", "name=power_poll_interval", "value=30")
        for n, name in enumerate(RACKS, start=2):
            host = lab.add_host(name, {"ctl": f"10.71.0.{n}/24", "bmc": f"10.70.0.{n}/24"})
            stack.add_rack(host, name)
            stack.start_rack(name)
        wait_until(lambda: len(stack.api("rack-controllers", "read")) == 3, 30, what="3 racks")
        root = lab.new_workdir("bmcs")
        ipmi = {
            n: IpmiSimBmc(
                root / f"ipmi{n}",
                f"10.70.0.{n}",
                623,
                user="admin",
                password=PASSWORD,
                name=f"ipmi{n}",
                debug=(n == 107),
            ).start(host=bmchost)
            for n in (101, 102, 103, 107)
        }
        redfish = HttpBmcEmulator(
            root / "redfish",
            [HttpBmc(f"rf{n}", f"10.70.0.{n}", 8000, username="root", password=PASSWORD) for n in (104, 105, 106)],
        ).start(host=bmchost)
        machines = {}
        for n in (101, 102, 103):
            machines[f"ipmi{n}"] = stack.api(
                "machines",
                "create",
                "architecture=amd64/generic",
                "commission=false",
                f"mac_addresses=52:54:00:00:01:{n - 100:02x}",
                f"hostname=node-ipmi{n}",
                "power_type=ipmi",
                f"power_parameters_power_address=10.70.0.{n}",
                "power_parameters_power_user=admin",
                f"power_parameters_power_pass={PASSWORD}",
                "power_parameters_cipher_suite_id=3",
            )["system_id"]
        for n in (104, 105, 106):
            machines[f"rf{n}"] = stack.api(
                "machines",
                "create",
                "architecture=amd64/generic",
                "commission=false",
                f"mac_addresses=52:54:00:00:02:{n - 100:02x}",
                f"hostname=node-rf{n}",
                "power_type=redfish",
                f"power_parameters_power_address=http://10.70.0.{n}:8000",
                "power_parameters_power_user=root",
                f"power_parameters_power_pass={PASSWORD}",
                "power_parameters_node_id=1",
            )["system_id"]
        lab.stack, lab.bmchost, lab.ipmi, lab.redfish, lab.machines = stack, bmchost, ipmi, redfish, machines
        yield lab


def bmcs(stack: Stack) -> dict:
    return stack.api("machines", "bmcs")


def redfish_state(lab, n: int) -> dict:
    out = lab.bmchost.run(["curl", "-s", f"http://10.70.0.{n}:8000/_emulator/state"]).stdout
    return json.loads(out)["systems"]["1"]


def owner_of(stack: Stack, system_id: str) -> str:
    return next(b["owner"] for b in bmcs(stack)["bmcs"] if system_id in b["machines"])


def rack_name(stack: Stack, system_id: str) -> str:
    return next(name for name in stack.racks if stack.rack_system_id(name) == system_id)


def kill_rack(stack: Stack, name: str) -> None:
    host = stack.racks[name][0]
    for pid in host.pids():
        os.kill(pid, signal.SIGKILL)


def test_power_through_the_cli_changes_the_emulators(lab):
    stack = lab.stack
    ipmi_node, rf_node = lab.machines["ipmi101"], lab.machines["rf104"]
    stack.api("machine", "power-on", ipmi_node)
    assert lab.ipmi[101].power is True
    assert stack.api("machine", "query-power-state", ipmi_node) == {"state": "on"}
    stack.api("machine", "power-off", ipmi_node)
    assert lab.ipmi[101].power is False
    assert stack.api("machine", "query-power-state", ipmi_node) == {"state": "off"}
    on = stack.api("machine", "power-on", rf_node)
    assert on["power_state"] == "on"
    assert redfish_state(lab, 104)["PowerState"] == "On"
    stack.api("machine", "power-off", rf_node)
    assert redfish_state(lab, 104)["PowerState"] == "Off"
    # Passwords only where MAAS shows them (power-parameters, admin); never in machine reads.
    assert PASSWORD not in json.dumps(stack.api("machine", "read", ipmi_node))
    assert stack.api("machine", "power-parameters", ipmi_node)["power_pass"] == PASSWORD


def test_bmcs_are_spread_over_the_racks(lab):
    data = wait_until(
        lambda: (d := bmcs(lab.stack)) and all(b["owner"] for b in d["bmcs"]) and d, 15, what="every BMC owned"
    )
    assert len(data["bmcs"]) == 6
    assert all(len(b["candidates"]) == 3 for b in data["bmcs"])  # all three racks are on the BMC subnet
    counts = list(data["owners"].values())
    assert max(counts) / (sum(counts) / len(counts)) <= 1.25


def test_killed_rack_loses_its_bmcs_within_5s_and_power_still_works(lab):
    stack = lab.stack
    node = lab.machines["ipmi102"]
    victim = rack_name(stack, owner_of(stack, node))
    kill_rack(stack, victim)
    killed = time.monotonic()
    dead_id = stack.rack_system_id(victim)
    wait_until(
        lambda: all(b["owner"] and b["owner"] != dead_id for b in bmcs(stack)["bmcs"]),
        5,
        interval=0.2,
        what="new owners",
    )
    assert time.monotonic() - killed < 5.0
    stack.api("machine", "power-on", node)
    assert lab.ipmi[102].power is True
    # The rack comes back and gets its share again, with the fewest moves.
    before = {b["id"]: b["owner"] for b in bmcs(stack)["bmcs"]}
    stack.start_rack(victim)
    after = wait_until(
        lambda: (d := bmcs(stack)) and dead_id in d["owners"] and d["owners"][dead_id] >= 2 and d,
        30,
        what="the rack's fair share back",
    )
    moved = sum(1 for b in after["bmcs"] if before[b["id"]] != b["owner"])
    assert moved == 2


def test_a_command_started_just_before_the_kill_completes_exactly_once(lab):
    stack = lab.stack
    node = lab.machines["rf105"]
    owner = rack_name(stack, owner_of(stack, node))
    lab.bmchost.run(
        [
            "curl",
            "-s",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            '{"delay": 3}',
            "http://10.70.0.105:8000/_emulator/state",
        ]
    )
    resets_before = list(redfish_state(lab, 105)["resets"])
    call = stack.cli_host.spawn(
        [*PYTHON, "admin", "machine", "power-on", node], env=stack.env(), log=stack.root / "inflight.log"
    )
    time.sleep(1.5)  # the owner is now waiting on the slow BMC
    kill_rack(stack, owner)
    assert call.wait(60) == 0, call.log()
    lab.bmchost.run(
        [
            "curl",
            "-s",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            '{"delay": 0}',
            "http://10.70.0.105:8000/_emulator/state",
        ]
    )
    state = redfish_state(lab, 105)
    assert state["PowerState"] == "On"
    assert state["resets"][len(resets_before) :] == ["On"]
    stack.start_rack(owner)


def test_wrong_password_is_a_clear_error_and_not_hammered(lab):
    stack = lab.stack
    bad = stack.api(
        "machines",
        "create",
        "architecture=amd64/generic",
        "mac_addresses=52:54:00:00:03:07",
        "commission=false",
        "hostname=node-badpass",
        "power_type=ipmi",
        "power_parameters_power_address=10.70.0.107",
        "power_parameters_power_user=admin",
        "power_parameters_power_pass=not-the-password",
        "power_parameters_cipher_suite_id=3",
    )["system_id"]
    result = stack.cli("admin", "machine", "power-on", bad, check=False)
    assert result.returncode == 2
    assert "10.70.0.107" in result.stdout and "auth" in result.stdout.lower()
    assert "not-the-password" not in result.stdout
    marked = wait_until(
        lambda: next((b for b in bmcs(stack)["bmcs"] if bad in b["machines"] and b["failing"]), None),
        10,
        what="the BMC marked failing",
    )
    assert "10.70.0.107" in marked["last_error"]
    attempts = lab.ipmi[107].session_attempts()
    time.sleep(8)
    assert lab.ipmi[107].session_attempts() - attempts <= 2  # backing off, not a tight loop
    stack.api("machine", "delete", bad)
