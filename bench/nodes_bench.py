"""The node API at size: `machines read` (every field of every machine, and filtered)
and `machine read` with N machines, and N identical concurrent `machines create`.

    .venv/bin/python bench/nodes_bench.py [--machines 500]

Prints medians of 5 reads. Each machine has one interface; a fifth of them are in
another zone and carry a tag.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from metalplane.client.http import MaasHttp  # noqa: E402
from tests.conftest import create_admin, make_region_config  # noqa: E402
from tests.support.databases import TestDatabases, world_traversable_tempdir  # noqa: E402
from tests.support.processes import RegionProcess  # noqa: E402


def median_seconds(call, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.monotonic()
        call()
        times.append(time.monotonic() - started)
    return round(statistics.median(times), 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--machines", type=int, default=500)
    args = parser.parse_args()
    dbs = TestDatabases()
    dbs.start()
    root = world_traversable_tempdir("mp-nodesbench-")
    region = None
    result: dict = {"machines": args.machines}
    try:
        config = make_region_config(dbs, dbs.new_database(), root / "region-data", 2, "region")
        region = RegionProcess(config, root / "region")
        region.start_and_wait()
        key = create_admin(config)
        api = MaasHttp(region.url, key, timeout=300)
        assert api.post("zones/", name="row-2").status_code == 200
        assert api.post("tags/", name="gpu").status_code == 200
        started = time.monotonic()
        ids = []
        for n in range(args.machines):
            extra = {"zone": "row-2"} if n % 5 == 0 else {}
            response = api.post(
                "machines/",
                architecture="amd64/generic",
                commission="false",
                mac_addresses=f"52:54:00:c0:{n >> 8 & 255:02x}:{n & 255:02x}",
                hostname=f"m{n}",
                **extra,
            )
            assert response.status_code == 200, response.text
            ids.append(response.json()["system_id"])
        result["create_each_ms"] = round((time.monotonic() - started) * 1000 / args.machines, 1)
        api.post("tags/gpu/", "update_nodes", add=ids[::5])
        result["read_all_s"] = median_seconds(lambda: api.get("machines/").raise_for_status())
        result["read_zone_and_tag_s"] = median_seconds(
            lambda: api.get("machines/", zone="row-2", tags="gpu").raise_for_status()
        )
        result["read_one_s"] = median_seconds(lambda: api.get(f"machines/{ids[0]}/").raise_for_status())
        assert len(api.get("machines/", zone="row-2", tags="gpu").json()) == len(ids[::5])

        def create(_: int) -> int:
            with MaasHttp(region.url, key) as client:
                return client.post(
                    "machines/",
                    architecture="amd64/generic",
                    commission="false",
                    mac_addresses="52:54:00:c1:00:01",
                    hostname="race",
                ).status_code

        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            statuses = sorted(pool.map(create, range(16)))
        result["race_16_s"] = round(time.monotonic() - started, 2)
        result["race_16_statuses"] = {str(s): statuses.count(s) for s in set(statuses)}
    finally:
        if region is not None:
            region.stop()
        dbs.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
