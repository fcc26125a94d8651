"""Recovery times (issue 16, point 6): median/min/max over N runs of

* worker restart: kill -9 of one region worker (2 regions x 2 workers, 4 racks on
  loopback): the time until every rack answers an RPC ping from the other region
  and holds links to both regions again ("every rack fully served"), and the
  time until the region's supervisor has started a new worker process;
* frozen region: SIGSTOP of a whole region until the racks are off it, then SIGCONT
  until they are back on both regions;
* loss of every region: kill -9 of both, restarted: until every rack is on both again;
* whole-rack kill: two racks with DHCP HA in a netlab (real Kea, udhcpc), kill -9 of
  every process of the primary rack: the time until a new client holds a lease
  from the secondary (client retries included, as a machine would see it). The
  primary is restarted and serves again between runs.

    .venv/bin/python bench/recovery_bench.py [--runs 5] [--only worker|frozen|all-regions|rack ...] [--write]
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
from tests.support.processes import RegionProcess, wait_until  # noqa: E402
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
                    return (
                        len(reach) == 4
                        and all(reach.values())
                        and all(len({e.split(":")[0] for e in eps}) == 2 for eps in data["racks"].values())
                    )

                wait_until(every_rack_served, 60, interval=0.05, what="every rack served")
                served.append(time.monotonic() - killed)
            wait_until(
                lambda v=victim, b=before: len(set(v.worker_pids()) - b) == 1 and v.answering(),
                60,
                interval=0.05,
                what="a new worker",
            )
            restarted.append(time.monotonic() - killed)
            print(f"  worker run {n + 1}: served {served[-1]:.2f} s, worker back {restarted[-1]:.2f} s", flush=True)
    finally:
        lab.stop()
    return {
        "worker kill -9 -> every rack fully served": served,
        "worker kill -9 -> replacement worker process started": restarted,
    }


def frozen_runs(dbs: TestDatabases, runs: int) -> dict[str, list[float]]:
    """SIGSTOP of a whole region (main process and workers), later SIGCONT."""
    root = world_traversable_tempdir("mp-recovery-")
    lab = Cluster(dbs, root, regions=2, workers=2, racks=4)
    noticed, back = [], []
    try:
        for n in range(runs):
            wait_until(lambda: fully_spread(lab), 60, interval=0.3, what="every rack on both regions")
            frozen = lab.regions["region-a"]
            pids = [frozen.pid, *frozen.worker_pids()]
            for pid in pids:
                os.kill(pid, signal.SIGSTOP)
            stopped = time.monotonic()
            try:
                with lab.api("region-b") as api:

                    def off_region_a() -> bool:
                        data = api.get("rackcontrollers/", op="connections").json()
                        return len(data["racks"]) == 4 and not any(
                            e.startswith("region-a:") for eps in data["racks"].values() for e in eps
                        )

                    wait_until(off_region_a, 60, interval=0.05, what="racks off the frozen region")
                    noticed.append(time.monotonic() - stopped)
            finally:
                for pid in pids:
                    os.kill(pid, signal.SIGCONT)
            resumed = time.monotonic()
            wait_until(lambda: fully_spread(lab, "region-b"), 60, interval=0.05, what="both regions again")
            back.append(time.monotonic() - resumed)
            print(f"  frozen run {n + 1}: noticed {noticed[-1]:.2f} s, back {back[-1]:.2f} s", flush=True)
    finally:
        lab.stop()
    return {
        "region SIGSTOP -> no rack link left on it": noticed,
        "region SIGCONT -> every rack on both regions again": back,
    }


def all_regions_runs(dbs: TestDatabases, runs: int) -> dict[str, list[float]]:
    """kill -9 of every region, then both started again: until every rack is on both."""
    root = world_traversable_tempdir("mp-recovery-")
    lab = Cluster(dbs, root, regions=2, workers=2, racks=4)
    answering, back = [], []
    try:
        for n in range(runs):
            wait_until(lambda: fully_spread(lab), 60, interval=0.3, what="every rack on both regions")
            for region in list(lab.regions.values()):
                for pid in [region.pid, *region.worker_pids()]:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                region.proc.wait()
            time.sleep(2)  # the racks are alone a while
            started = time.monotonic()
            for name, region in list(lab.regions.items()):
                again = RegionProcess(region.config, root / f"{name}-{n}")
                again.start()
                lab.regions[name] = again
            wait_until(
                lambda: all(r.answering() for r in lab.regions.values()),
                60,
                interval=0.05,
                what="the regions answering",
            )
            answering.append(time.monotonic() - started)
            wait_until(lambda: fully_spread(lab), 60, interval=0.05, what="every rack on both regions")
            back.append(time.monotonic() - started)
            print(f"  all-regions run {n + 1}: API {answering[-1]:.2f} s, racks on both {back[-1]:.2f} s", flush=True)
    finally:
        lab.stop()
    return {
        "every region kill -9, restarted -> both regions' API answering (their start-up)": answering,
        "every region kill -9, restarted -> every rack on both regions (from the restart)": back,
    }


def rack_runs(dbs: TestDatabases, runs: int) -> dict[str, list[float]]:
    times = []
    with Lab() as lab:
        stack, _, hosts = region_and_two_racks(lab, dbs, CIDR)
        stack.serve_dhcp(CIDR, "10.63.0.100", "10.63.0.199", "rack1")
        subnet = next(s for s in stack.api("subnets", "read") if s["cidr"] == CIDR)
        stack.api(
            "vlan", "update", str(subnet["vlan"]["fabric_id"]), str(subnet["vlan"]["vid"]), "secondary_rack=rack2"
        )
        for n in range(runs):
            wait_until(lambda: kea_pids(stack, "rack1") and kea_pids(stack, "rack2"), 60, what="Kea on both")
            probe = lab.add_host(f"p{n}", {"pxe": None})
            lease = wait_until(
                lambda p=probe: (x := p.dhcp_udhcpc("pxe", timeout=10)) and x.server_id == PRIMARY and x,
                120,
                interval=1,
                what="the primary serving",
            )
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


SCENARIOS = {"worker": worker_runs, "frozen": frozen_runs, "all-regions": all_regions_runs, "rack": rack_runs}


def row(name: str, values: list[float]) -> str:
    return (
        f"| {name} | {len(values)} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} | "
        f"{', '.join(f'{v:.2f}' for v in values)} |"
    )


NOTES = {
    "worker": "2 regions x 2 workers, 4 racks on loopback, `rpc_connections_per_rack` 2; served = every rack "
    "answers a ping over RPC from the other region and holds links to both regions.",
    "frozen": "Same cluster. SIGSTOP of region A's main process and workers; noticed = region B shows no rack "
    "link to A (the racks' pings time out and they report `LinkLost`); back = after SIGCONT, every "
    "rack on both regions, balanced.",
    "all-regions": "Same cluster. Both regions' processes kill -9, 2 s alone, both started again; timed from "
    "the start (the regions' own start-up included). A rack tries a region's workers within 1 s (jittered) "
    "of that region answering its HTTP discovery (a rack with no link) or targeting them (`SetTargets`), "
    "whatever backoff it had grown while alone. What the racks keep serving meanwhile is "
    "`tests/system/test_degraded_mode.py`'s.",
    "rack": "A region and two racks with DHCP HA (hot-standby) in a netlab, real Kea; a fresh udhcpc client "
    "started right after the kill -9 of every process of the primary rack (its own retries included). "
    "The primary is restarted and serves again between runs.",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", choices=SCENARIOS, action="append", help="run only these scenarios (repeatable)")
    parser.add_argument("--write", action="store_true", help="write the results into docs/benchmarks.md")
    args = parser.parse_args()
    dbs = TestDatabases()
    dbs.start()
    try:
        for name in args.only or SCENARIOS:
            started, load_before = time.monotonic(), os.getloadavg()
            results = SCENARIOS[name](dbs, args.runs)
            load_after = os.getloadavg()
            lines = [
                f"{SECTION}: {name}",
                "",
                "Issue 16's recovery times, each measured from the fault (seconds). " + NOTES[name],
                "",
                f"- command: `.venv/bin/python bench/recovery_bench.py --runs {args.runs} --only {name} --write`",
                f"- machine: {os.cpu_count()} x {cpu_model()}, Linux {platform.release()}, "
                f"Python {platform.python_version()} (CPUs shared with other sessions)",
                f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; wall time "
                f"{time.monotonic() - started:.0f} s; load average before/after: "
                f"{' '.join(f'{x:.2f}' for x in load_before)} / {' '.join(f'{x:.2f}' for x in load_after)}",
                "",
                "| recovery | runs | median s | min s | max s | every run s |",
                "| --- | ---: | ---: | ---: | ---: | --- |",
                *(row(label, values) for label, values in results.items()),
            ]
            publish("\n".join(lines) + "\n", "docs/benchmarks.md" if args.write else None)
    finally:
        dbs.stop()


if __name__ == "__main__":
    main()
