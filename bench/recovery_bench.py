"""Recovery times (issue 16, point 6): median/min/max over N runs of

* worker restart: kill -9 of one region worker (2 regions x 2 workers, 4 racks on
  loopback): the time until every rack answers an RPC ping from the other region
  and holds links to both regions again ("every rack fully served"), and the
  time until the region's supervisor has a new worker process answering;
* whole-rack kill: two racks with DHCP HA in a netlab (real Kea, udhcpc), kill -9 of
  every process of the primary rack: the time until a new client holds a lease
  from the secondary (client retries included, as a machine would see it). The
  primary is restarted and serves again between runs.

    .venv/bin/python bench/recovery_bench.py [--runs 5] [--only worker|rack] [--write]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import signal
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

from benchdoc import cpu_model, publish  # noqa: E402

from tests.integration.test_racks import Cluster, fully_spread  # noqa: E402
from tests.support.databases import TestDatabases, world_traversable_tempdir  # noqa: E402
from tests.support.netlab import Lab  # noqa: E402
from tests.support.processes import wait_until  # noqa: E402
from tests.support.stack import region_and_two_racks  # noqa: E402
from tests.system.test_dhcp_ha import kea_pids, lease4_get  # noqa: E402

SECTION = "## Recovery times"
CIDR = "10.63.0.0/24"
PRIMARY, SECONDARY = "10.63.0.2", "10.63.0.3"


def worker_runs(dbs: TestDatabases, runs: int) -> dict[str, list[float]]:
    root = world_traversable_tempdir("mp-recovery-")
    lab = Cluster(dbs, root, regions=2, workers=2, racks=4)
    served, restarted = [], []
    try:
        for n in range(runs):
            wait_until(lambda: fully_spread(lab), 60, interval=0.3, what="every rack on both regions")
            victim = lab.regions["region-a"]
            before = set(victim.worker_pids())
            os.kill(min(before), signal.SIGKILL)
            killed = time.monotonic()
            with lab.api("region-b") as api:
                def every_rack_served() -> bool:
                    data = api.get("rackcontrollers/", op="connections", check="true").json()
                    reach = data.get("reachable", {})
                    return (len(reach) == 4 and all(reach.values())
                            and all(len({e.split(":")[0] for e in eps}) == 2 for eps in data["racks"].values()))

                wait_until(every_rack_served, 60, interval=0.05, what="every rack served")
                served.append(time.monotonic() - killed)
            wait_until(lambda v=victim, b=before: len(set(v.worker_pids()) - b) == 1 and v.answering(), 60,
                       interval=0.05, what="a new worker")
            restarted.append(time.monotonic() - killed)
            print(f"  worker run {n + 1}: served {served[-1]:.2f} s, worker back {restarted[-1]:.2f} s", flush=True)
    finally:
        lab.stop()
    return {"worker kill -9 -> every rack fully served": served,
            "worker kill -9 -> replacement worker answering": restarted}


def rack_runs(dbs: TestDatabases, runs: int) -> dict[str, list[float]]:
    times = []
    with Lab() as lab:
        stack, _, hosts = region_and_two_racks(lab, dbs, CIDR)
        stack.serve_dhcp(CIDR, "10.63.0.100", "10.63.0.199", "rack1")
        subnet = next(s for s in stack.api("subnets", "read") if s["cidr"] == CIDR)
        stack.api("vlan", "update", str(subnet["vlan"]["fabric_id"]), str(subnet["vlan"]["vid"]), "secondary_rack=rack2")
        for n in range(runs):
            wait_until(lambda: kea_pids(stack, "rack1") and kea_pids(stack, "rack2"), 60, what="Kea on both")
            probe = lab.add_host(f"p{n}", {"pxe": None})
            lease = wait_until(lambda p=probe: (x := p.dhcp_udhcpc("pxe", timeout=10)) and x.server_id == PRIMARY and x,
                               120, interval=1, what="the primary serving")
            wait_until(lambda ip=lease.ip: lease4_get(stack, "rack2", ip), 60, interval=0.3, what="the standby in sync")
            client = lab.add_host(f"c{n}", {"pxe": None})
            for pid in hosts["rack1"].pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            killed = time.monotonic()
            got = client.dhcp_udhcpc("pxe", timeout=30)
            times.append(time.monotonic() - killed)
            assert got.server_id == SECONDARY, got
            print(f"  rack run {n + 1}: lease from the secondary after {times[-1]:.2f} s", flush=True)
            stack.start_rack("rack1")
    return {"primary rack kill -9 -> new client leased by the secondary": times}


def row(name: str, values: list[float]) -> str:
    return (f"| {name} | {len(values)} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} | "
            f"{', '.join(f'{v:.2f}' for v in values)} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", choices=("worker", "rack"))
    parser.add_argument("--write", action="store_true", help="write the result into docs/benchmarks.md")
    args = parser.parse_args()
    dbs = TestDatabases()
    dbs.start()
    started = time.monotonic()
    load_before = os.getloadavg()
    results: dict[str, list[float]] = {}
    try:
        if args.only in (None, "worker"):
            results.update(worker_runs(dbs, args.runs))
        if args.only in (None, "rack"):
            results.update(rack_runs(dbs, args.runs))
    finally:
        dbs.stop()
    load_after = os.getloadavg()
    only = f" --only {args.only}" if args.only else ""
    lines = [
        SECTION, "",
        "Issue 16's recovery times, each measured from the kill -9 (seconds). Worker: 2 regions x 2 workers, "
        "4 racks on loopback, `rpc_connections_per_rack` 2; served = every rack answers a ping over RPC from the "
        "other region and holds links to both regions. Rack: a region and two racks with DHCP HA (hot-standby) in "
        "a netlab, real Kea, a fresh udhcpc client started right after the kill (its own retries included).",
        "",
        f"- command: `.venv/bin/python bench/recovery_bench.py --runs {args.runs}{only} --write`",
        f"- machine: {os.cpu_count()} x {cpu_model()}, Linux {platform.release()}, Python {platform.python_version()}"
        " (CPUs shared with other sessions)",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; bench wall time "
        f"{time.monotonic() - started:.0f} s; load average before/after: "
        f"{' '.join(f'{x:.2f}' for x in load_before)} / {' '.join(f'{x:.2f}' for x in load_after)}",
        "",
        "| recovery | runs | median s | min s | max s | every run s |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
        *(row(name, values) for name, values in results.items()),
        "",
        "Not measured here yet: a frozen (SIGSTOP) region (the rack notices within 3.5 s, "
        "`tests/integration/test_racks.py`), and the loss of every region and its return "
        "(`tests/system/test_degraded_mode.py` proves the racks keep serving, without timing it).",
    ]
    publish("\n".join(lines) + "\n", "docs/benchmarks.md" if args.write else None)


if __name__ == "__main__":
    main()
