"""The region supervisor: workers recorded with heartbeats, restarted, stopped cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import httpx
import pytest

from metalplane.region.bootstrap import run_db
from metalplane.region.services import controllers
from tests.conftest import RunningRegion, create_admin, start_region
from tests.support.processes import wait_until


@pytest.fixture
def region4(databases, workdir):
    process = start_region(databases, workdir, num_workers=4)
    yield RunningRegion(process, create_admin(process.config))
    process.stop()


def processes_of(region: RunningRegion) -> list[dict]:
    with region.api() as api:
        regions = api.get("regioncontrollers/").json()
    assert len(regions) == 1
    return regions[0]["processes"]


def test_region_controllers_read_shows_every_worker(region4):
    procs = wait_until(lambda: len(processes_of(region4)) == 4 and processes_of(region4), 10, what="4 workers")
    assert sorted(p["worker_index"] for p in procs) == [0, 1, 2, 3]
    assert sorted(p["pid"] for p in procs) == region4.process.worker_pids()
    assert [p["rpc_port"] for p in sorted(procs, key=lambda p: p["worker_index"])] == [
        region4.config.rpc_port + i for i in range(4)
    ]


def test_killed_worker_is_back_within_5s_and_others_keep_answering(region4):
    wait_until(lambda: len(processes_of(region4)) == 4, 10, what="4 workers")
    victim = processes_of(region4)[1]["pid"]
    failures: list[str] = []
    answered = 0
    stop = threading.Event()

    def hammer() -> None:
        nonlocal answered
        while not stop.is_set():
            try:  # a fresh connection each time, so none is pinned to the dead worker
                with httpx.Client(timeout=5) as client:
                    status = client.get(region4.url + "api/2.0/version/").status_code
                if status != 200:
                    failures.append(f"status {status}")
                answered += 1
            except httpx.HTTPError as exc:
                failures.append(repr(exc))

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        # The count drops while the dead worker is gone...
        wait_until(lambda: len(processes_of(region4)) == 3, 3, interval=0.05, what="the count to drop")
        # ...and a replacement registers within 5 s of the kill.
        procs = wait_until(
            lambda: (p := processes_of(region4)) and len(p) == 4 and victim not in {x["pid"] for x in p} and p,
            5,
            interval=0.1,
            what="the replacement worker",
        )
        back_after = time.monotonic() - killed
    finally:
        stop.set()
        thread.join()
    assert back_after < 5.0
    assert sorted(p["worker_index"] for p in procs) == [0, 1, 2, 3]
    assert failures == []
    assert answered > 10


def test_a_stalled_worker_stays_recorded_while_its_supervisor_vouches_for_it(region4):
    """A worker whose own heartbeat stalls (here: stopped) past PROCESS_TIMEOUT is not
    reaped while its supervisor runs: reaping a busy worker would cut its racks out."""
    wait_until(lambda: len(processes_of(region4)) == 4, 10, what="4 workers")
    stalled = region4.process.worker_pids()[0]

    async def live(conn):
        rows = await controllers.list_controllers(conn, controllers.REGION_TYPES)
        return {p.pid for p in await controllers.live_processes(conn, rows[0]["id"])}

    os.kill(stalled, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + controllers.PROCESS_TIMEOUT + 3
        while time.monotonic() < deadline:
            assert stalled in run_db(region4.config, live)
            time.sleep(0.5)
    finally:
        os.kill(stalled, signal.SIGCONT)


def test_sigterm_stops_everything_and_clears_the_records(region4):
    wait_until(lambda: len(processes_of(region4)) == 4, 10, what="4 workers")
    workers = region4.process.worker_pids()
    region4.process.proc.send_signal(signal.SIGTERM)
    assert region4.process.proc.wait(15) == 0
    for pid in workers:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"

    async def count(conn):
        rows = await controllers.list_controllers(conn, controllers.REGION_TYPES)
        return len(await controllers.live_processes(conn, rows[0]["id"]))

    assert run_db(region4.config, count) == 0
    assert "region stopped" in region4.process.log()


def test_killing_the_supervisor_takes_its_workers_down(region4):
    wait_until(lambda: len(processes_of(region4)) == 4, 10, what="4 workers")
    workers = region4.process.worker_pids()
    region4.process.kill(signal.SIGKILL)

    def all_gone() -> bool:
        out = subprocess.run(["ps", "-o", "pid=", "-p", ",".join(map(str, workers))], capture_output=True, text=True)
        return out.stdout.strip() == ""

    wait_until(all_gone, 10, what="orphaned workers to exit")


def test_budget_check_adds_up_every_registered_region(databases, workdir):
    dbname = databases.new_database()

    async def register_big_region(conn):
        await controllers.register_region(
            conn,
            "bigone",
            "big-region",
            "0.1.0",
            controllers.RegionInfo(num_workers=40, connections_needed=390, api_port=5240),
        )

    from tests.conftest import make_region_config

    run_db(make_region_config(databases, dbname, workdir / "x"), register_big_region)
    process = start_region(databases, workdir, dbname=dbname, num_workers=2)
    try:
        log = process.log()
    finally:
        process.stop()
    line = next(line for line in log.splitlines() if "database connection budget" in line)
    assert "exceeded" in line
    assert "2 region(s) need up to 410 connections" in line  # 390 + 2 workers x (8 + 1) + 2
    assert "max_connections=400" in line
    assert "set max_connections to at least 413" in line


def test_budget_check_ok_line(region4):
    line = next(line for line in region4.process.log().splitlines() if "database connection budget" in line)
    assert "budget OK" in line and "need up to 38 connections" in line
