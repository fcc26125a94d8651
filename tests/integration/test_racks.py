"""Racks and regions as real processes: registration, failover, balance, deletion."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import select

from metalplane.region.bootstrap import run_db
from metalplane.region.db.tables import region_processes
from metalplane.region.services import cluster, connections
from metalplane.region.services import racks as racks_service
from metalplane.region.services.controllers import new_system_id
from tests.conftest import RunningRegion, create_admin, start_region
from tests.support.processes import RackProcess, RegionProcess, wait_until

THRESHOLD = 1.25


class Cluster:
    def __init__(self, databases, root, regions=2, workers=2, racks=4):
        self.databases, self.root = databases, root
        self.dbname = databases.new_database()
        first = start_region(databases, root, "region-a", workers, dbname=self.dbname)
        self.key = create_admin(first.config)
        self.regions = {"region-a": first}
        for n in range(1, regions):
            name = f"region-{chr(ord('a') + n)}"
            self.regions[name] = start_region(databases, root, name, workers, dbname=self.dbname)
        self.secret = run_db(first.config, cluster.shared_secret)
        self.urls = [r.url for r in self.regions.values()]
        self.racks = {f"rack{i}": self.start_rack(f"rack{i}") for i in range(1, racks + 1)}

    def start_rack(self, name: str, urls: list[str] | None = None) -> RackProcess:
        rack = RackProcess(self.root / name, urls or self.urls[:1], self.secret, name)
        rack.start()
        return rack

    def api(self, region: str = "region-a"):
        return RunningRegion(self.regions[region], self.key).api()

    def connections(self, region: str = "region-a") -> dict:
        with self.api(region) as api:
            return api.get("rackcontrollers/", op="connections").json()

    def racks_read(self, region: str = "region-a") -> list[dict]:
        with self.api(region) as api:
            return api.get("rackcontrollers/").json()

    def stop(self):
        for rack in self.racks.values():
            rack.stop()
        for region in self.regions.values():
            if region.alive():
                os.kill(region.pid, signal.SIGCONT)
            region.stop()


@pytest.fixture
def lab(databases, workdir):
    c = Cluster(databases, workdir)
    yield c
    c.stop()


def rackd(rack_json: dict) -> tuple[str, str]:
    service = next(s for s in rack_json["service_set"] if s["name"] == "rackd")
    return service["status"], service["status_info"]


def fully_spread(lab: Cluster, region: str = "region-a", regions: int = 2):
    """The connections once every rack is on `regions` regions and the spread is balanced."""
    data = lab.connections(region)
    racks = data["racks"]
    if len(racks) != len(lab.racks) or any(len(eps) != regions for eps in racks.values()):
        return None
    if any(len({e.split(":")[0] for e in eps}) != regions for eps in racks.values()):
        return None
    loads = [w["connections"] for w in data["workers"]]
    if max(loads) / (sum(loads) / len(loads)) > THRESHOLD:
        return None
    return data


def test_racks_connect_to_every_region_balanced(lab):
    data = wait_until(lambda: fully_spread(lab), 30, interval=0.3, what="every rack on both regions")
    loads = [w["connections"] for w in data["workers"]]
    assert len(loads) == 4 and sum(loads) == 8
    assert max(loads) / (sum(loads) / len(loads)) <= THRESHOLD
    racks = wait_until(
        lambda: (r := lab.racks_read()) and all(rackd(x)[0] == "running" for x in r) and r, 15, what="rackd running"
    )
    assert sorted(r["hostname"] for r in racks) == ["rack1", "rack2", "rack3", "rack4"]
    for rack in racks:
        names = [s["name"] for s in rack["service_set"]]
        assert names == ["rackd", "dhcpd", "dhcpd6", "tftp", "http", "ntp_rack", "dns_rack"]
        assert all(s["status"] in ("running", "degraded", "dead", "off", "unknown") for s in rack["service_set"])
        assert rack["node_type"] == 2 and rack["node_type_name"] == "Rack controller"
        assert rack["version"]
        assert rack["interface_set"], "registration records the rack's interfaces"


def test_kill_a_region_racks_stay_served_then_rebalance(lab):
    wait_until(lambda: fully_spread(lab), 30, interval=0.3, what="every rack on both regions")
    victim = lab.regions["region-a"]
    workers = victim.worker_pids()
    os.kill(victim.pid, signal.SIGKILL)
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()

    with lab.api("region-b") as api:

        def all_reachable():
            answer = api.get("rackcontrollers/", op="connections", check="true").json()
            return len(answer["reachable"]) == 4 and all(answer["reachable"].values())

        wait_until(all_reachable, 3, interval=0.1, what="region B reaching every rack")
    assert time.monotonic() - killed < 3.0
    # The dead region's racks are degraded while it still counts as live, then running.
    statuses: set[str] = set()

    def settled():
        racks = lab.racks_read("region-b")
        statuses.update(rackd(r)[0] for r in racks)
        return all(rackd(r)[0] == "running" for r in racks)

    wait_until(settled, 10, interval=0.1, what="racks running on region B alone")
    assert "degraded" in statuses

    # Region A comes back: racks reconnect to it and the spread is restored.
    again = RegionProcess(victim.config, lab.root / "region-a-again")
    again.start_and_wait()
    lab.regions["region-a"] = again
    data = wait_until(lambda: fully_spread(lab, "region-b"), 30, interval=0.3, what="racks back on both regions")
    loads = [w["connections"] for w in data["workers"]]
    assert max(loads) / (sum(loads) / len(loads)) <= THRESHOLD


def test_a_frozen_region_is_noticed_by_heartbeat_within_3s(lab):
    wait_until(lambda: fully_spread(lab), 30, interval=0.3, what="every rack on both regions")
    frozen = lab.regions["region-a"]
    pids = [frozen.pid, *frozen.worker_pids()]
    marks = {name: len(rack.log()) for name, rack in lab.racks.items()}
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    stopped = time.monotonic()
    try:

        def every_rack_noticed():
            return all("lost region" in rack.log()[marks[name] :] for name, rack in lab.racks.items())

        wait_until(every_rack_noticed, 4, interval=0.1, what="racks noticing the frozen region")
        assert time.monotonic() - stopped < 3.5  # ping every 1 s, 1.5 s to answer
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def test_restarted_rack_keeps_its_system_id(lab):
    wait_until(lambda: fully_spread(lab), 30, interval=0.3, what="racks connected")
    rack = lab.racks["rack1"]
    before = rack.system_id
    rack.stop()
    rack.start()
    wait_until(lambda: fully_spread(lab), 30, interval=0.3, what="rack back")
    assert rack.system_id == before
    assert sorted(r["system_id"] for r in lab.racks_read()).count(before) == 1


def model_rack(lab: Cluster, cidr_prefix: str) -> str:
    """A rack known to the model on a test VLAN, connected as far as the region can tell.

    The DHCP rules are about the model; a real rack process given DHCP duties on this
    host would start Kea on the host's interfaces, which tests must never do (the
    namespaced DHCP system test covers live racks).
    """
    system_id = new_system_id()

    async def add(conn):
        process = (await conn.execute(select(region_processes.c.id).limit(1))).scalar_one()
        node_id = await racks_service.register_rack(
            conn,
            system_id,
            f"model-{system_id}",
            "0.1.0",
            [{"name": "eth0", "mac": "52:54:00:bb:00:01", "addresses": [f"{cidr_prefix}.2/24"]}],
        )
        await connections.add_connection(conn, node_id, process)

    run_db(lab.regions["region-a"].config, add)
    return system_id


def dhcp_vlan(api, cidr_prefix: str) -> str:
    subnet = next(s for s in api.get("subnets/").json() if s["cidr"] == f"{cidr_prefix}.0/24")
    api.post("ipranges/", type="dynamic", start_ip=f"{cidr_prefix}.100", end_ip=f"{cidr_prefix}.150")
    return f"fabrics/{subnet['vlan']['fabric_id']}/vlans/{subnet['vlan']['vid']}/"


def test_delete_refused_while_dhcp_primary_then_allowed(lab):
    system_id = model_rack(lab, "10.203.0")
    with lab.api() as api:
        url = dhcp_vlan(api, "10.203.0")
        on = api.put(url, primary_rack=system_id, dhcp_on="true")
        assert on.status_code == 200, on.text
        refused = api.delete(f"rackcontrollers/{system_id}/")
        assert refused.status_code == 400
        assert "Disable DHCP HA first" in refused.text and on.json()["fabric"] in refused.text
        assert system_id in {r["system_id"] for r in api.get("rackcontrollers/").json()}
        assert api.put(url, dhcp_on="false").status_code == 200
        assert api.delete(f"rackcontrollers/{system_id}/").status_code == 204
        assert system_id not in {r["system_id"] for r in api.get("rackcontrollers/").json()}


def test_force_delete_turns_dhcp_off(lab):
    system_id = model_rack(lab, "10.203.1")
    with lab.api() as api:
        url = dhcp_vlan(api, "10.203.1")
        assert api.put(url, primary_rack=system_id, dhcp_on="true").status_code == 200
        assert api.delete(f"rackcontrollers/{system_id}/", force="true").status_code == 204
        after = api.get(url).json()
        assert after["dhcp_on"] is False and after["primary_rack"] is None


def test_deleted_rack_is_told_to_stop_and_registers_again_only_when_told(lab):
    wait_until(lambda: fully_spread(lab), 30, interval=0.3, what="racks connected")
    rack = lab.racks["rack2"]
    system_id = rack.system_id
    with lab.api() as api:
        assert api.delete(f"rackcontrollers/{system_id}/").status_code == 204
        assert system_id not in {r["system_id"] for r in api.get("rackcontrollers/").json()}
    wait_until(lambda: not rack.alive(), 10, what="the deleted rack to stop")
    assert "asked this rack to stop" in rack.log()
    # Started again (its software still installed), it does not re-create itself: it says so and exits.
    rack.start()
    wait_until(lambda: not rack.alive(), 30, what="the deleted rack to give up")
    assert rack.proc.returncode == 0  # a clean stop: a service manager does not restart it
    refusals = [line for line in rack.log().splitlines() if "does not re-register by itself" in line]
    assert len(refusals) == 1 and system_id in refusals[0] and "metalplane rack register" in refusals[0]
    assert system_id not in {r["system_id"] for r in lab.racks_read()}
    status = run_cli("status", "--data-dir", str(rack.data_dir))
    assert status.returncode == 3 and "does not re-register by itself" in status.stdout
    # Told to register, it comes back as the same rack.
    try:
        joined = run_cli(
            "rack",
            "register",
            "--url",
            lab.urls[0],
            "--secret",
            lab.secret,
            "--data-dir",
            str(rack.data_dir),
            "--hostname",
            "rack2",
        )
        assert joined.returncode == 0, joined.stderr
        wait_until(lambda: system_id in {r["system_id"] for r in lab.racks_read()}, 30, what="re-registration")
        assert [r["hostname"] for r in lab.racks_read()].count("rack2") == 1
    finally:
        run_cli("stop", "--data-dir", str(rack.data_dir))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "metalplane", *args], capture_output=True, text=True, timeout=60)


def test_wrong_secret_is_refused_with_advice(lab, workdir):
    result = run_cli(
        "rack",
        "register",
        "--url",
        lab.urls[0],
        "--secret",
        "0" * 64,
        "--data-dir",
        str(workdir / "intruder"),
        "--hostname",
        "intruder",
    )
    assert result.returncode != 0
    assert "shared secret" in result.stderr and "DATA_DIR/secret" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    # Discovery may send the attempt to any region's worker; the one that refused logs it.
    wait_until(
        lambda: any("shared secret does not match" in r.log() for r in lab.regions.values()),
        5,
        what="a region log naming the refusal",
    )


def test_other_version_is_refused_and_shown(lab):
    from tests.support.light_rack import try_handshake

    message = try_handshake(
        lab.regions["region-a"].url, lab.secret, version="9.7.0", system_id="oldver", hostname="old-rack"
    )
    assert "9.7.0" in message and "0.1" in message
    racks = wait_until(lambda: [r for r in lab.racks_read() if r["system_id"] == "oldver"], 5, what="refused rack")
    status, info = rackd(racks[0])
    assert status == "dead" and "refused" in info and "9.7.0" in info


def test_rack_of_another_cluster_is_refused_until_reset(lab, databases, workdir):
    other = start_region(databases, workdir, "elsewhere", 1)
    try:
        other_secret = run_db(other.config, cluster.shared_secret)
        data_dir = workdir / "rack1"  # rack1 already joined lab's cluster
        result = run_cli("rack", "register", "--url", other.url, "--secret", other_secret, "--data-dir", str(data_dir))
        assert result.returncode != 0 and "metalplane rack reset" in result.stderr
        lab.racks["rack1"].stop()
        reset = run_cli("rack", "reset", "--data-dir", str(data_dir))
        assert reset.returncode == 0
        joined = run_cli("rack", "register", "--url", other.url, "--secret", other_secret, "--data-dir", str(data_dir))
        assert joined.returncode == 0, joined.stderr
    finally:
        subprocess.run(
            [sys.executable, "-m", "metalplane", "rack", "reset", "--data-dir", str(workdir / "rack1")],
            capture_output=True,
        )
        other.stop()
