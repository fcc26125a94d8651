"""DNS propagation through the whole of metalplane: from a DNS change's commit in the region
database to the answer a machine gets from its rack.

    .venv/bin/python bench/dns_commit_bench.py [--records 1000] [--changes 20] [--write docs/benchmarks.md]

Two regions (each its named, under its supervisor) and one rack (its resolver) as real
processes in network namespaces, PostgreSQL from the test house; a client on the
rack's pxe network. The zone `maas` holds --records names. Timed per change, from the
moment the committing transaction returns (`run_db`, as the API's handlers commit)
until `dig` from the client, against the rack, gets the new answer:

a.  a new name (dnsresource created): never asked before, so nothing cached;
b.  an address change of a name the rack has just answered (cached, TTL 30).

The path: commit -> NOTIFY -> each region renders, checks and `rndc reload`s its zone
-> the region tells the racks which zones changed -> the rack's resolver flushes them.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "src"), str(REPO)]  # metalplane, and the test house (tests.support)

from benchdoc import cpu_model, publish  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from metalplane.region.bootstrap import run_db  # noqa: E402
from metalplane.region.db.tables import dnsresources  # noqa: E402
from metalplane.region.services import dnsresources as dnsresource_service  # noqa: E402
from metalplane.region.services.domain_views import default_domain_id  # noqa: E402
from tests.support.databases import TestDatabases  # noqa: E402
from tests.support.dns_lab import dig  # noqa: E402
from tests.support.netlab import Host, Lab  # noqa: E402
from tests.support.processes import wait_until  # noqa: E402
from tests.support.stack import Stack  # noqa: E402

SECTION = "## DNS propagation through the region (commit to answer)"
MGMT, PXE = "10.78.1.0/24", "10.78.0.0/24"
REGIONS = {"region1": "10.78.1.11", "region2": "10.78.1.12"}
RACK = ("10.78.1.2", "10.78.0.2")
CLIENT = "10.78.0.50"


def address(n: int) -> str:
    return f"10.79.{n // 250}.{n % 250 + 1}"


def service_status(stack: Stack, kind: str, hostname: str, name: str) -> str:
    for node in stack.api(kind, "read"):
        if node["hostname"] == hostname:
            return {s["name"]: s["status"] for s in node["service_set"]}.get(name, "")
    return ""


def fill(stack: Stack, records: int) -> None:
    """`records` names in the default domain, in one transaction (the zone's bulk)."""
    config = stack.regions["region1"][1]

    async def go(conn) -> None:
        domain_id = await default_domain_id(conn)
        await conn.execute(
            insert(dnsresources),
            [{"name": f"fill{i}", "domain_id": domain_id, "ips": [address(i)]} for i in range(records)],
        )
        dnsresource_service._changed(conn)

    run_db(config, go)


def until_answer(client: Host, name: str, want: list[str], timeout: float = 30) -> float:
    """Seconds until the rack answers `name` with `want` (dig in a loop)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if dig(client, RACK[1], name).data == want:
            return time.monotonic() - t0
        time.sleep(0.01)
    raise AssertionError(f"{name} never answered {want} within {timeout} s")


def timed(stack: Stack, client: Host, change, name: str, want: list[str]) -> float:
    config = stack.regions["region1"][1]
    run_db(config, change)
    return until_answer(client, name, want)


def measure(stack: Stack, client: Host, records: int, changes: int) -> tuple[list[float], list[float]]:
    created, moved = [], []
    for k in range(changes):
        ip = address(records + k)

        async def create(conn, k=k, ip=ip) -> None:
            await dnsresource_service.create_resource(conn, {"name": f"new{k}", "domain": "maas", "ip_addresses": ip})

        created.append(timed(stack, client, create, f"new{k}.maas", [ip]))
        print(f"new name {k}: {created[-1] * 1000:.0f} ms", file=sys.stderr)
    until_answer(client, "fill0.maas", [address(0)])  # cached at the rack from here on
    for k in range(changes):
        ip = address(records + changes + k)

        async def move(conn, ip=ip) -> None:
            (row,) = await dnsresource_service.list_resources(conn, fqdn="fill0.maas")
            await dnsresource_service.update_resource(conn, str(row.id), {"ip_addresses": ip})

        moved.append(timed(stack, client, move, "fill0.maas", [ip]))
        print(f"moved address {k}: {moved[-1] * 1000:.0f} ms", file=sys.stderr)
    return created, moved


def run(args: argparse.Namespace) -> dict:
    databases = TestDatabases()
    databases.start()
    try:
        with Lab() as lab:
            lab.add_network("mgmt", MGMT)
            lab.add_network("pxe", PXE)
            stack = Stack(lab, databases)
            for name, ip in REGIONS.items():
                stack.start_region(lab.add_host(name, {"mgmt": f"{ip}/24"}), "mgmt", name=name, num_workers=1)
            stack.cli("admin", "maas", "set-config", "name=dnssec_validation", "value=no")
            rack = lab.add_host("rack1", {"mgmt": f"{RACK[0]}/24", "pxe": f"{RACK[1]}/24"})
            stack.add_rack(rack, "rack1", urls=[f"http://{ip}:5240/MAAS/" for ip in REGIONS.values()])
            stack.start_rack("rack1")
            client = lab.add_host("client", {"pxe": f"{CLIENT}/24"})
            wait_until(
                lambda: service_status(stack, "rack-controllers", "rack1", "dns_rack") == "running",
                90,
                interval=1,
                what="the rack's resolver",
            )
            fill(stack, args.records)
            until_answer(client, f"fill{args.records - 1}.maas", [address(args.records - 1)], timeout=60)
            wait_until(
                lambda: all(service_status(stack, "region-controllers", r, "bind9") == "running" for r in REGIONS),
                30,
                interval=1,
                what="both regions' named",
            )
            created, moved = measure(stack, client, args.records, args.changes)
    finally:
        databases.stop()
    return {"created": created, "moved": moved}


def report(args: argparse.Namespace, results: dict, wall: float, load_before: tuple[float, ...]) -> str:
    def row(label: str, values: list[float]) -> str:
        p90 = statistics.quantiles(values, n=10, method="inclusive")[-1] if len(values) > 1 else values[0]
        return (
            f"| {label} | {len(values)} | {statistics.median(values) * 1000:.0f} | {p90 * 1000:.0f} | "
            f"{min(values) * 1000:.0f} | {max(values) * 1000:.0f} |"
        )

    named = os.popen("named -v").read().strip()
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "\n".join(
            [
                SECTION,
                "",
                "From a DNS change's commit in the region database to the answer a machine gets from its rack: two "
                "regions and a rack as real processes in network namespaces (the path: NOTIFY, each region renders, "
                "checks and `rndc reload`s its zone, tells the racks which zones changed, the rack's resolver flushes "
                "them). The clock starts when the committing transaction returns; `dig` from a client on the rack's "
                "network, every ~15 ms, stops it.",
                "",
                f"- command: `.venv/bin/python bench/dns_commit_bench.py --records {args.records} --changes "
                f"{args.changes} --write docs/benchmarks.md`",
                f"- machine: {os.cpu_count()} x {cpu_model()}, Linux {platform.release()}, {named}",
                f"- date: {now}; bench wall time {wall:.0f} s; load average before: "
                + " ".join(f"{x:.2f}" for x in load_before),
                f"- zone `maas`: {args.records} names besides the controllers",
                "",
                "| change | count | median ms | p90 ms | min ms | max ms |",
                "| --- | ---: | ---: | ---: | ---: | ---: |",
                row("a. new name (dnsresource created), never asked before", results["created"]),
                row("b. address of a name the rack has cached (TTL 30) changed", results["moved"]),
            ]
        )
        + "\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1000, help="names in the zone besides the timed ones")
    ap.add_argument("--changes", type=int, default=20, help="changes timed per kind (the median of these)")
    ap.add_argument("--write", help="markdown file whose section to replace (e.g. docs/benchmarks.md)")
    args = ap.parse_args()
    started, load_before = time.monotonic(), os.getloadavg()
    results = run(args)
    publish(report(args, results, time.monotonic() - started, load_before), args.write)


if __name__ == "__main__":
    main()
