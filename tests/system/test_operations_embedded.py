"""The embedded default on a host of its own (a network namespace): the README's DHCP
walk-through as printed, then the daemons' units and their restart and stop semantics.

systemd is not PID 1 on the machines these tests run on, so the units are exercised the
only way possible here: `systemd-analyze verify` parses them, and `metalplane init`'s
keeper runs them, honouring their ExecStart=, Restart=on-failure, RestartSec= and
TimeoutStopSec= (it reads them from the same files systemd would). What is not tested
here: systemd itself starting the units at boot, and the PostgreSQL unit (Type=notify,
which only systemd runs; without it `init` starts the cluster with pg_ctl).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from metalplane.embedded.keeper import policy_from_unit
from tests.support.databases import world_traversable_tempdir
from tests.support.netlab import Host, Lab
from tests.support.processes import wait_until

pytestmark = pytest.mark.system
REPO = Path(__file__).resolve().parents[2]
PYTHON = [sys.executable, "-m", "metalplane"]
WALKTHROUGH = "<!-- dhcp-walkthrough:"


def readme_walkthrough() -> list[str]:
    """The README's DHCP walk-through: the fenced block after its marker, one command per line."""
    text = (REPO / "README.md").read_text()
    assert WALKTHROUGH in text, "the README lost its DHCP walk-through marker"
    block = re.search(r"```sh\n(.*?)```", text[text.index(WALKTHROUGH) :], re.S)
    assert block is not None
    return [line for line in block.group(1).splitlines() if line.strip()]


class Embedded:
    def __init__(self, host: Host, root: Path):
        self.host = host
        self.root = root
        self.data_dir = root / "data"
        self.env = {"METALPLANE_PROFILES": str(root / "profiles.json")}

    def metalplane(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        return self.host.run([*PYTHON, *args], env=self.env, check=check, timeout=timeout)

    def shell(self, script: str) -> subprocess.CompletedProcess:
        """bash in the namespace, with `metalplane` as the README's reader has it."""
        prelude = f'metalplane() {{ {" ".join(PYTHON)} "$@"; }}\n'
        return self.host.run(
            ["bash", "-euo", "pipefail", "-c", prelude + script], env=self.env, check=False, timeout=120
        )

    def api(self, *args: str):
        return json.loads(self.metalplane("admin", *args).stdout)

    def main_pid(self, name: str) -> int | None:
        try:
            pid = int((self.data_dir / "run" / f"{name}.main.pid").read_text())
        except (FileNotFoundError, ValueError):
            return None
        return pid if Path(f"/proc/{pid}").exists() else None

    def unit(self, name: str) -> Path:
        return next((self.data_dir / "units").glob(f"metalplane-{name}-*.service"))

    def log(self, name: str) -> str:
        return (self.data_dir / "log" / f"{name}.log").read_text(errors="replace")

    def comm_pids(self, comm: str) -> list[int]:
        pids = []
        for pid in self.host.pids():
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == comm:
                    pids.append(pid)
            except FileNotFoundError:
                pass
        return pids

    def answering(self) -> bool:
        return (
            self.host.run(
                ["curl", "-sf", "--max-time", "3", "-o", "/dev/null", "http://127.0.0.1:5240/MAAS/api/2.0/version/"],
                check=False,
                timeout=15,
            ).returncode
            == 0
        )


@pytest.fixture(scope="module")
def embedded():
    root = world_traversable_tempdir("mp-ops-")
    try:
        with Lab() as lab:
            lab.add_network("lan", "10.66.0.0/24")
            host = lab.add_host("mp", {"lan": "10.66.0.2/24"})
            # What a stock Debian host has besides its NIC: devices a rack must not model.
            host.run(["ip", "link", "add", "ifb7", "type", "ifb"])
            host.run(["ip", "link", "add", "spare0", "type", "veth", "peer", "name", "spare1"])  # down
            e = Embedded(host, root)
            # The default port is free in a namespace of its own.
            out = e.metalplane("init", "--data-dir", str(e.data_dir), "--admin-password", "ops-test").stdout
            e.init_output = out
            yield e
            e.metalplane("stop", "--data-dir", str(e.data_dir), check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_readme_dhcp_walkthrough_on_the_embedded_default(embedded):
    e = embedded
    assert "systemd is not PID 1 here" in e.init_output
    login = re.search(r"^\s*(metalplane login admin \S+ \S+)$", e.init_output, re.M).group(1)
    assert e.shell(login).returncode == 0
    wait_until(lambda: e.api("rack-controllers", "read"), 60, what="the local rack to register")
    # One shell runs the block line by line, as a reader pasting it would; the first failing
    # command stops it and is named.
    script = "trap 'echo \"README command failed: $BASH_COMMAND\" >&2' ERR\n" + "\n".join(readme_walkthrough())
    result = e.shell(script)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout[result.stdout.rindex("{") :]) == {"dhcp_on": True}
    assert "rack " in result.stdout and "10.66.0.0/24" in result.stdout
    # The rack modelled its NIC only: no fabric for the down ifb and veth devices.
    rack = e.api("rack-controllers", "read")[0]
    assert [i["name"] for i in rack["interface_set"]] == [e.host.ifname("lan")]
    assert len(e.api("fabrics", "read")) == 2  # fabric-0 and the rack's subnet's
    wait_until(lambda: e.comm_pids("kea-dhcp4"), 30, what="Kea to start on the rack")
    lease = e.host.lab.add_host("client", {"lan": None}).dhcp_udhcpc("lan", timeout=20)
    assert lease.server_id == "10.66.0.2" and 100 <= int(lease.ip.rsplit(".", 1)[1]) <= 199


def test_units_restart_on_kill_and_stop_cleanly_with_kea(embedded):
    e = embedded
    units = sorted((e.data_dir / "units").glob("*.service"))
    assert sorted(u.name.split("-")[1] for u in units) == ["postgresql", "rackd", "regiond"]
    verify = subprocess.run(["systemd-analyze", "verify", *map(str, units)], capture_output=True, text=True)
    assert (verify.returncode, verify.stderr) == (0, "")

    # The keeper runs exactly the unit's ExecStart.
    region_unit = policy_from_unit(e.unit("regiond").read_text())
    first = e.main_pid("regiond")
    assert Path(f"/proc/{first}/cmdline").read_bytes().split(b"\0")[:-1] == [a.encode() for a in region_unit.argv]

    # kill -9 of the region supervisor: Restart=on-failure brings it back after RestartSec.
    os.kill(first, signal.SIGKILL)
    wait_until(
        lambda: (pid := e.main_pid("regiond")) and pid != first and e.answering(),
        90,
        interval=0.5,
        what="the region restarted by its keeper",
    )
    assert "killed by SIGKILL; restarting in 2 s (Restart=on-failure)" in e.log("regiond")

    # kill -9 of the rack: it comes back, and brings Kea back.
    kea_before = e.comm_pids("kea-dhcp4")
    rack_first = e.main_pid("rackd")
    os.kill(rack_first, signal.SIGKILL)
    wait_until(lambda: (pid := e.main_pid("rackd")) and pid != rack_first, 30, what="the rack restarted")
    wait_until(
        lambda: (now := e.comm_pids("kea-dhcp4")) and set(now).isdisjoint(kea_before),
        60,
        what="Kea started again by the restarted rack",
    )

    # SIGTERM is a clean stop, which Restart=on-failure does not undo; init starts it again.
    region_pid = e.main_pid("regiond")
    os.kill(region_pid, signal.SIGTERM)
    wait_until(lambda: "not restarted (Restart=on-failure)" in e.log("regiond"), 60, what="a clean exit")
    status = e.metalplane("status", "--data-dir", str(e.data_dir), check=False)
    assert status.returncode == 3 and "regiond:    stopped" in status.stdout
    again = e.metalplane("init", "--data-dir", str(e.data_dir))
    assert "region: started" in again.stdout and "rack: already running" in again.stdout

    # Stop: the rack stops Kea before it exits; nothing of ours is left in the namespace.
    assert e.comm_pids("kea-dhcp4")
    stopped = e.metalplane("stop", "--data-dir", str(e.data_dir))
    assert "rackd: stopped" in stopped.stdout and "regiond: stopped" in stopped.stdout
    assert "postgresql: stopped" in stopped.stdout
    assert e.comm_pids("kea-dhcp4") == []
    assert [p for p in e.host.pids() if b"metalplane" in Path(f"/proc/{p}/cmdline").read_bytes()] == []
    assert "rack stopped after" in e.log("rackd")  # a clean exit of its own, not the keeper's SIGKILL
    assert "TimeoutStopSec" not in e.log("rackd") + e.log("regiond")
