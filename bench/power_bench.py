"""500 emulated BMCs, 3 racks, 1 region: power queries and BMC ownership failover.

The BMCs are Redfish emulators (one process serving 500 BMCs on 127.0.1.x).
Measures: the time to query every machine's power state through the API (32
clients at once) against the same queries made straight to the emulators
(the floor: no region, no rack); the time to reassign a killed rack's BMCs;
and the BMCs moved on the kill and on the return against the minimum
`ha.bmc_owners` computes.

    .venv/bin/python bench/power_bench.py [--bmcs 500] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchdoc import cpu_model, write_section  # noqa: E402

from metalplane.client.http import MaasHttp  # noqa: E402
from metalplane.ha import bmc_owners  # noqa: E402
from metalplane.region.bootstrap import run_db  # noqa: E402
from metalplane.region.services import cluster  # noqa: E402
from tests.conftest import create_admin, make_region_config  # noqa: E402
from tests.support.bmc_redfish import HttpBmcEmulator, farm  # noqa: E402
from tests.support.databases import TestDatabases, world_traversable_tempdir  # noqa: E402
from tests.support.processes import RackProcess, RegionProcess, wait_until  # noqa: E402

CLIENTS = 32


async def query_all(url: str, key: str, system_ids: list[str]) -> float:
    """Every machine's query-power-state through the API, CLIENTS at a time."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for s in system_ids:
        queue.put_nowait(s)

    async def worker() -> None:
        with MaasHttp(url, key) as api:
            while not queue.empty():
                system_id = queue.get_nowait()
                response = await asyncio.to_thread(api.get, f"machines/{system_id}/", "query_power_state")
                assert response.status_code == 200, response.text

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    return time.monotonic() - started


async def query_direct(bmcs: list, password: str) -> float:
    """The same queries straight at the emulators: what the BMCs themselves cost."""
    limits = httpx.Limits(max_connections=CLIENTS)
    started = time.monotonic()
    sem = asyncio.Semaphore(CLIENTS)
    async with httpx.AsyncClient(auth=("admin", password), limits=limits) as client:

        async def one(b) -> None:
            async with sem:
                response = await client.get(f"http://{b.url}/redfish/v1/Systems/1")
                response.raise_for_status()

        await asyncio.gather(*(one(b) for b in bmcs))
    return time.monotonic() - started


def owners(api: MaasHttp) -> dict[int, str | None]:
    return {b["id"]: b["owner"] for b in api.get("machines/", op="bmcs").json()["bmcs"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bmcs", type=int, default=500)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    dbs = TestDatabases()
    dbs.start()
    root = world_traversable_tempdir("mp-powerbench-")
    region = None
    racks: list[RackProcess] = []
    emulator = None
    result: dict = {"bmcs": args.bmcs}
    try:
        config = make_region_config(dbs, dbs.new_database(), root / "region-data", 2, "region")
        region = RegionProcess(config, root / "region")
        region.start_and_wait()
        key = create_admin(config)
        secret = run_db(config, cluster.shared_secret)
        api = MaasHttp(region.url, key, timeout=120)
        api.post("maas/", "set_config", name="power_poll_interval", value="3600")
        for n in range(3):
            rack = RackProcess(root / f"rack{n}", [region.url], secret, f"rack{n}")
            rack.start()
            racks.append(rack)
        wait_until(lambda: len(api.get("rackcontrollers/").json()) == 3, 60, what="3 racks")
        bmcs = farm(args.bmcs, first_address="127.0.1.1", port=18000, password="bench-pass")
        emulator = HttpBmcEmulator(root / "bmcs", bmcs).start()
        started = time.monotonic()
        system_ids = []
        for n, b in enumerate(bmcs):
            params = {f"power_parameters_{k}": v for k, v in emulator.params(b.name, "1").items()}
            response = api.post(
                "machines/",
                architecture="amd64/generic",
                power_type="redfish",
                mac_addresses=f"52:54:00:b0:{n >> 8 & 255:02x}:{n & 255:02x}",
                commission="false",
                hostname=f"node-{b.name}",
                **params,
            )
            assert response.status_code == 200, response.text
            system_ids.append(response.json()["system_id"])
        result["create_all_s"] = round(time.monotonic() - started, 1)
        wait_until(lambda: all(owners(api).values()), 60, what="every BMC owned")
        spread = api.get("machines/", op="bmcs").json()
        result["owner_max_over_mean"] = spread["max_over_mean"]
        result["owners"] = sorted(spread["owners"].values())
        result["query_all_api_s"] = round(asyncio.run(query_all(region.url, key, system_ids)), 2)
        result["query_all_direct_s"] = round(asyncio.run(query_direct(bmcs, "bench-pass")), 2)

        # Kill a rack: its BMCs must move, and only those.
        before = owners(api)
        victim = racks[1]
        victim_id = victim.system_id
        victim.kill(signal.SIGKILL)
        killed = time.monotonic()
        after_kill = wait_until(
            lambda: (o := owners(api)) and victim_id not in o.values() and all(o.values()) and o,
            60,
            interval=0.05,
            what="reassignment",
        )
        result["reassign_after_kill_s"] = round(time.monotonic() - killed, 2)
        result["kill_moved"] = sum(1 for b in before if before[b] != after_kill[b])
        result["kill_minimum"] = sum(1 for o in before.values() if o == victim_id)

        # Bring it back: it gets its share with the fewest moves.
        victim.start()
        wait_until(lambda: victim_id in owners(api).values(), 60, what="the rack back with BMCs")
        time.sleep(2)
        overview = api.get("machines/", op="bmcs").json()["bmcs"]
        final = {b["id"]: b["owner"] for b in overview}
        rack_ids = sorted({o for o in final.values() if o} | {victim_id})
        # The real candidate sets: racks that proved they reach each BMC.
        candidates = {b["id"]: set(b["candidates"]) for b in overview}
        result["return_moved"] = sum(1 for b in final if final[b] != after_kill[b])
        result["return_minimum"] = bmc_owners.owner_min_moves_lower_bound(list(final), candidates, after_kill, 1.25)
        counts = [sum(1 for o in final.values() if o == r) for r in rack_ids]
        result["final_owners"] = sorted(counts)
    finally:
        for rack in racks:
            rack.stop()
        if emulator is not None:
            emulator.stop()
        if region is not None:
            region.stop()
        dbs.stop()
        shutil.rmtree(root, ignore_errors=True)
    result["machine"] = f"{os.cpu_count()} CPUs, {platform.machine()}, {cpu_model()}"
    print(json.dumps(result, indent=2))
    if args.write:
        write_doc(result)


def write_doc(result: dict) -> None:
    doc = REPO / "docs" / "benchmarks.md"
    r = result
    section = f"""## Power and BMC ownership ({r["bmcs"]} BMCs, 3 racks)

Command: `.venv/bin/python bench/power_bench.py --bmcs {r["bmcs"]} --write`
Machine: {r["machine"]}; region (2 workers), 3 racks, PostgreSQL and the emulators share it.
BMCs: Redfish emulators, one process, each BMC on its own 127.0.1.x address.

| measure | result | comparison |
| --- | --- | --- |
| query every power state through the API ({CLIENTS} clients) | {r["query_all_api_s"]} s | the same {r["bmcs"]} queries straight at the emulators: {r["query_all_direct_s"]} s (ratio {round(r["query_all_api_s"] / max(r["query_all_direct_s"], 0.001), 1)}x) |
| BMC owners after placement | {r["owners"]} | max/mean {r["owner_max_over_mean"]} (limit 1.25) |
| time to reassign after `kill -9` of a rack | {r["reassign_after_kill_s"]} s | requirement: 5 s |
| BMCs moved on the kill | {r["kill_moved"]} | minimum {r["kill_minimum"]} (the BMCs it owned) |
| BMCs moved on the return | {r["return_moved"]} | minimum {r["return_minimum"]} (`ha.bmc_owners` lower bound over the real candidate sets: racks that proved they reach each BMC); owners now {r["final_owners"]} |

"""
    write_section(doc, section)


if __name__ == "__main__":
    main()
