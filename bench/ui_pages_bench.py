"""Web UI pages with many controllers: response times and live-update latency.

Registers N racks in the model (half of them with a connection to a live
worker, so the page has both running and dead ones), logs in through the login
form, then times the Controllers page (first and last page of 50, and the
live part the browser refetches), a rack's page, and how long after a
database change an open event stream says "controllers".

    .venv/bin/python bench/ui_pages_bench.py [--racks 1000] [--rounds 30] [--write]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]  # metalplane, and the test house (tests.support)

from benchdoc import cpu_model, publish  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(client: httpx.Client, url: str, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--racks", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--write", action="store_true", help="write the result into docs/benchmarks.md")
    args = parser.parse_args()

    import psycopg
    from sqlalchemy import select

    from metalplane.region.db.engine import conninfo

    from metalplane.region.bootstrap import ensure_defaults, run_db
    from metalplane.region.db.tables import region_processes
    from metalplane.region.services import connections, racks, users
    from tests.support.databases import TestDatabases, world_traversable_tempdir
    from tests.support.processes import RegionProcess
    from tests.conftest import make_region_config

    databases = TestDatabases()
    databases.start(max_connections=100)
    root = world_traversable_tempdir("mp-ui-bench-")
    region = None
    try:
        config = make_region_config(databases, databases.new_database(), root / "data", 2, "region-a")

        async def setup(conn):
            await ensure_defaults(conn)
            await users.create_user(conn, "admin", "bench-password", "", is_superuser=True)

        run_db(config, setup)
        region = RegionProcess(config, root / "region")
        region.start_and_wait()

        async def add_racks(conn):
            process = (await conn.execute(select(region_processes.c.id).limit(1))).scalar_one()
            ids = []
            for n in range(args.racks):
                node_id = await racks.register_rack(conn, f"b{n:05d}", f"rack{n:05d}", "0.1.0", [
                    {"name": "eth0", "mac": f"52:54:00:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}",
                     "addresses": [f"10.210.{n >> 8 & 255}.{n & 255 or 1}/16"]}])
                await racks.update_services(conn, node_id, [{"name": "tftp", "status": "running"}])
                if n % 2 == 0:
                    await connections.add_connection(conn, node_id, process)
                ids.append(node_id)
            return ids

        started = time.monotonic()
        node_ids = run_db(config, add_racks)
        setup_s = time.monotonic() - started
        base = f"http://127.0.0.1:{config.port}"
        with httpx.Client(timeout=30) as client:
            form = client.get(base + "/MAAS/accounts/login/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
            client.post(base + "/MAAS/accounts/login/",
                        data={"csrfmiddlewaretoken": token, "username": "admin", "password": "bench-password"})
            pages = -(-(args.racks + 1) // 50)
            urls = {
                "Controllers, page 1 (50 rows)": "/MAAS/r/controllers/",
                f"Controllers, page {pages}": f"/MAAS/r/controllers/?page={pages}",
                "the live part (`?part=table`)": "/MAAS/r/controllers/?page=1&part=table",
                "a rack's page": "/MAAS/r/controller/b00000/",
            }
            timed(client, base + "/MAAS/r/controllers/", 3)  # warm the workers
            results = {name: timed(client, base + path, args.rounds) for name, path in urls.items()}

            # Live latency: a change committed -> "change: controllers" on an open stream.
            seen: list[float] = []
            arrived = threading.Event()

            def listen():
                try:
                    with client.stream("GET", base + "/MAAS/r/events/?topic=controllers") as stream:
                        for line in stream.iter_lines():
                            if line == "data: controllers":
                                seen.append(time.perf_counter())
                                arrived.set()
                except httpx.HTTPError:
                    pass  # the client closed it at the end

            threading.Thread(target=listen, daemon=True).start()
            time.sleep(1.0)
            latencies = []
            with psycopg.connect(conninfo(config, "ui-bench")) as db:
                for n in range(min(args.rounds, 20)):
                    arrived.clear()
                    db.execute("UPDATE service_status SET status = %s WHERE node_id = %s AND name = 'tftp'",
                               ("dead" if n % 2 == 0 else "running", node_ids[1]))
                    sent = time.perf_counter()
                    db.commit()
                    if arrived.wait(5):
                        latencies.append((seen[-1] - sent) * 1000)
                    time.sleep(0.3)
    finally:
        if region is not None:
            region.stop()
        databases.stop()
        shutil.rmtree(root, ignore_errors=True)

    lines = [
        f"## Web UI pages ({args.racks:,} racks)",
        "",
        f"Command: `.venv/bin/python bench/ui_pages_bench.py --racks {args.racks} --rounds {args.rounds}"
        f"{' --write' if args.write else ''}`",
        f"Machine: {platform.machine()}, {cpu_model()}; one region (2 workers), its PostgreSQL and the client share it"
        f" (load average {os.getloadavg()[0]:.1f} at the end: other work shared the machine).",
        f"{args.racks} racks registered in the model ({setup_s:.0f} s), half with a connection to a live worker.",
        "Times are the client's round trip over loopback, logged in (session lookup included), "
        f"{args.rounds} requests each.",
        "",
        "| request | median | p95 |",
        "| --- | ---: | ---: |",
        *(f"| {name} | {statistics.median(v):.0f} ms | {percentile(v, 0.95):.0f} ms |" for name, v in results.items()),
    ]
    if latencies:
        lines.append(f"| COMMIT of a rack's service change → `change: controllers` on an open event stream "
                     f"({len(latencies)} changes) | {statistics.median(latencies):.0f} ms | "
                     f"{percentile(latencies, 0.95):.0f} ms |")
    lines += ["", "Every query of a page is bounded by its 50 rows; the event stream carries topic names only "
              "(the page then fetches its part), coalesced over 100 ms."]
    publish("\n".join(lines), str(REPO / "docs" / "benchmarks.md") if args.write else None)


if __name__ == "__main__":
    main()
