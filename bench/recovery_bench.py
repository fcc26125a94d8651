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
import contextlib
import datetime
import os
import platform
import signal
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


class Timings(dict[str, list[float]]):
    """Seconds per recovery label, over the runs."""

    def since(self, label: str, start: float) -> None:
        self.setdefault(label, []).append(time.monotonic() - start)

    def progress(self, scenario: str, n: int) -> None:
        print(f"  {scenario} run {n + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in self.items()), flush=True)


def seconds_until(lab: Cluster, check: Callable[[Any], bool], since: float, what: str) -> float:
    """Seconds from `since` until `check(api of region B)` holds."""
    with lab.api("region-b") as api:
        wait_until(lambda: check(api), 60, interval=0.05, what=what)
    return time.monotonic() - since


def connections(api: Any, check: bool = False) -> dict:
    return api.get("rackcontrollers/", op="connections", **({"check": "true"} if check else {})).json()


def every_rack_served(api: Any) -> bool:
    data = connections(api, check=True)
    reach = data.get("reachable", {})
    return (
        len(reach) == 4
        and all(reach.values())
        and all(len({e.split(":")[0] for e in eps}) == 2 for eps in data["racks"].values())
    )


def off_region_a(api: Any) -> bool:
    data = connections(api)
    return len(data["racks"]) == 4 and not any(e.startswith("region-a:") for eps in data["racks"].values() for e in eps)


def on_a_cluster(one_run: Callable[[Cluster, Timings, int], None]) -> Callable[[TestDatabases, int], Timings]:
    """A scenario on 2 regions x 2 workers and 4 racks on loopback: `one_run` N times,
    each once every rack is on both regions again."""

    def runs_of(dbs: TestDatabases, runs: int) -> Timings:
        timings = Timings()
        lab = Cluster(dbs, world_traversable_tempdir("mp-recovery-"), regions=2, workers=2, racks=4)
        try:
            for n in range(runs):
                wait_until(lambda: fully_spread(lab), 60, interval=0.3, what="every rack on both regions")
                one_run(lab, timings, n)
                timings.progress(one_run.__name__, n)
        finally:
            lab.stop()
        return timings

    return runs_of


@on_a_cluster
def worker(lab: Cluster, timings: Timings, n: int) -> None:
    """kill -9 of one worker of region A."""
    victim = lab.regions["region-a"]
    before = set(victim.worker_pids())
    os.kill(min(before), signal.SIGKILL)
    killed = time.monotonic()
    served = seconds_until(lab, every_rack_served, killed, "every rack served")
    timings.setdefault("worker kill -9 -> every rack fully served", []).append(served)
    wait_until(lambda: len(set(victim.worker_pids()) - before) == 1, 60, 0.05, "a new worker")
    timings.since("worker kill -9 -> replacement worker process started", killed)


@on_a_cluster
def frozen(lab: Cluster, timings: Timings, n: int) -> None:
    """SIGSTOP of a whole region (main process and workers), later SIGCONT."""
    region = lab.regions["region-a"]
    pids = [region.pid, *region.worker_pids()]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        noticed = seconds_until(lab, off_region_a, time.monotonic(), "racks off the frozen region")
        timings.setdefault("region SIGSTOP -> no rack link left on it", []).append(noticed)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    resumed = time.monotonic()
    wait_until(lambda: fully_spread(lab, "region-b"), 60, 0.05, "both regions again")
    timings.since("region SIGCONT -> every rack on both regions again", resumed)


@on_a_cluster
def all_regions(lab: Cluster, timings: Timings, n: int) -> None:
    """kill -9 of every region, then both started again: until every rack is on both."""
    for region in list(lab.regions.values()):
        for pid in [region.pid, *region.worker_pids()]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        region.proc.wait()
    time.sleep(2)  # the racks are alone a while
    started = time.monotonic()
    for name, region in list(lab.regions.items()):
        again = RegionProcess(region.config, lab.root / f"{name}-{n}")
        again.start()
        lab.regions[name] = again
    wait_until(lambda: all(r.answering() for r in lab.regions.values()), 60, 0.05, "the regions")
    timings.since("every region kill -9, restarted -> both regions' API answering (their start-up)", started)
    wait_until(lambda: fully_spread(lab), 60, 0.05, "every rack on both regions")
    timings.since("every region kill -9, restarted -> every rack on both regions (from the restart)", started)


def rack_runs(dbs: TestDatabases, runs: int) -> Timings:
    timings = Timings()
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
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
            got = client.dhcp_udhcpc("pxe", timeout=30)
            timings.since("primary rack kill -9 -> new client leased by the secondary", killed)
            assert got.server_id == SECONDARY, got
            timings.progress("rack", n)
            stack.start_rack("rack1")
    return timings


SCENARIOS = {"worker": worker, "frozen": frozen, "all-regions": all_regions, "rack": rack_runs}


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
