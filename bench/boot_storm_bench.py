"""Boot storm: N simulated PXE machines (DHCP + TFTP + HTTP) on one rack, against a stock stack.

    .venv/bin/python bench/boot_storm_bench.py [--clients 200] [--rounds 2] [--write docs/benchmarks.md]

Everything runs in network namespaces (tests.support.netlab) on one bridge,
10.90.0.0/16: `region` (10.90.0.10), `rack1` (10.90.0.2) and `machines` (10.90.0.50),
where bench/pxe_storm_client.py plays N machines at once (see its docstring for
the steps each one takes).

a. metalplane: a region (2 workers, PostgreSQL) and a rack with DHCP on (Kea from the
   model), the ephemeral image built by `images build-ephemeral` and imported, cached
   on the rack. Each machine is unknown, so the rack asks the region for every
   per-MAC script (GetBootConfig over RPC): the region answers "enlist".
b. stock: the rack stopped (its Kea dies with it); in the same namespace a bare
   kea-dhcp4 (hand-written config with the same client classes and pool),
   tftpd-hpa serving the same loader, and nginx serving one static iPXE script and
   the same kernel and initrd. No region in the path.

Rounds alternate a and b; per round each stack gets a fresh storm. Reported: time to
all machines booted, failures, median and 95th percentile per machine, and the
median time of each stage.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "src"), str(REPO)]  # metalplane, and the test house (tests.support)

from benchdoc import cpu_model, publish  # noqa: E402

from metalplane.images.build import build_ephemeral  # noqa: E402
from tests.support.databases import TestDatabases  # noqa: E402
from tests.support.netlab import Host, Lab, NetnsProcess  # noqa: E402
from tests.support.processes import wait_until  # noqa: E402
from tests.support.stack import Stack  # noqa: E402

CIDR, RACK, REGION, MACHINES = "10.90.0.0/16", "10.90.0.2", "10.90.0.10", "10.90.0.50"
POOL = ("10.90.1.1", "10.90.3.254")
LOADER = "undionly.kpxe"
STOCK_HTTP_PORT = 8080
CLIENT = REPO / "bench" / "pxe_storm_client.py"
SECTION = "## Boot storm"
STAGES = ("dhcp", "tftp", "dhcp_ipxe", "script", "images")


@dataclass
class Run:
    stack: str
    wall: float
    booted: int
    failed: int
    errors: list[str]
    per_machine: list[float]
    stages: dict[str, float]
    bytes: int


def storm(machines: Host, clients: int, mac_prefix: str) -> dict:
    out = machines.run(
        [
            sys.executable,
            str(CLIENT),
            "--ifname",
            machines.ifname("storm"),
            "--clients",
            str(clients),
            "--mac-prefix",
            mac_prefix,
        ],
        timeout=900,
    )
    return json.loads(out.stdout)


def summarise(stack: str, raw: dict) -> Run:
    ok = [m for m in raw["machines"] if not m["error"]]
    errors = sorted({m["error"] for m in raw["machines"] if m["error"]})
    stages = {s: statistics.median(m["stages"][s] for m in ok) for s in STAGES} if ok else {}
    return Run(
        stack,
        raw["wall"],
        len(ok),
        len(raw["machines"]) - len(ok),
        errors,
        sorted(m["total"] for m in ok),
        stages,
        sum(m["bytes"] for m in ok),
    )


# -- stack a: metalplane --------------------------------------------------------------


def start_metalplane(lab: Lab, databases: TestDatabases, image_dir: Path, region: Host, rack: Host) -> Stack:
    stack = Stack(lab, databases)
    stack.start_region(region, "storm")
    stack.add_rack(rack, "rack1")
    stack.start_rack("rack1")
    wait_until(lambda: len(stack.api("rack-controllers", "read")) == 1, 60, what="the rack")
    stack.import_image(image_dir)
    stack.serve_dhcp(CIDR, POOL[0], POOL[1], "rack1")

    def served() -> bool:
        rack_info = stack.api("rack-controllers", "read")[0]
        status = {s["name"]: (s["status"], s["status_info"]) for s in rack_info["service_set"]}
        return status["dhcpd"][0] == "running" and status["http"][0] == "running" and "image" in status["http"][1]

    wait_until(served, 180, interval=1, what="the rack serving DHCP and the cached image")
    return stack


def kea_running(host: Host) -> bool:
    """A kea-dhcp4 inside this namespace (pgrep would also see other namespaces')."""
    for pid in host.pids():
        try:
            if b"kea-dhcp4" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


def stop_rack(stack: Stack) -> None:
    host, _, proc = stack.racks["rack1"]
    assert proc is not None
    host.stop(proc, timeout=15)
    wait_until(lambda: not kea_running(host), 15, what="the rack's Kea to stop")


# -- stack b: bare Kea + tftpd-hpa + nginx ----------------------------------------------


def kea_config(workdir: Path, ifname: str) -> dict:
    return {
        "Dhcp4": {
            "interfaces-config": {"interfaces": [ifname], "dhcp-socket-type": "raw"},
            "lease-database": {"type": "memfile", "persist": True, "name": str(workdir / "leases.csv")},
            "valid-lifetime": 600,
            "client-classes": [
                {
                    "name": "ipxe",
                    "test": "substring(option[77].hex,0,4) == 'iPXE'",
                    "boot-file-name": f"http://{RACK}:{STOCK_HTTP_PORT}/boot.ipxe",
                },
                {
                    "name": "pxe-bios",
                    "test": "option[93].hex == 0x0000 and not member('ipxe')",
                    "boot-file-name": LOADER,
                    "next-server": RACK,
                },
            ],
            "subnet4": [{"id": 1, "subnet": CIDR, "pools": [{"pool": f"{POOL[0]} - {POOL[1]}"}]}],
            "loggers": [
                {"name": "kea-dhcp4", "severity": "WARN", "output_options": [{"output": str(workdir / "kea.log")}]}
            ],
        }
    }


NGINX = """daemon off;
user root;
worker_processes auto;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    client_body_temp_path {dir}/tmp-body;
    proxy_temp_path {dir}/tmp-proxy;
    fastcgi_temp_path {dir}/tmp-fastcgi;
    uwsgi_temp_path {dir}/tmp-uwsgi;
    scgi_temp_path {dir}/tmp-scgi;
    server {{ listen {address}:{port}; root {dir}/www; }}
}}
"""


def start_stock(rack: Host, workdir: Path, kernel: Path, initrd: Path) -> list[NetnsProcess]:
    www, tftp_root = workdir / "www", workdir / "tftp"
    www.mkdir()
    tftp_root.mkdir()
    shutil.copy(f"/usr/lib/ipxe/{LOADER}", tftp_root / LOADER)
    shutil.copy(kernel, www / "kernel")
    shutil.copy(initrd, www / "initrd")
    base = f"http://{RACK}:{STOCK_HTTP_PORT}"
    (www / "boot.ipxe").write_text(f"#!ipxe\nkernel {base}/kernel console=ttyS0\ninitrd {base}/initrd\nboot\n")
    config = workdir / "kea.json"
    config.write_text(json.dumps(kea_config(workdir, rack.ifname("storm")), indent=1))
    (workdir / "nginx.conf").write_text(NGINX.format(dir=workdir, address=RACK, port=STOCK_HTTP_PORT))
    env = {"KEA_PIDFILE_DIR": str(workdir), "KEA_LOCKFILE_DIR": str(workdir)}
    rack.run(["kea-dhcp4", "-t", str(config)], env=env)
    procs = [
        rack.spawn(["kea-dhcp4", "-c", str(config)], env=env, log=workdir / "kea.out"),
        rack.spawn(
            [
                "/usr/sbin/in.tftpd",
                "--foreground",
                "--address",
                f"{RACK}:69",
                "--secure",
                "--user",
                "root",
                str(tftp_root),
            ],
            log=workdir / "tftpd.out",
        ),
        rack.spawn(["nginx", "-c", str(workdir / "nginx.conf")], log=workdir / "nginx.out"),
    ]
    wait_until(
        lambda: rack.run(["curl", "-sf", "-o", "/dev/null", f"{base}/boot.ipxe"], check=False).returncode == 0,
        20,
        what="nginx",
    )
    time.sleep(1.0)  # Kea and tftpd have no readiness signal worth more than this
    for proc in procs:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited: {proc.log()[-2000:]}")
    return procs


# -- report ----------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def machine_line() -> str:
    return (
        f"{os.cpu_count()} CPUs (nproc), {cpu_model()}; Linux {platform.release()}, Python {platform.python_version()}"
    )


def report(
    runs: list[Run], args: argparse.Namespace, started: str, wall: float, sizes: dict[str, int], load: tuple[str, str]
) -> str:
    lines = [
        SECTION,
        "",
        f"{args.clients} simulated PXE machines booting at once on one rack "
        "(`bench/pxe_storm_client.py`: DHCP as a PXE ROM, TFTP loader, DHCP as iPXE, the HTTP script, "
        "kernel and initrd), against a stock stack (bare kea-dhcp4 + tftpd-hpa + nginx, static script) "
        "in the same namespace, rounds alternating. Network namespaces on one bridge; servers and clients "
        "share the same CPUs.",
        "",
        f"- command: `cd /work/main && .venv/bin/python bench/boot_storm_bench.py --clients {args.clients} "
        f"--rounds {args.rounds} --write docs/benchmarks.md`",
        f"- machine: {machine_line()}",
        f"- date: {started}; bench wall time {wall:.0f} s; load average before/after: {load[0]} / {load[1]}",
        f"- per machine: loader {sizes['loader']:,} B over TFTP (blksize 1432), kernel {sizes['kernel']:,} B "
        f"and initrd {sizes['initrd']:,} B over HTTP (the ephemeral image)",
        "",
        "| round | stack | all booted, s | booted | failed | per machine p50 / p95, s | "
        "dhcp / tftp / dhcp iPXE / script / images p50, s | MB/s |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for i, run in enumerate(runs):
        st = " / ".join(f"{run.stages[s]:.2f}" for s in STAGES) if run.stages else "-"
        lines.append(
            f"| {i // 2 + 1} | {run.stack} | {run.wall:.2f} | {run.booted} | {run.failed} | "
            f"{pct(run.per_machine, 0.5):.2f} / {pct(run.per_machine, 0.95):.2f} | {st} | "
            f"{run.bytes / run.wall / 1e6:,.0f} |"
        )
    mp = [r for r in runs if r.stack == "metalplane"]
    stock = [r for r in runs if r.stack == "stock"]
    ratio = statistics.median(r.wall for r in mp) / statistics.median(r.wall for r in stock)
    errors = sorted({e for r in runs for e in r.errors})
    lines += [
        "",
        f"- time to all booted, metalplane / stock (median of rounds): {ratio:.2f}; "
        f"failures: metalplane {sum(r.failed for r in mp)}, stock {sum(r.failed for r in stock)}"
        + (f" ({'; '.join(errors[:3])})" if errors else "")
        + ".",
        "- The stock stack serves one static script to everybody; metalplane asks the region for each "
        "unknown machine's script (RPC, then the region's database), as a real enlistment storm does: "
        "that is the `script` stage's difference.",
        "- The simulated machines are one Python process on the same 2 CPUs as the servers, so the "
        "absolute times are mostly the client's; compare the two stacks within a run.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--write", metavar="FILE", help="write the boot storm section into this markdown file")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("boot_storm_bench: needs root (network namespaces)", file=sys.stderr)
        return 2
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    t0 = time.monotonic()
    databases = TestDatabases()
    databases.start()
    runs: list[Run] = []
    try:
        with Lab() as lab:
            image = build_ephemeral(lab.new_workdir("mirror"), version="20261123.1")
            files = {f.ftype: image.out / f.path for f in image.files}
            kernel, initrd = files["boot-kernel"], files["boot-initrd"]
            sizes = {
                "loader": Path(f"/usr/lib/ipxe/{LOADER}").stat().st_size,
                "kernel": kernel.stat().st_size,
                "initrd": initrd.stat().st_size,
            }
            lab.add_network("storm", CIDR)
            region = lab.add_host("region", {"storm": f"{REGION}/16"})
            rack = lab.add_host("rack1", {"storm": f"{RACK}/16"})
            machines = lab.add_host("machines", {"storm": f"{MACHINES}/16"})
            stack = start_metalplane(lab, databases, image.out, region, rack)
            for round_no in range(args.rounds):
                if round_no:
                    stack.start_rack("rack1")
                    wait_until(lambda: kea_running(rack), 60, what="the rack's Kea")
                    time.sleep(3)
                raw = storm(machines, args.clients, f"52:54:{round_no:02x}:01")
                runs.append(summarise("metalplane", raw))
                print(f"round {round_no + 1} metalplane: {runs[-1]}", file=sys.stderr)
                stop_rack(stack)
                procs = start_stock(rack, lab.new_workdir("stock"), kernel, initrd)
                try:
                    raw = storm(machines, args.clients, f"52:54:{round_no:02x}:02")
                    runs.append(summarise("stock", raw))
                    print(f"round {round_no + 1} stock: {runs[-1]}", file=sys.stderr)
                finally:
                    for proc in procs:
                        rack.stop(proc, timeout=5)
    finally:
        databases.stop()
    load_after = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    section = report(runs, args, started, time.monotonic() - t0, sizes, (load_before, load_after))
    publish(section, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
