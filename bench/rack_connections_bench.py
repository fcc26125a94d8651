"""1,000 simulated racks against 2 regions x 4 workers.

Each simulated rack is a `LightRack`: the real rack connection code
(`RegionLinks`: TLS, secret proof, Register, SetTargets, failover) without
services, many per process. Measures: time to connect all, per-worker
max/mean, connections moved when a worker is killed and when it comes back
(against the lower bound `ha.connections` computes), and time until every rack is
fully served again.

    .venv/bin/python bench/rack_connections_bench.py [--racks 1000] [--procs 4] [--write]

MP_BENCH_CLIENT_LOG=DEBUG logs every rack's link events into client*.log; MP_BENCH_KEEP=1
keeps the run's directory (those logs, the regions' logs) and says where.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import uvloop

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchdoc import cpu_model, write_section  # noqa: E402


def client_main(urls: list[str], secret: str, first: int, count: int) -> None:
    """One client process: `count` light racks, kept until stdin closes."""
    import logging

    from tests.support.light_rack import LightRack

    # Warnings (links lost, keepalive timeouts) with their time, into the client's log.
    level = os.environ.get("MP_BENCH_CLIENT_LOG", "WARNING")
    logging.basicConfig(level=getattr(logging, level), format="%(asctime)s %(name)s %(message)s")

    async def run() -> None:
        racks = [LightRack(f"b{first + i:05d}", urls, secret) for i in range(count)]
        for rack in racks:
            rack.start()
            await asyncio.sleep(0.002)  # a few hundred per second, like a real fleet coming up
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        loop.add_reader(sys.stdin.fileno(), done.set)
        await done.wait()
        await asyncio.gather(*(r.stop() for r in racks))

    uvloop.run(run())


def snapshot(api) -> dict | None:
    """The region's view, or None when it is too busy to answer in time (1,000 racks arriving)."""
    import httpx

    started = time.monotonic()
    try:
        LAST["data"] = api.get("rackcontrollers/", op="connections").json()
    except httpx.TimeoutException:
        LAST["data"] = None
    LAST["took"] = time.monotonic() - started
    return LAST["data"]


def served(data: dict, racks: int, regions: int, dead: str | None = None) -> bool:
    """Every rack holds a link to each region, none of them to the `dead` worker. A rack
    moving a link holds a third one for a moment (make before break): served all the same."""
    per = data["racks"]
    if len(per) < racks:
        return False
    return all(len({e.split(":")[0] for e in eps}) == regions and dead not in eps for eps in per.values())


def balanced(data: dict, per_rack: int, threshold: float) -> bool:
    """Within the balancer's own caps (ha.connections: per region, then per worker)."""
    from metalplane.ha.connections import Endpoint, is_balanced

    assignment = {r: frozenset(Endpoint(*_split(e, data)) for e in eps) for r, eps in data["racks"].items()}
    endpoints = [Endpoint(w["region"], w["worker"]) for w in data["workers"]]
    return is_balanced(assignment, list(assignment), endpoints, per_rack, threshold)


def fully_served(data: dict, racks: int, regions: int, threshold: float) -> bool:
    return served(data, racks, regions) and balanced(data, regions, threshold)


def pairs(data: dict) -> set[tuple[str, str]]:
    return {(rack, ep) for rack, eps in data["racks"].items() for ep in eps}


LAST: dict = {}


def stand_in_for_supervisor(config, pids: list[int], stop: threading.Event) -> None:
    """While region A's supervisor is paused, do its part of the heartbeat: vouch for
    the workers it would see running (controllers.heartbeat_live_processes)."""
    from sqlalchemy import text

    from metalplane.region.bootstrap import run_db

    async def touch(conn) -> None:
        await conn.execute(text("UPDATE region_processes SET updated = now() WHERE pid = ANY(:p)"), {"p": pids})

    while not stop.wait(0.5):
        run_db(config, touch)


def snapshot_summary(data: dict | None) -> str:
    if not data:
        return "no answer from the region"
    short = sum(1 for eps in data["racks"].values() if len(eps) < 2)
    loads = sorted(w["connections"] for w in data["workers"])
    return (
        f"{len(data['racks'])} racks ({short} with fewer than 2 links), {len(data['workers'])} workers, loads {loads}"
    )


class Trace:
    """Progress on stderr every `every` s: links held, racks with both links (and, after a
    kill, racks still holding a link to the `dead` worker)."""

    def __init__(self, started: float, every: float = 10.0, dead: str | None = None):
        self.started = started
        self.every = every
        self.dead = dead
        self.next = started + every

    def note(self, data: dict | None) -> dict | None:
        now = time.monotonic()
        if now >= self.next:
            self.next = now + self.every
            if data:
                per = data["racks"].values()
                links = sum(len(eps) for eps in per)
                both = sum(1 for eps in per if len({e.split(":")[0] for e in eps}) == 2)
                on_dead = f", {sum(1 for eps in per if self.dead in eps)} on the dead worker" if self.dead else ""
                load = os.getloadavg()[0]
                took = LAST.get("took", 0)
                loads = sorted(w["connections"] for w in data["workers"])
                progress(
                    f"{now - self.started:.1f} s: {links} links, {both} racks on both regions{on_dead}; "
                    f"{len(loads)} live workers {loads}; load {load:.1f}; view took {took:.2f} s"
                )
            else:
                progress(f"{now - self.started:.1f} s: no answer from the region")
        return data


def wait(predicate, timeout: float, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"benchmark condition not reached; last view: {snapshot_summary(LAST.get('data'))}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--racks", type=int, default=1000)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--kills", type=int, default=1, help="kill (and bring back) a worker this many times")
    parser.add_argument("--write", action="store_true", help="write the result into docs/benchmarks.md")
    parser.add_argument(
        "--reap",
        choices=("heartbeat", "supervisor"),
        default="heartbeat",
        help="who notices the killed worker: its heartbeat timing out (the supervisor paused), or, as "
        "region A's own supervisor does at once, the bench removing its row and rebalancing (the restart held)",
    )
    parser.add_argument("--give-up", type=float, default=600, help="seconds to wait for every rack to connect")
    parser.add_argument("--client", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        urls, secret, first, count = args.client
        client_main(json.loads(urls), secret, int(first), int(count))
        return

    from metalplane.region.bootstrap import run_db
    from metalplane.region.services import cluster
    from tests.conftest import RunningRegion, create_admin, make_region_config
    from tests.support.databases import TestDatabases, world_traversable_tempdir
    from tests.support.processes import RegionProcess

    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    dbs = TestDatabases()
    dbs.start()
    root = world_traversable_tempdir("mp-bench-")
    regions: list[RegionProcess] = []
    clients: list[subprocess.Popen] = []
    result: dict = {}
    try:
        dbname = dbs.new_database()
        for name in ("region-a", "region-b"):
            config = make_region_config(dbs, dbname, root / name / "data", args.workers, name)
            process = RegionProcess(config, root / name)
            process.start_and_wait()
            regions.append(process)
        key = create_admin(regions[0].config)
        secret = run_db(regions[0].config, cluster.shared_secret)
        threshold = regions[0].config.balance_threshold
        api = RunningRegion(regions[1], key).api()
        per_proc = args.racks // args.procs
        started = time.monotonic()
        for p in range(args.procs):
            clients.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        __file__,
                        "--client",
                        json.dumps([r.url for r in regions]),
                        secret,
                        str(p * per_proc),
                        str(per_proc),
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=open(root / f"client{p}.log", "w"),
                )
            )
        racks = per_proc * args.procs
        trace = Trace(started)
        first_all = wait(
            lambda: (d := trace.note(snapshot(api))) and served(d, racks, 2) and d,
            args.give_up,
        )
        connect_all = time.monotonic() - started
        progress(f"all {racks} racks connected after {connect_all:.1f} s")
        settled = wait(lambda: (d := snapshot(api)) and fully_served(d, racks, 2, threshold) and d, 300)
        balanced_after = time.monotonic() - started
        result["connect_all_s"] = round(connect_all, 1)
        result["balanced_s"] = round(balanced_after, 1)
        result["max_over_mean"] = settled["max_over_mean"]
        result["loads"] = sorted(w["connections"] for w in settled["workers"])
        del first_all

        rounds = []
        for _ in range(args.kills):
            rounds.append(kill_and_return(api, regions[0], racks, args.workers, threshold, settled, args.reap))
            settled = rounds[-1]["final"]
            progress(f"kill round {len(rounds)}: { ({k: v for k, v in rounds[-1].items() if k != 'final'}) }")
        first = rounds[0]
        result["kill_served_again_s"] = [r["served_s"] for r in rounds]
        result["kill_balanced_s"] = [r["balanced_s"] for r in rounds]
        for key in ("moved", "victim_held"):
            result[f"kill_{key}"] = first[key]
        for key in ("settled_s", "moved", "lower_bound", "max_over_mean", "loads"):
            result[f"return_{key}"] = first[f"return_{key}"]
    finally:
        for client in clients:
            with _quiet():
                client.stdin.close()
        for client in clients:
            try:
                client.wait(30)
            except subprocess.TimeoutExpired:
                client.kill()
        for region in regions:
            with _quiet():
                os.kill(region.pid, signal.SIGCONT)
            region.stop()
        dbs.stop()
        if os.environ.get("MP_BENCH_KEEP"):
            progress(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    result["racks"] = racks
    result["load"] = f"{load_before} / {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    result["machine"] = f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, {cpu_model()}"
    print(json.dumps(result, indent=2))
    if args.write:
        write_doc(result, args)


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def reap_like_the_supervisor(config, victim_pid: int, threshold: float) -> None:
    """What region A's supervisor does the moment a worker exits (`Supervisor._reap`):
    the same call, made by the bench because the supervisor is paused."""
    from sqlalchemy import text

    from metalplane.region.bootstrap import run_db
    from metalplane.region.services import connections

    async def reap(conn) -> None:
        row = (
            await conn.execute(
                text("SELECT region_id, worker_index FROM region_processes WHERE pid = :p"), {"p": victim_pid}
            )
        ).one()
        await connections.forget_process(
            conn, row.region_id, row.worker_index, victim_pid, config.rpc_connections_per_rack, threshold
        )

    run_db(config, reap)


def kill_and_return(
    api, region, racks: int, workers: int, threshold: float, settled: dict, reap: str = "heartbeat"
) -> dict:
    """Kill one worker of region A: its connections must move, nothing else. The
    supervisor is paused meanwhile so that the death and the return are two events;
    the bench keeps up the paused supervisor's heartbeat for A's other workers, and with
    `reap="supervisor"` does its reaping of the dead one at once."""
    out: dict = {}
    victim_pid = region.worker_pids()[1]
    processes = api.get("regioncontrollers/").json()
    victim_index = next(p["worker_index"] for r in processes for p in r["processes"] if p["pid"] == victim_pid)
    victim_label = f"region-a:{victim_index}"
    before = pairs(settled)
    stop_vouching = threading.Event()
    vouching = threading.Thread(
        target=stand_in_for_supervisor,
        daemon=True,
        args=(region.config, [p for p in region.worker_pids() if p != victim_pid], stop_vouching),
    )
    os.kill(region.pid, signal.SIGSTOP)
    vouching.start()
    os.kill(victim_pid, signal.SIGKILL)
    killed = time.monotonic()
    if reap == "supervisor":
        reap_like_the_supervisor(region.config, victim_pid, threshold)
    out["victim_held"] = sum(1 for _, ep in before if ep == victim_label)
    # Served: every rack again linked to both regions, none to the dead worker.
    trace = Trace(killed, every=1.0, dead=victim_label)
    wait(lambda: (d := trace.note(snapshot(api))) and served(d, racks, 2, victim_label), 120, 0.1)
    out["served_s"] = round(time.monotonic() - killed, 1)
    # Balanced: the dead worker reaped (its heartbeat timed out) and the balancer's caps met.
    after_kill = wait(
        lambda: (
            (d := snapshot(api)) and len(d["workers"]) == 2 * workers - 1 and fully_served(d, racks, 2, threshold) and d
        ),
        120,
        0.1,
    )
    out["balanced_s"] = round(time.monotonic() - killed, 1)
    out["moved"] = len(pairs(after_kill) - before)
    # Resumed, the supervisor restarts it at once: the return is the second event.
    stop_vouching.set()
    vouching.join()
    os.kill(region.pid, signal.SIGCONT)
    wait(
        lambda: (d := snapshot(api)) and len(d["workers"]) == 2 * workers and fully_served(d, racks, 2, threshold),
        120,
        0.1,
    )
    returned = time.monotonic()
    final = wait(
        lambda: (
            (d := snapshot(api))
            and fully_served(d, racks, 2, threshold)
            and min(w["connections"] for w in d["workers"]) > 0
            and d
        ),
        120,
        0.25,
    )
    from metalplane.ha.connections import Endpoint, min_moves_lower_bound

    out["return_settled_s"] = round(time.monotonic() - returned, 1)
    out["return_moved"] = len(pairs(final) - pairs(after_kill))
    out["return_max_over_mean"] = final["max_over_mean"]
    out["return_loads"] = sorted(w["connections"] for w in final["workers"])
    current = {r: frozenset(Endpoint(*_split(e, after_kill)) for e in eps) for r, eps in after_kill["racks"].items()}
    endpoints = [Endpoint(w["region"], w["worker"]) for w in final["workers"]]
    out["return_lower_bound"] = min_moves_lower_bound(list(current), endpoints, current, 2, threshold)
    out["final"] = final
    return out


def _split(label: str, data: dict) -> tuple[str, int]:
    hostname, worker = label.rsplit(":", 1)
    region = next(w["region"] for w in data["workers"] if w["hostname"] == hostname)
    return region, int(worker)


class _quiet:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return True


REAPED = {
    "heartbeat": "the killed worker is noticed only when its heartbeat is 4 s old (the slow path: "
    "a live supervisor sees its worker exit at once).",
    "supervisor": "the bench does what the live supervisor does the moment a worker exits "
    "(`connections.forget_process`: its rows go, the racks are re-planned).",
}


def write_doc(result: dict, args) -> None:
    doc = REPO / "docs" / "benchmarks.md"
    served, balanced = result["kill_served_again_s"], result["kill_balanced_s"]
    reaped = ", the killed worker reaped by its supervisor" if args.reap == "supervisor" else ""
    section = f"""## Rack connections ({args.racks:,} racks, 2 regions x {args.workers} workers{reaped})

Command: `.venv/bin/python bench/rack_connections_bench.py --racks {args.racks} --procs {args.procs} --kills {args.kills} --reap {args.reap} --write`
Machine: {result["machine"]}; regions, PostgreSQL and the simulated racks all share it.
Load average before/after: {result["load"]}.
Each simulated rack runs the real connection code (`RegionLinks`), {args.racks // args.procs} per process.
The comparison is the ideal: `ha.connections`'s lower bound on moves, and max/mean within the threshold (1.25).

| measure | result |
| --- | --- |
| racks | {result["racks"]} (2 connections each, one per region) |
| time to connect all | {result["connect_all_s"]} s |
| time until balanced | {result["balanced_s"]} s |
| per-worker max/mean | {result["max_over_mean"]} (loads {result["loads"]}) |
| worker killed: connections moved | {result["kill_moved"]} (the worker held {result["kill_victim_held"]}) |
| worker killed: every rack served again (both regions, median of {len(served)}) | {statistics.median(served)} s ({served}) |
| worker killed: dead worker reaped and balanced again (median) | {statistics.median(balanced)} s ({balanced}) |
| worker back: connections moved | {result["return_moved"]} (lower bound {result["return_lower_bound"]}) |
| worker back: settled | {result["return_settled_s"]} s, max/mean {result["return_max_over_mean"]} (loads {result["return_loads"]}) |

Notes: everything (8 region workers, PostgreSQL, 4 processes of simulated racks) shares 2 CPUs
with whatever else runs on the machine (see the load average). A worker admits a bounded number of
joining racks at once (region.joins; the next wait in line up to 2 s, the rest get 503 + Retry-After
and come back, jittered);
racks that come back unchanged register together, one transaction per burst per worker; the rack's
keepalive counts silence only in time it was awake to hear (rpc.keepalive). Moves above the killed
worker's load are racks moved again, by a rebalance, after linking again by themselves. On the return the balancer moves only
what the threshold needs (the lower bound), so the returned worker stays lighter than the rest.
During the kill the bench pauses region A's supervisor, so that death and restart are two events,
and stands in for its heartbeat of A's other workers; {REAPED[args.reap]} The view (`rackcontrollers/?op=connections`
on region B, from the database's connection rows) is polled every 0.1 s during a kill; it answered
in 0.02-0.2 s through the kills, up to 2 s while 1,000 racks connect. There are no BMCs here.

"""
    write_section(doc, section)


if __name__ == "__main__":
    main()
