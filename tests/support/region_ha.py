"""Region HA in a netlab: two regions behind a real HAProxy, a PostgreSQL
primary with a synchronous streaming standby, racks and a client, each on a
"host" (namespace) of its own on one lab network.

The second region is added the seeds' way: its regiond.conf is a copy of the
first's, then `metalplane region local-config-set --database-host ...`. Racks
are told only the first region's URL; they learn the second from it. The
chaos steps (kill a region, lose the database primary and promote the
standby, restart the region) return what they measured, with CLOCK_MONOTONIC times shared by
every process on the machine.

Used by tests/system/test_region_ha.py and bench/region_ha_bench.py::

    with Lab() as lab, RegionHaLab(lab) as ha:
        ha.build()
        loop = ha.start_traffic()
        kill = ha.kill_region_phase(loop, victim="region-a")
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from metalplane.config.rack import rack_config_path, update_rack_config
from metalplane.config.region import save_region_config, update_region_config
from metalplane.identity import read_secret, write_secret
from tests.support.haproxy import Haproxy
from tests.support.netlab import Host, Lab, NetnsProcess
from tests.support.ns_api import NsApi, TrafficLoop
from tests.support.pg_cluster import PgCluster, PgNode
from tests.support.processes import wait_until

PYTHON = [sys.executable, "-m", "metalplane"]
NET = "ha"
API_PORT = 5240
ADMIN_PASSWORD = "ha-admin-password"
THRESHOLD = 1.25
# The client's address is the first of these that HAProxy (`balance source`) hashes to region A.
CLIENT_ADDRESSES = range(50, 66)


class HaLabError(AssertionError):
    pass


@dataclass
class Region:
    name: str
    host: Host
    data_dir: Path
    proc: NetnsProcess | None = None

    @property
    def address(self) -> str:
        return self.host.ip(NET)

    @property
    def url(self) -> str:
        return f"http://{self.address}:{API_PORT}/MAAS/"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "regiond.conf"

    def log(self) -> str:
        try:
            return (self.data_dir / "regiond.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""


def spread_ratio(data: dict) -> float:
    loads = [w["connections"] for w in data["workers"]]
    if not loads or not sum(loads):
        return float("inf")
    return max(loads) / (sum(loads) / len(loads))


class RegionHaLab:
    def __init__(
        self,
        lab: Lab,
        subnet: str = "10.72.0",
        workers: int = 2,
        racks: int = 2,
        log: Callable[[str], None] = lambda _: None,
    ):
        self.lab = lab
        self.subnet = subnet
        self.workers = workers
        self.rack_count = racks
        self.say = log
        self.regions: dict[str, Region] = {}
        self.racks: dict[str, tuple[Host, Path, NetnsProcess | None]] = {}
        self.pg: PgCluster | None = None
        self.haproxy: Haproxy | None = None
        self.api_key = ""
        self.agents: list[NsApi] = []
        self.direct: dict[str, NsApi] = {}
        self.api: NsApi | None = None
        self.loops: list[TrafficLoop] = []
        self.timings: dict[str, float] = {}
        self.client_address = ""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def addr(self, last: int) -> str:
        return f"{self.subnet}.{last}"

    @property
    def lb_url(self) -> str:
        return f"http://{self.addr(5)}:80/MAAS/"

    # -- building ----------------------------------------------------------------------

    def build(self) -> None:
        t0 = time.monotonic()
        lab = self.lab
        lab.add_network(NET, f"{self.subnet}.0/24")

        def add(name: str, last: int) -> Host:
            return lab.add_host(name, {NET: f"{self.addr(last)}/24"})

        self.lb, self.client = add("lb", 5), add("client", CLIENT_ADDRESSES[0])
        region_hosts = {"region-a": add("region-a", 11), "region-b": add("region-b", 12)}
        db_hosts = {"db1": add("db1", 21), "db2": add("db2", 22)}
        rack_hosts = {f"rack{i}": add(f"rack{i}", 30 + i) for i in range(1, self.rack_count + 1)}
        self.root = lab.new_workdir("region-ha")

        self.pg = PgCluster(None, [PgNode.in_host(n, h, NET) for n, h in db_hosts.items()])
        self.pg.start(allow=f"{self.subnet}.0/24")
        self.timings["database"] = time.monotonic() - t0
        self.say(f"PostgreSQL: primary db1 {self.addr(21)}, synchronous standby db2 {self.addr(22)}")

        self._first_region(region_hosts["region-a"])
        self._second_region(region_hosts["region-b"])
        self.timings["regions"] = time.monotonic() - t0
        self._start_haproxy()
        self._place_client("region-a")
        self.api = self._agent(self.lb_url)
        wait_until(lambda: self.api.request("GET", "version/")["status"] == 200, 30, what="the API through HAProxy")
        for name, host in rack_hosts.items():
            self.add_rack(name, host)
        self.wait_balanced(60)
        self.timings["build"] = time.monotonic() - t0
        self.say(f"lab built in {self.timings['build']:.1f}s")

    def _agent(self, url: str) -> NsApi:
        agent = NsApi(self.client, url, self.api_key)
        self.agents.append(agent)
        return agent

    def _region_config(self, region: Region):
        return self.pg.region_config(
            port=API_PORT,
            rpc_port=API_PORT + 10,
            num_workers=self.workers,
            listen_address="0.0.0.0",
            data_dir=str(region.data_dir),
            maas_url=f"http://{region.address}:{API_PORT}/MAAS",
            hostname=region.name,
        )

    def _first_region(self, host: Host) -> None:
        region = Region("region-a", host, self.root / "region-a")
        region.data_dir.mkdir(parents=True)
        save_region_config(region.config_path, self._region_config(region))
        self.regions[region.name] = region
        self.start_region(region.name)
        out = host.run(
            [
                *PYTHON,
                "createadmin",
                "--data-dir",
                str(region.data_dir),
                "--username",
                "admin",
                "--password",
                ADMIN_PASSWORD,
                "--email",
                "admin@example.com",
            ]
        )
        self.api_key = out.stdout.strip().splitlines()[-1]
        self.direct[region.name] = self._agent(region.url)
        self.say(f"region-a up at {region.url}")

    def _second_region(self, host: Host) -> None:
        """The seeds: copy the primary's regiond.conf, point it at the database, start."""
        first = self.regions["region-a"]
        region = Region("region-b", host, self.root / "region-b")
        region.data_dir.mkdir(parents=True)
        shutil.copy2(first.config_path, region.config_path)
        # Lab only: both "hosts" share one filesystem, so the copied data_dir (where
        # maas_id and the secret live) must be made this host's own.
        update_region_config(region.config_path, {"data_dir": str(region.data_dir)})
        host.run(
            [
                *PYTHON,
                "region",
                "local-config-set",
                "--data-dir",
                str(region.data_dir),
                *[a for n in self.pg.node_list for a in ("--database-host", n.dsn_host)],
                "--maas-url",
                region.url.rstrip("/"),
                "--hostname",
                region.name,
            ]
        )
        self.regions[region.name] = region
        self.start_region(region.name)
        self.direct[region.name] = self._agent(region.url)
        self.say(f"region-b up at {region.url}")

    def start_region(self, name: str, timeout: float = 90.0) -> float:
        """Start (or restart) a region; returns seconds until its API answered."""
        region = self.regions[name]
        t0 = time.monotonic()
        region.proc = region.host.spawn(
            [*PYTHON, "region", "run", "--data-dir", str(region.data_dir)], log=region.data_dir / "regiond.log"
        )
        probe = ["curl", "-sf", "-o", "/dev/null", "-m", "2", region.url + "api/2.0/version/"]
        deadline = t0 + timeout
        while region.host.run(probe, check=False, timeout=10).returncode != 0:
            if region.proc.poll() is not None:
                raise HaLabError(f"{name} exited:\n{region.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise HaLabError(f"{name} did not answer in {timeout}s:\n{region.log()[-3000:]}")
            time.sleep(0.2)
        return time.monotonic() - t0

    def kill_region(self, name: str, ready: Callable[[], bool] | None = None, wait: float = 3.0) -> float:
        """kill -9 of the supervisor and its workers (everything on that host); returns when.

        ready: strike as soon as it is true (or after `wait` s).
        """
        region = self.regions[name]
        pids = region.host.pids()
        deadline = time.monotonic() + wait
        while ready is not None and not ready() and time.monotonic() < deadline:
            time.sleep(0.001)
        when = time.monotonic()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if region.proc is not None:
            region.proc.wait(10)
        wait_until(lambda: not region.host.pids(), 10, 0.02, what=f"{name}'s processes to die")
        return when

    def _start_haproxy(self) -> None:
        config, sock = self.root / "haproxy.cfg", self.root / "haproxy.sock"
        args = [
            "region",
            "haproxy-config",
            "--bind",
            f"{self.addr(5)}:80",
            "--stats-socket",
            str(sock),
            "--log",
            "stderr",
            "--check",
            "--output",
            str(config),
        ]
        for region in self.regions.values():
            args += ["--region", f"{region.name}={region.address}:{API_PORT}"]
        self.lb.run([*PYTHON, *args])
        self.haproxy = Haproxy(config, sock, host=self.lb)
        self.haproxy.start()
        wait_until(
            lambda: all(s == "UP" for s in self.haproxy.server_status().values()),
            20,
            what="HAProxy to see every region healthy",
        )
        self.say(f"HAProxy at {self.lb_url} (pid {self.haproxy.pid})")

    def _hashed_to(self, source: str) -> str:
        """The region HAProxy sends a request from `source` to (`balance source`)."""
        before = {n: int(r["stot"]) for n, r in self.haproxy.servers().items()}
        self.client.run(
            ["curl", "-sf", "-o", "/dev/null", "-m", "5", "--interface", source, self.lb_url + "api/2.0/version/"]
        )
        after = {n: int(r["stot"]) for n, r in self.haproxy.servers().items()}
        return max(after, key=lambda n: after[n] - before.get(n, 0))

    def _place_client(self, region: str) -> None:
        """Give the client a source address that HAProxy hashes to `region` (the acceptance kills
        region A while it serves the client)."""
        iface = self.client.ifname(NET)
        for last in CLIENT_ADDRESSES:
            address = self.addr(last)
            if last != CLIENT_ADDRESSES[0]:
                self.client.add_address(NET, f"{address}/24")
            if self._hashed_to(address) == region:
                self.client.run(["ip", "route", "replace", f"{self.subnet}.0/24", "dev", iface, "src", address])
                self.client_address = address
                self.say(f"client at {address}, hashed to {region}")
                return
        raise HaLabError(f"none of {self.addr(CLIENT_ADDRESSES[0])}..{CLIENT_ADDRESSES[-1]} hashes to {region}")

    def add_rack(self, name: str, host: Host) -> None:
        data_dir = self.root / name
        data_dir.mkdir(parents=True)
        secret = read_secret(self.regions["region-a"].data_dir)
        write_secret(data_dir, secret)
        # Only the first region's URL: the rack learns the others from it.
        update_rack_config(
            rack_config_path(data_dir),
            {
                "maas_url": [self.regions["region-a"].url],
                "data_dir": str(data_dir),
                "hostname": name,
                "tftp_port": 69,
                "http_port": 5248,
            },
        )
        self.racks[name] = (host, data_dir, None)
        self.start_rack(name)

    def start_rack(self, name: str) -> NetnsProcess:
        host, data_dir, _ = self.racks[name]
        proc = host.spawn([*PYTHON, "rack", "run", "--data-dir", str(data_dir)], log=data_dir / "rackd.log")
        self.racks[name] = (host, data_dir, proc)
        return proc

    # -- looking -----------------------------------------------------------------------

    def connections(self, via: str | None = None, check: bool = False) -> dict | None:
        agent = self.direct[via] if via else self.api
        answer = agent.request("GET", "rackcontrollers/", "connections", **({"check": "true"} if check else {}))
        if answer["status"] != 200:
            return None
        data = json.loads(answer["body"])
        data["_t1"] = answer["t1"]
        return data

    def balanced(self, via: str | None = None) -> dict | None:
        """The connections once every rack is on every region and the spread is within THRESHOLD."""
        data = self.connections(via)
        if data is None:
            return None
        racks, regions = data["racks"], len(self.regions)
        if len(racks) != len(self.racks):
            return None
        if any(len({e.split(":")[0] for e in eps}) != regions or len(eps) != regions for eps in racks.values()):
            return None
        if spread_ratio(data) > THRESHOLD:
            return None
        return data

    def wait_balanced(self, timeout: float, via: str | None = None) -> dict:
        return wait_until(lambda: self.balanced(via), timeout, 0.3, what="racks connected to every region, balanced")

    def serving_region(self, sample: float = 1.0) -> str:
        """The region HAProxy sends the client's requests to (`balance source`)."""
        before = {n: int(r["stot"]) for n, r in self.haproxy.servers().items()}
        time.sleep(sample)
        after = {n: int(r["stot"]) for n, r in self.haproxy.servers().items()}
        return max(after, key=lambda n: after[n] - before.get(n, 0))

    def start_traffic(
        self, readers: int = 4, writers: int = 1, interval: float = 0.01, prefix: str = "ha"
    ) -> TrafficLoop:
        out = self.root / f"traffic-{len(self.loops) + 1}.jsonl"
        loop = TrafficLoop(self.client, self.lb_url, self.api_key, out, readers, writers, interval, prefix)
        self.loops.append(loop)
        wait_until(
            lambda: (
                any(r["kind"] == "read" and r["status"] == 200 for r in loop.records())
                and any(r["kind"] == "write" and r["status"] == 200 for r in loop.records())
            ),
            30,
            what="client traffic flowing",
        )
        return loop

    def zone_names(self) -> set[str]:
        return {z["name"] for z in self.api.json("GET", "zones/")}

    # -- chaos -------------------------------------------------------------------------

    def kill_region_phase(self, loop: TrafficLoop, settle: float = 5.0, victim: str = "region-a") -> dict:
        """kill -9 `victim` (region A: the one serving the client, and the only one racks were told
        about); measure reads, writes and racks until served by the other."""
        served_client = self.serving_region() == victim
        survivor = next(n for n in self.regions if n != victim)
        # Strike while HAProxy has requests open on the victim, so that some are in flight.
        killed = self.kill_region(victim, ready=lambda: int(self.haproxy.servers()[victim]["scur"]) >= 2)
        reach_at = moved_at = down_at = None
        deadline = killed + 20
        while time.monotonic() < deadline and None in (reach_at, moved_at, down_at):
            data = self.connections(survivor, check=True)
            if data is not None:
                reachable = data.get("reachable", {})
                if reach_at is None and len(reachable) == len(self.racks) and all(reachable.values()):
                    reach_at = data["_t1"]
                racks = data["racks"]
                if (
                    moved_at is None
                    and reach_at is not None
                    and len(racks) == len(self.racks)
                    and all(eps and all(e.startswith(survivor + ":") for e in eps) for eps in racks.values())
                ):
                    moved_at = data["_t1"]
            if down_at is None and self.haproxy.server_status().get(victim, "").startswith("DOWN"):
                down_at = time.monotonic()
            time.sleep(0.05)
        time.sleep(max(0.0, killed + settle - time.monotonic()))
        window = [r for r in loop.records() if r["t1"] >= killed - 1.0]
        reads = [r for r in window if r["kind"] == "read"]
        writes = [r for r in window if r["kind"] == "write"]
        in_flight = [r for r in reads if r["t0"] < killed < r["t1"]]
        return {
            "victim": victim,
            "survivor": survivor,
            "victim_served_client": served_client,
            "reads": len(reads),
            "read_failures": [r for r in reads if r["status"] != 200],
            "reads_in_flight_at_kill": len(in_flight),
            "max_read_latency": max((r["t1"] - r["t0"] for r in reads), default=0.0),
            "writes": len(writes),
            "write_failures": [r for r in writes if r["status"] not in (200,)],
            "racks_reachable_s": None if reach_at is None else reach_at - killed,
            "racks_on_survivor_s": None if moved_at is None else moved_at - killed,
            "haproxy_marked_down_s": None if down_at is None else down_at - killed,
        }

    def restart_region_phase(self, name: str, timeout: float = 60.0) -> dict:
        t0 = time.monotonic()
        up = self.start_region(name)
        data = self.wait_balanced(timeout)
        return {
            "region": name,
            "api_up_s": up,
            "balanced_s": data["_t1"] - t0,
            "max_over_mean": spread_ratio(data),
            "workers": data["workers"],
        }

    def db_failover_phase(
        self,
        loop: TrafficLoop,
        promote_after: float = 1.0,
        settle: float = 4.0,
        timeout: float = 40.0,
        mode: str = "kill",
    ) -> dict:
        """Lose the primary, promote the standby after `promote_after` s, measure until writes are back.

        mode "kill": kill -9 of the primary (its host stays: connections are refused at once);
        "unplug": its host's cable is pulled (packets vanish; the primary keeps running, cut off).
        """
        old, new = self.pg.node_list[0], self.pg.node_list[1]
        time.sleep(0.5)
        killed = time.monotonic()
        if mode == "kill":
            old.kill()
        elif mode == "unplug":
            old.host.set_link(NET, False)
        else:
            raise ValueError(f"unknown mode {mode!r}")
        time.sleep(promote_after)
        promote_start = time.monotonic()
        new.promote()
        promoted = time.monotonic()
        states: list[tuple[float, dict]] = []

        def write_back():
            states.append((time.monotonic(), self.haproxy.server_status()))
            return any(r["kind"] == "write" and r["status"] == 200 and r["t1"] > promoted for r in loop.records())

        wait_until(write_back, timeout, what="a write acknowledged after the promotion")
        end = time.monotonic() + settle
        while time.monotonic() < end:
            states.append((time.monotonic(), self.haproxy.server_status()))
            time.sleep(0.1)
        records = [r for r in loop.records() if r["t1"] >= killed]
        writes = [r for r in records if r["kind"] == "write"]
        reads = [r for r in records if r["kind"] == "read"]
        ok_writes = [r["t1"] for r in writes if r["status"] == 200 and r["t1"] > promoted]
        ok_reads = [r["t1"] for r in reads if r["status"] == 200 and r["t1"] > promoted]
        failed_writes = [r for r in writes if r["status"] != 200]
        failed_reads = [r for r in reads if r["status"] != 200]
        all_down = [t for t, s in states if s and all(v.startswith("DOWN") for v in s.values())]
        return {
            "promote_s": promoted - promote_start,
            "outage_before_promotion_s": promote_start - killed,
            "write_back_after_promotion_s": min(ok_writes) - promoted,
            "read_back_after_promotion_s": (min(ok_reads) - promoted) if ok_reads else None,
            "last_failed_write_after_promotion_s": max((r["t1"] for r in failed_writes), default=promoted) - promoted,
            "writes": len(writes),
            "write_failures": failed_writes,
            "reads": len(reads),
            "read_failures": failed_reads,
            "max_write_latency": max((r["t1"] - r["t0"] for r in writes), default=0.0),
            "haproxy_all_down_seen": bool(all_down),
            "promoted": promoted,
            "killed": killed,
            "mode": mode,
        }

    def missing_acknowledged_writes(self, loop: TrafficLoop) -> tuple[int, set[str]]:
        """(how many writes were acknowledged, which of them the database lacks now)."""
        acked = {r["name"] for r in loop.records() if r["kind"] == "write" and r["status"] == 200}
        return len(acked), acked - self.zone_names()

    # -- teardown ----------------------------------------------------------------------

    def close(self) -> None:
        errors = []
        for loop in self.loops:
            try:
                loop.stop(timeout=20)
            except Exception as exc:
                errors.append(f"traffic: {exc}")
        for agent in self.agents:
            agent.close()
        if self.haproxy is not None:
            self.haproxy.stop()
        for region in self.regions.values():
            if region.proc is not None and region.proc.poll() is None:
                region.host.stop(region.proc, timeout=10)
        for host, _, proc in self.racks.values():
            if proc is not None and proc.poll() is None:
                host.stop(proc, timeout=10)
        if self.pg is not None:
            try:
                self.pg.stop()
            except Exception as exc:
                errors.append(f"postgres: {exc}")
        if errors:
            raise HaLabError("; ".join(errors))


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None
