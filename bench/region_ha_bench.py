"""Region HA recovery times: tests/system/test_region_ha.py's scenario, N times, medians.

Each run builds a fresh netlab (tests.support.region_ha.RegionHaLab): two
regions (2 workers each) behind a real HAProxy, a PostgreSQL 15 primary with a
synchronous streaming standby, two racks, and a client making API reads (4
threads) and writes (1 thread) through HAProxy. Then, under that traffic:

1. kill -9 of region A, which the client is hashed to (`balance source`) and
   the only region the racks were told about, timed while HAProxy has
   requests open on it;
2. the PostgreSQL primary lost -- kill -9 of its processes ("kill": its host
   refuses connections at once) or its host's cable pulled ("unplug": packets
   vanish, the primary runs on, cut off) -- and `pg_ctl promote` of the
   standby `--promote-after` seconds later (standing in for Patroni/repmgr's
   failure detection);
3. region A restarted (its first database host is the lost one), until rack
   connections are balanced again.

--runs N runs the scenario N times for each database failure mode.

    .venv/bin/python bench/region_ha_bench.py [--runs 5] [--promote-after 3] [--modes kill,unplug] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]  # metalplane, and the test house (tests.support)

from benchdoc import cpu_model, publish  # noqa: E402

from tests.support.netlab import Lab  # noqa: E402
from tests.support.region_ha import RegionHaLab  # noqa: E402

SECTION = "## Region HA recovery"


def one_run(index: int, promote_after: float, mode: str) -> dict:
    with Lab() as lab, RegionHaLab(lab, log=lambda m: print(f"  [{index}] {m}", flush=True)) as ha:
        ha.build()
        loop = ha.start_traffic()
        time.sleep(2)
        kill = ha.kill_region_phase(loop, victim="region-a")
        failover = ha.db_failover_phase(loop, promote_after=promote_after, mode=mode)
        restart = ha.restart_region_phase("region-a")
        loop.stop()
        acknowledged, missing = ha.missing_acknowledged_writes(loop)
        try:
            balanced_after = bool(ha.wait_balanced(30))
        except TimeoutError:
            balanced_after = False
        result = {
            "mode": mode,
            "build_s": ha.timings["build"],
            "kill_reads": kill["reads"],
            "kill_read_failures": len(kill["read_failures"]),
            "kill_read_failure_causes": [r.get("error") or r["status"] for r in kill["read_failures"]],
            "kill_reads_in_flight": kill["reads_in_flight_at_kill"],
            "kill_max_read_latency_s": kill["max_read_latency"],
            "kill_write_failures": len(kill["write_failures"]),
            "racks_reachable_s": kill["racks_reachable_s"],
            "racks_on_survivor_s": kill["racks_on_survivor_s"],
            "haproxy_marked_down_s": kill["haproxy_marked_down_s"],
            "restart_api_up_s": restart["api_up_s"],
            "restart_balanced_s": restart["balanced_s"],
            "restart_max_over_mean": restart["max_over_mean"],
            "promote_s": failover["promote_s"],
            "write_back_s": failover["write_back_after_promotion_s"],
            "read_back_s": failover["read_back_after_promotion_s"],
            "db_write_failures": len(failover["write_failures"]),
            "db_read_failures": len(failover["read_failures"]),
            "db_failure_statuses": sorted(
                {r["status"] for r in failover["write_failures"] + failover["read_failures"]}
            ),
            "db_failure_causes": [
                (r.get("body") or r.get("error") or "").strip()[:120]
                for r in failover["write_failures"] + failover["read_failures"]
            ],
            "db_max_write_latency_s": failover["max_write_latency"],
            "db_all_regions_down_in_haproxy": failover["haproxy_all_down_seen"],
            "acknowledged_writes": acknowledged,
            "lost_acknowledged_writes": len(missing),
            "balanced_after": balanced_after,
        }
    print(f"  [{index}] {json.dumps(result)}", flush=True)
    return result


def fmt(value, unit: str = "s") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f} {unit}".rstrip() if unit else f"{value:.2f}"
    return str(value)


REGION_ROWS = [
    # (key, label, unit, requirement)
    ("kill_read_failures", "reads failed (kill -9 of the serving region)", "", "0"),
    ("kill_reads_in_flight", "reads in flight to it at the kill (retried on the other)", "", ""),
    ("kill_max_read_latency_s", "slowest read around the kill", "s", ""),
    ("kill_write_failures", "writes failed (in flight to the dead region: no answer)", "", ""),
    ("haproxy_marked_down_s", "HAProxy marks the dead region DOWN", "s", ""),
    ("racks_reachable_s", "every rack answers an RPC ping from the surviving region", "s", "< 3 s"),
    ("racks_on_survivor_s", "every rack's connections on the surviving region only", "s", "< 3 s"),
]
DB_ROWS = [
    ("promote_s", "`pg_ctl promote -w`", "s", ""),
    ("write_back_s", "first acknowledged write after the promotion", "s", "< 15 s"),
    ("read_back_s", "first successful read after the promotion", "s", ""),
    ("db_write_failures", "writes failed across the failover", "", ""),
    ("db_read_failures", "reads failed across the failover", "", ""),
    ("db_max_write_latency_s", "slowest write across the failover (waiting in a region)", "s", ""),
    ("lost_acknowledged_writes", "acknowledged writes missing afterwards", "", "0"),
    ("restart_api_up_s", "then region A restarted: answers its API", "s", ""),
    ("restart_balanced_s", "rack connections balanced again after the restart", "s", ""),
    ("restart_max_over_mean", "per-worker max/mean after the restart", "", "<= 1.25"),
]


def table(runs: list[dict], rows: list[tuple[str, str, str, str]], title: str) -> list[str]:
    lines = [f"| {title} ({len(runs)} runs) | median | min | max | requirement |", "| --- | ---: | ---: | ---: | --- |"]
    for key, label, unit, requirement in rows:
        values = [r[key] for r in runs if r.get(key) is not None]
        if not values:
            lines.append(f"| {label} | - | - | - | {requirement} |")
            continue
        med = statistics.median(values)
        if all(isinstance(v, int) for v in values) and not unit:
            cells = [f"{med:g}", str(min(values)), str(max(values))]
        else:
            cells = [fmt(float(med), unit), fmt(float(min(values)), unit), fmt(float(max(values)), unit)]
        lines.append(f"| {label} | {' | '.join(cells)} | {requirement} |")
    return lines


def report(runs: list[dict], args: argparse.Namespace, wall: float, load_before: str) -> str:
    cpu = cpu_model()
    pg = subprocess.run(
        ["/usr/lib/postgresql/15/bin/postgres", "--version"], check=False, capture_output=True, text=True
    ).stdout
    hap = subprocess.run(["haproxy", "-v"], check=False, capture_output=True, text=True).stdout.splitlines()[0]
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        SECTION,
        "",
        "tests/system/test_region_ha.py's scenario, each run in a fresh network-namespace lab: two regions",
        "(2 workers each) behind HAProxy (config from `metalplane region haproxy-config`), PostgreSQL 15",
        "primary + synchronous streaming standby (`synchronous_standby_names`, `synchronous_commit = on`;",
        "both regions list both hosts), two racks, and a client in its own namespace: 4 threads reading",
        "`zones/`, 1 thread creating zones, all through HAProxy. Per run: kill -9 of region A (the client is",
        "hashed to it and the racks were told only its URL; struck while HAProxy has requests open on it);",
        f"then the PostgreSQL primary is lost and the standby promoted (`pg_ctl promote`) {args.promote_after:g} s later,",
        "standing in for Patroni/repmgr's failure detection (not measured here); then region A is restarted",
        "(its first database host is the lost one). The primary is lost either by kill -9 of its processes",
        "(its host refuses connections at once) or by unplugging its host (packets vanish: in-flight queries",
        "wait for `tcp_user_timeout`, 5 s, and a process's first new connection for `connect_timeout`, 3 s,",
        "before libpq tries the next host; a restarted region's processes each pay that once). Times run",
        "from the kill/unplug (database: from the end of the promotion; restart: from starting region A) to",
        "the first observation. A write in flight to region A when it dies gets no answer or a 502: it may",
        "have committed, so neither HAProxy nor the region replays it.",
        "",
        (
            f"- command: `cd /work/main && .venv/bin/python bench/region_ha_bench.py --runs {args.runs} "
            f"--promote-after {args.promote_after:g} --modes {','.join(args.modes)} --write docs/benchmarks.md`"
        ),
        (
            f"- machine: {os.cpu_count()} CPUs, {cpu}; Linux {platform.release()}, Python {platform.python_version()}; "
            f"{pg.strip()}; {hap}"
        ),
        (
            f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; wall time {wall:.0f} s; "
            f"load average before/after: {load_before} / {load_after} (the machine is shared with other test runs)"
        ),
        "",
    ]
    lines += table(runs, REGION_ROWS, "kill -9 of region A")
    for mode in args.modes:
        of_mode = [r for r in runs if r["mode"] == mode]
        what = {"kill": "primary kill -9", "unplug": "primary's host unplugged"}[mode]
        title = f"then database failover: {what}, promotion {args.promote_after:g} s later"
        lines += ["", *table(of_mode, DB_ROWS, title)]
    statuses = sorted({s for r in runs for s in r["db_failure_statuses"]})
    lines += [
        "",
        (
            f"Totals: {sum(r['kill_reads'] for r in runs)} reads in the region-kill windows, "
            f"{sum(r['kill_read_failures'] for r in runs)} failed; "
            f"{sum(r['acknowledged_writes'] for r in runs)} acknowledged writes, "
            f"{sum(r['lost_acknowledged_writes'] for r in runs)} lost; "
            f"HAProxy saw every region DOWN during the database outage in "
            f"{sum(bool(r['db_all_regions_down_in_haproxy']) for r in runs)} of {len(runs)} runs "
            "(requests then went to the `maas_nodb` backend and waited in a region); "
            f"statuses of requests that failed across the database failover: {statuses or 'none'}; "
            f"rack connections balanced at the end of {sum(bool(r['balanced_after']) for r in runs)} of {len(runs)} runs."
        ),
        "",
        "Per run (seconds): "
        + "; ".join(
            f"{i + 1} ({r['mode']}): racks {fmt(r['racks_reachable_s'], '')}/{fmt(r['racks_on_survivor_s'], '')}, "
            f"rebalanced {fmt(r['restart_balanced_s'], '')}, write back {fmt(r['write_back_s'], '')}"
            for i, r in enumerate(runs)
        ),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--promote-after", type=float, default=3.0, help="seconds between the primary's death and the promotion"
    )
    parser.add_argument(
        "--modes",
        default="kill,unplug",
        type=lambda v: [m for m in v.split(",") if m],
        help="database failure modes to run (kill, unplug)",
    )
    parser.add_argument("--write", help="markdown file whose Region HA section to replace")
    args = parser.parse_args()
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    t0 = time.monotonic()
    runs = []
    plan = [mode for _ in range(args.runs) for mode in args.modes]
    for i, mode in enumerate(plan):
        print(f"run {i + 1}/{len(plan)} ({mode})", flush=True)
        runs.append(one_run(i + 1, args.promote_after, mode))
    text = report(runs, args, time.monotonic() - t0, load_before)
    publish(text, args.write)


if __name__ == "__main__":
    main()
