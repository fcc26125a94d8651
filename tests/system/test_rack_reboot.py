"""The seeds' pitfall "a rack may re-register on reboot": a region and two racks serving
DHCP HA, in network namespaces, with real Kea. A rack host's reboot is played as the
reboot would: every process of the host gets SIGTERM (then SIGKILL), and the rack's
daemon starts again on the same data dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import warnings
from pathlib import Path

import pytest

from metalplane.embedded.units import RACK_STOP_TIMEOUT
from metalplane.rack.dhcp.kea import control
from tests.support.netlab import Host, Lab
from tests.support.processes import wait_until
from tests.support.stack import PYTHON, Stack

pytestmark = pytest.mark.system
CIDR = "10.62.0.0/24"


@pytest.fixture(scope="module")
def stack(databases):
    with Lab() as lab:
        lab.add_network("pxe", CIDR)
        region = lab.add_host("region", {"pxe": "10.62.0.10/24"})
        s = Stack(lab, databases)
        s.start_region(region, "pxe")
        for n, name in ((2, "rack1"), (3, "rack2")):
            s.add_rack(lab.add_host(name, {"pxe": f"10.62.0.{n}/24"}), name)
            s.start_rack(name)
        wait_until(lambda: len(s.api("rack-controllers", "read")) == 2, 30, what="both racks registered")
        s.serve_dhcp(CIDR, "10.62.0.100", "10.62.0.199", "rack1")
        subnet = next(x for x in s.api("subnets", "read") if x["cidr"] == CIDR)
        s.vlan = (str(subnet["vlan"]["fabric_id"]), str(subnet["vlan"]["vid"]))
        s.api("vlan", "update", *s.vlan, "secondary_rack=rack2")
        yield s


def ha_state(stack: Stack, rack: str) -> str | None:
    """Kea's own HA state on `rack` (its newest control socket that answers)."""
    sockets = sorted((stack.racks[rack][1] / "dhcp").glob("*/kea.sock"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in sockets:
        try:
            answer = asyncio.run(control(path, "ha-heartbeat", timeout=3))
        except (OSError, TimeoutError):
            continue
        return (answer.get("arguments") or {}).get("state")
    return None


def both_hot_standby(stack: Stack) -> bool:
    return ha_state(stack, "rack1") == "hot-standby" and ha_state(stack, "rack2") == "hot-standby"


def reboot_down(host: Host, grace: float = RACK_STOP_TIMEOUT) -> list[str]:
    """What a reboot does to a host's processes: SIGTERM to all, SIGKILL to what is left after
    the unit's TimeoutStopSec (as systemd gives it). Returns the command lines it had to kill."""
    for pid in host.pids():
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while host.pids() and time.monotonic() < deadline:
        time.sleep(0.2)
    killed = []
    for pid in host.pids():
        with contextlib.suppress(OSError):
            killed.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not host.pids(), 10, what="the host's processes to be gone")
    return killed


def racks_by_hostname(stack: Stack) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for rack in stack.api("rack-controllers", "read"):
        found.setdefault(rack["hostname"], []).append(rack["system_id"])
    return found


def test_a_rebooted_rack_comes_back_as_itself_and_resumes_dhcp_ha(stack):
    wait_until(lambda: both_hot_standby(stack), 90, interval=1, what="DHCP HA in hot-standby")
    system_id = stack.rack_system_id("rack1")
    host = stack.racks["rack1"][0]

    killed = reboot_down(host)
    if killed or "rack stopped after" not in stack.rack_log("rack1"):
        # Seen in 2 of 5 full CI runs before 5aebc9a, never alone: the rack's loop stuck at
        # its HA Kea's start, SIGTERM unanswered for the whole TimeoutStopSec. The likely
        # cause (a Python preexec_fn in the forked child of the threaded rack, which uvloop
        # waits for inside the spawn) is gone; a reboot SIGKILLs such a rack, as here, and
        # what this test is about (the rack comes back as itself) is asserted either way.
        # The rack's clean stop on SIGTERM is asserted by test_operations_embedded.
        warnings.warn(
            f"rack1 needed SIGKILL after {RACK_STOP_TIMEOUT} s: {killed}; log ends: {stack.rack_log('rack1')[-600:]}",
            stacklevel=1,
        )
    wait_until(
        lambda: ha_state(stack, "rack2") in ("partner-down", "communication-recovery"),
        30,
        interval=0.5,
        what="the standby to notice its partner is gone",
    )
    stack.start_rack("rack1")

    wait_until(lambda: both_hot_standby(stack), 90, interval=1, what="DHCP HA back in hot-standby")
    assert stack.rack_system_id("rack1") == system_id
    assert racks_by_hostname(stack) == {"rack1": [system_id], "rack2": [stack.rack_system_id("rack2")]}
    lease = stack.lab.add_host("c1", {"pxe": None}).dhcp_udhcpc("pxe", timeout=20)
    assert lease.server_id == "10.62.0.2"  # the primary answers again


def test_a_rack_deleted_while_down_registers_again_only_when_told(stack):
    host, data_dir, _ = stack.racks["rack2"]
    system_id = stack.rack_system_id("rack2")
    reboot_down(host)
    # While it is down, the operator moves DHCP HA off it and deletes it.
    stack.api("vlan", "update", *stack.vlan, "secondary_rack=")
    stack.cli("admin", "rack-controller", "delete", system_id)

    proc = stack.start_rack("rack2")  # it boots again
    wait_until(lambda: proc.poll() is not None, 60, what="the deleted rack to stop by itself")
    assert proc.returncode == 0  # a clean stop: Restart=on-failure leaves it stopped
    said = [line for line in stack.rack_log("rack2").splitlines() if "does not re-register by itself" in line]
    assert len(said) == 1 and system_id in said[0] and "metalplane rack register" in said[0]
    assert list(racks_by_hostname(stack)) == ["rack1"]
    status = host.run([*PYTHON, "status", "--data-dir", str(data_dir)], check=False)
    assert status.returncode == 3 and "does not re-register by itself" in status.stdout

    joined = host.run(
        [
            *PYTHON,
            "rack",
            "register",
            "--url",
            stack.url,
            "--secret",
            stack.secret,
            "--data-dir",
            str(data_dir),
            "--hostname",
            "rack2",
        ],
        check=False,
        timeout=120,
    )
    assert joined.returncode == 0, joined.stderr
    wait_until(lambda: racks_by_hostname(stack).get("rack2") == [system_id], 60, what="rack2 registered again")
    assert "does not re-register" not in host.run([*PYTHON, "status", "--data-dir", str(data_dir)], check=False).stdout
