"""What an idle fleet's service reports cost the region's database.

A region (2 workers) and `--racks` light racks (the real rack connection code, no
services), each sending UpdateServices with the same statuses every
`rack.daemon.REPORT_INTERVAL` seconds, as a settled rack does. Over a window it counts
what PostgreSQL did for the whole cluster, the region's own heartbeats included:
transaction ids handed out (a transaction that writes or locks a row takes one) and
WAL records and bytes (a row lock is logged like a write).

    .venv/bin/python bench/status_reports_bench.py [--racks 200] [--seconds 60] [--write]

For a before/after comparison, run it twice in one session with PYTHONPATH naming the
other checkout's src/ (the region processes inherit it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchdoc import cpu_model, write_section  # noqa: E402

COUNTERS = (
    "SELECT pg_current_xact_id()::text::bigint,"
    " (SELECT wal_records FROM pg_stat_wal), (SELECT wal_bytes FROM pg_stat_wal)"
)
STATUSES = (("dhcpd", "running"), ("tftp", "running"), ("http", "running"), ("ntp_rack", "running"))


async def run_fleet(urls: list[str], secret: str, racks: int, settle: float, seconds: float, sample) -> dict:
    from metalplane.rack.daemon import REPORT_INTERVAL
    from metalplane.rpc.messages import ServiceStatus, UpdateServices
    from tests.support.light_rack import LightRack

    fleet = [LightRack(f"s{i:05d}", urls, secret) for i in range(racks)]
    sent = {"n": 0, "failed": 0}
    report = UpdateServices([ServiceStatus(name, status) for name, status in STATUSES])

    async def reporting(rack: LightRack) -> None:
        while not rack.connected_to():
            await asyncio.sleep(0.2)
        await asyncio.sleep(random.uniform(0, REPORT_INTERVAL))  # racks are not in step
        while True:
            try:
                await rack.links.call(report, timeout=10)
                sent["n"] += 1
            except Exception:
                sent["failed"] += 1
            await asyncio.sleep(REPORT_INTERVAL)

    for rack in fleet:
        rack.start()
        await asyncio.sleep(0.005)
    tasks = [asyncio.ensure_future(reporting(rack)) for rack in fleet]
    try:
        await asyncio.sleep(settle)  # connected, and every rack's first report stored
        before, sent_before, t0 = await asyncio.to_thread(sample), sent["n"], time.monotonic()
        await asyncio.sleep(seconds)
        after, sent_after, t1 = await asyncio.to_thread(sample), sent["n"], time.monotonic()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(rack.stop() for rack in fleet))
    per_minute = 60 / (t1 - t0)
    return {
        "reports": (sent_after - sent_before) * per_minute,
        "failed": sent["failed"],
        "xids": (after[0] - before[0] - 1) * per_minute,  # the sample itself takes one
        "wal_records": (after[1] - before[1]) * per_minute,
        "wal_bytes": (after[2] - before[2]) * per_minute,
    }


def measure(dbs, root: Path, args: argparse.Namespace, src: str | None) -> dict:
    """One region (its code from `src`, else this checkout) and the fleet against it."""
    from metalplane.region.bootstrap import run_db
    from metalplane.region.services import cluster
    from tests.conftest import create_admin, make_region_config
    from tests.support.processes import RegionProcess

    dbname = dbs.new_database()
    name = "before" if src else "after"
    config = make_region_config(dbs, dbname, root / name / "data", 2, "region-a")
    saved = os.environ.get("PYTHONPATH")
    if src:
        os.environ["PYTHONPATH"] = src  # the region's processes import metalplane from there
    region = RegionProcess(config, root / name)
    try:
        region.start_and_wait()
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    try:
        create_admin(config)
        secret = run_db(config, cluster.shared_secret)

        def sample() -> tuple[int, int, int]:
            xid, records, wal = dbs.cluster.psql(COUNTERS + ";", dbname).strip().split("|")
            return int(xid), int(records), int(wal)

        return asyncio.run(run_fleet([region.url], secret, args.racks, args.settle, args.seconds, sample))
    finally:
        region.stop()


def row(label: str, racks: int, result: dict) -> str:
    return (
        f"| {label} | {racks} | {result['reports']:.0f} | {result['failed']} | {result['xids']:.0f} | "
        f"{result['wal_records']:.0f} | {result['wal_bytes'] / 1024:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--racks", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--settle", type=float, default=20)
    parser.add_argument(
        "--before",
        nargs=2,
        metavar=("SRC", "LABEL"),
        help="first run the region from another checkout's src/ (the code before a change), labelled LABEL",
    )
    parser.add_argument("--label", default="this checkout", help="this checkout's row")
    parser.add_argument("--write", action="store_true", help="write the section into docs/benchmarks.md")
    args = parser.parse_args()

    from tests.support.databases import TestDatabases, world_traversable_tempdir

    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    dbs = TestDatabases()
    dbs.start()
    root = world_traversable_tempdir("mp-bench-")
    rows = []
    try:
        if args.before:
            src, label = args.before
            rows.append(row(label, args.racks, measure(dbs, root, args, src)))
            print(rows[-1], flush=True)
        rows.append(row(args.label, args.racks, measure(dbs, root, args, None)))
        print(rows[-1], flush=True)
    finally:
        dbs.stop()
        shutil.rmtree(root, ignore_errors=True)
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    section = (
        "## Idle fleet: service reports against the database\n\n"
        f"`bench/status_reports_bench.py --racks {args.racks} --seconds {args.seconds:.0f}"
        + (" --before SRC LABEL" if args.before else "")
        + f"` on {platform.node()} ({cpu_model()}, {os.cpu_count()} CPUs), load {load_before} -> {load_after}. "
        "One region (2 workers); each light rack reports the same statuses every 5 s, as a settled rack does. "
        "Per minute, for the whole PostgreSQL cluster (the region's own heartbeats included):\n\n"
        "| region code | racks | reports | failed (run) | transaction ids | WAL records | WAL KiB |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n" + "\n".join(rows) + "\n"
    )
    print(section)
    if args.write:
        write_section(REPO / "docs" / "benchmarks.md", section)


if __name__ == "__main__":
    main()
