"""Web UI pages at scale: response times and live-update latency.

Registers N racks in the model (half of them with a connection to a live worker,
so the page has both running and dead ones) and M machines (written in bulk,
tests/support/machine_fleet.py), logs in through the login form, then times the
Controllers and Machines pages (first and a later page, the live part the
browser refetches, each filter, a MAC search), a rack's and a machine's page,
and how long after a database change an open event stream names the topic.

Each request is timed twice: the client's round trip over loopback, and the
region's own time from its Server-Timing header (what the 300 ms target is for).

    .venv/bin/python bench/ui_pages_bench.py [--racks 1000] [--machines 10000] [--rounds 30] [--write]
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

SECTION = "## Web UI pages"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(client: httpx.Client, url: str, rounds: int) -> tuple[list[float], list[float]]:
    """(round trips, region times) in ms."""
    trips, server = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(url)
        trips.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
        server.append(float(re.search(r"app;dur=([\d.]+)", response.headers["server-timing"]).group(1)))
    return trips, server


def stream_latency(client: httpx.Client, base: str, topic: str, change, rounds: int) -> list[float]:
    """ms from COMMIT of `change(n)` (a callable that commits) to "data: TOPIC" on an open stream."""
    seen: list[float] = []
    arrived = threading.Event()

    def listen():
        try:
            with client.stream("GET", f"{base}/MAAS/r/events/?topic={topic}") as stream:
                for line in stream.iter_lines():
                    if line == f"data: {topic}":
                        seen.append(time.perf_counter())
                        arrived.set()
        except httpx.HTTPError:
            pass  # the client closed it at the end

    threading.Thread(target=listen, daemon=True).start()
    time.sleep(1.0)
    latencies = []
    for n in range(rounds):
        arrived.clear()
        committed = change(n)
        if arrived.wait(5):
            latencies.append((seen[-1] - committed) * 1000)
        time.sleep(0.3)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--racks", type=int, default=1000)
    parser.add_argument("--machines", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--write", action="store_true", help="write the result into docs/benchmarks.md")
    args = parser.parse_args()

    import psycopg
    from sqlalchemy import select

    from metalplane.region.bootstrap import ensure_defaults, run_db
    from metalplane.region.db.engine import conninfo
    from metalplane.region.db.tables import region_processes
    from metalplane.region.services import connections, racks, users
    from tests.conftest import make_region_config
    from tests.support.databases import TestDatabases, world_traversable_tempdir
    from tests.support.machine_fleet import add_machines, fleet_hostname, fleet_mac
    from tests.support.processes import RegionProcess

    databases = TestDatabases()
    databases.start(max_connections=100)
    root = world_traversable_tempdir("mp-ui-bench-")
    region = None
    results: dict[str, tuple[list[float], list[float]]] = {}
    latencies: dict[str, list[float]] = {}
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
                node_id = await racks.register_rack(
                    conn,
                    f"b{n:05d}",
                    f"rack{n:05d}",
                    "0.1.0",
                    [
                        {
                            "name": "eth0",
                            "mac": f"52:54:00:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}",
                            "addresses": [f"10.210.{n >> 8 & 255}.{n & 255 or 1}/16"],
                        }
                    ],
                )
                await racks.update_services(conn, node_id, [{"name": "tftp", "status": "running"}])
                if n % 2 == 0:
                    await connections.add_connection(conn, node_id, process)
                ids.append(node_id)
            return ids

        started = time.monotonic()
        node_ids = run_db(config, add_racks)
        racks_s = time.monotonic() - started
        started = time.monotonic()
        run_db(config, lambda conn: add_machines(conn, args.machines, prefix="node", mac_base=0xC3))
        machines_s = time.monotonic() - started
        with psycopg.connect(conninfo(config, "ui-bench"), autocommit=True) as db:
            db.execute("ANALYZE")
        base = f"http://127.0.0.1:{config.port}"
        middle = args.machines // 2
        with httpx.Client(base_url=base, timeout=30) as client:
            form = client.get("/MAAS/accounts/login/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
            client.post(
                "/MAAS/accounts/login/",
                data={"csrfmiddlewaretoken": token, "username": "admin", "password": "bench-password"},
            )
            rack_pages = -(-(args.racks + 1) // 50)
            machine_pages = -(-args.machines // 50)
            urls = {
                "Controllers, page 1 (50 rows)": "/MAAS/r/controllers/",
                f"Controllers, page {rack_pages}": f"/MAAS/r/controllers/?page={rack_pages}",
                "Controllers, the live part (`?part=table`)": "/MAAS/r/controllers/?page=1&part=table",
                "a rack's page": "/MAAS/r/controller/b00000/",
                "Machines, page 1 (50 rows)": "/MAAS/r/machines/",
                f"Machines, page {machine_pages}": f"/MAAS/r/machines/?page={machine_pages}",
                "Machines, the live part (`?part=table`)": "/MAAS/r/machines/?page=1&part=table",
                "Machines, MAC search (a whole MAC)": "/MAAS/r/machines/?"
                + str(httpx.QueryParams({"q": fleet_mac(0xC3, middle)})),
                "Machines, MAC prefix search (4 octets)": "/MAAS/r/machines/?"
                + str(httpx.QueryParams({"q": fleet_mac(0xC3, middle)[:11]})),
                "Machines, hostname search (substring)": "/MAAS/r/machines/?"
                + str(httpx.QueryParams({"q": fleet_hostname("node", middle)[-4:]})),
                "Machines, status Ready, page 2": "/MAAS/r/machines/?status=4&page=2",
                "Machines, zone filter": "/MAAS/r/machines/?zone=zone-b",
                "a machine's page": f"/MAAS/r/machine/{'node-' + format(middle, '05x')}/",
                "Subnets": "/MAAS/r/subnets/",
            }
            for path in ("/MAAS/r/controllers/", "/MAAS/r/machines/"):
                timed(client, path, 3)  # warm the workers
            found = client.get(urls["Machines, MAC search (a whole MAC)"]).text
            assert fleet_hostname("node", middle) in found and "1 machine matches" in found, "the MAC search works"
            results = {name: timed(client, path, args.rounds) for name, path in urls.items()}

            with psycopg.connect(conninfo(config, "ui-bench")) as db:

                def rack_change(n: int) -> float:
                    db.execute(
                        "UPDATE service_status SET status = %s WHERE node_id = %s AND name = 'tftp'",
                        ("dead" if n % 2 == 0 else "running", node_ids[1]),
                    )
                    sent = time.perf_counter()
                    db.commit()
                    return sent

                def machine_change(n: int) -> float:
                    db.execute(
                        "UPDATE nodes SET status = %s WHERE hostname = %s",
                        (1 if n % 2 == 0 else 4, fleet_hostname("node", middle)),
                    )  # it starts Ready
                    sent = time.perf_counter()
                    db.commit()
                    return sent

                rounds = min(args.rounds, 20)
                latencies["a rack's service change"] = stream_latency(client, base, "controllers", rack_change, rounds)
                latencies["a machine's status change"] = stream_latency(
                    client, base, "machines", machine_change, rounds
                )
    finally:
        if region is not None:
            region.stop()
        databases.stop()
        shutil.rmtree(root, ignore_errors=True)

    lines = [
        SECTION,
        "",
        f"Command: `.venv/bin/python bench/ui_pages_bench.py --racks {args.racks} --machines {args.machines} "
        f"--rounds {args.rounds}{' --write' if args.write else ''}`",
        f"Machine: {platform.machine()}, {cpu_model()}; one region (2 workers), its PostgreSQL and the client share it"
        f" (load average {os.getloadavg()[0]:.1f} at the end: other work shared the machine).",
        f"{args.racks:,} racks registered in the model ({racks_s:.0f} s), half with a connection to a live worker; "
        f"{args.machines:,} machines written in bulk ({machines_s:.1f} s), one MAC each.",
        f"Each request {args.rounds} times, logged in (session lookup included): the region's own time "
        "(its Server-Timing header) and the client's round trip over loopback.",
        "",
        "| request | region median | region p95 | round trip median | round trip p95 |",
        "| --- | ---: | ---: | ---: | ---: |",
        *(
            f"| {name} | {statistics.median(server):.0f} ms | {percentile(server, 0.95):.0f} ms | "
            f"{statistics.median(trips):.0f} ms | {percentile(trips, 0.95):.0f} ms |"
            for name, (trips, server) in results.items()
        ),
        "",
        "| COMMIT of ... → the topic on an open event stream | changes | median | p95 |",
        "| --- | ---: | ---: | ---: |",
        *(
            f"| {name} | {len(values)} | {statistics.median(values):.0f} ms | {percentile(values, 0.95):.0f} ms |"
            for name, values in latencies.items()
            if values
        ),
        "",
        "Every query of a page is bounded by its 50 rows (count and page from indexes: migration 0011); the event "
        "stream carries topic names only (the page then fetches its part), coalesced over 100 ms.",
    ]
    publish("\n".join(lines), str(REPO / "docs" / "benchmarks.md") if args.write else None)


if __name__ == "__main__":
    main()
