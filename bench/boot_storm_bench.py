"""Boot storm: N simulated PXE machines (DHCP + TFTP + HTTP) on one rack, with and without
admission control, and against a stock stack.

    .venv/bin/python bench/boot_storm_bench.py [--clients 2000] [--admission on,off] [--rounds 2]
        [--shards 4] [--no-stock] [--write docs/benchmarks.md]

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

Per round: metalplane once per `--admission` mode (the rack restarted with its
rackd.conf caps: "on" = the defaults, 64 image transfers, 1,024 TFTP transfers, 64
GetBootConfig calls at once; "off" = 0, unlimited), then the stock stack (unless
`--no-stock`). Reported: machines booted, failures by cause, p50/p95/p99/max time to
booted, wall time, median per stage, the rack's admission counters (from its /metrics)
and the clients' CPU.

Adapted for thousands of machines: the pool is 10.90.1.1-10.90.15.254; the machines
are `--shards` client processes in the `machines` namespace (one CPU-bound Python
process cannot play 2,000); each machine sends TFTP and HTTP from its own leased
address (the namespace accepts the whole pool: `ip route add local ... dev lo`), and the
rack reaches the pool through the machines namespace's one address (a route, so the
rack keeps one neighbour entry: the kernel's neighbour table is global and 1,024 entries
by default, which 2,000 machines on one L2 would overflow).
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

from metalplane.config.files import read_yaml, write_yaml_atomic  # noqa: E402
from metalplane.config.rack import rack_config_path  # noqa: E402
from metalplane.images.build import build_ephemeral  # noqa: E402
from metalplane.rack.limits import raise_open_files_limit  # noqa: E402
from tests.support.databases import TestDatabases  # noqa: E402
from tests.support.netlab import Host, Lab, NetnsProcess  # noqa: E402
from tests.support.processes import wait_until  # noqa: E402
from tests.support.stack import Stack  # noqa: E402

CIDR, RACK, REGION, MACHINES = "10.90.0.0/16", "10.90.0.2", "10.90.0.10", "10.90.0.50"
POOL = ("10.90.1.1", "10.90.15.254")
POOL_NETS = ("10.90.1.0/24", "10.90.2.0/23", "10.90.4.0/22", "10.90.8.0/21")  # 10.90.1.0-10.90.15.255
LOADER = "undionly.kpxe"
STOCK_HTTP_PORT = 8080
CLIENT = REPO / "bench" / "pxe_storm_client.py"
SECTION = "## Boot storm"
STAGES = ("dhcp", "tftp", "dhcp_ipxe", "script", "images")
CAPS = {
    "on": {},  # rackd.conf defaults
    "off": {"boot_http_transfers_max": 0, "boot_tftp_transfers_max": 0, "boot_rpc_max": 0},
}
CAP_KEYS = ("boot_http_transfers_max", "boot_tftp_transfers_max", "boot_rpc_max")


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
    causes: dict[str, int]
    client_cpu: float
    http_retries: int
    rack: dict[str, float]
    round: int = 0


def storm(lab: Lab, machines: Host, clients: int, shards: int, mac_byte: int) -> dict:
    """`clients` machines over `shards` client processes started together; results merged."""
    start_at = time.time() + 2.0 + 0.5 * shards  # every process imported and listening by then
    procs, outs = [], []
    for shard in range(shards):
        n = clients // shards + (1 if shard < clients % shards else 0)
        out = lab.new_workdir(f"storm-{mac_byte:02x}-{shard}") / "result.json"
        outs.append(out)
        procs.append(
            machines.spawn(
                [
                    sys.executable,
                    str(CLIENT),
                    "--ifname",
                    machines.ifname("storm"),
                    "--clients",
                    str(n),
                    "--mac-prefix",
                    f"52:54:{mac_byte:02x}:{shard:02x}",
                    "--bind-leased",
                    "--start-at",
                    str(start_at),
                    "--out",
                    str(out),
                ]
            )
        )
    for proc in procs:
        if proc.wait(timeout=1200) != 0:
            raise RuntimeError(f"storm client failed: {proc.log()[-3000:]}")
    raws = [json.loads(out.read_text()) for out in outs]
    return {
        "wall": max(r["wall"] for r in raws),
        "cpu": sum(r["cpu"] for r in raws),
        "machines": [m for r in raws for m in r["machines"]],
    }


def cause(error: str) -> str:
    """A failure's kind: the exception type and the start of its message, digits dropped."""
    kind, _, text = error.partition(": ")
    return f"{kind}: {' '.join(w for w in text.split()[:5] if not any(c.isdigit() for c in w))}"


def summarise(stack: str, raw: dict, rack: dict[str, float] | None = None, round_no: int = 0) -> Run:
    ok = [m for m in raw["machines"] if not m["error"]]
    errors = sorted({m["error"] for m in raw["machines"] if m["error"]})
    causes: dict[str, int] = {}
    for m in raw["machines"]:
        if m["error"]:
            causes[cause(m["error"])] = causes.get(cause(m["error"]), 0) + 1
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
        causes,
        raw.get("cpu", 0.0),
        sum(m.get("http_retries", 0) for m in raw["machines"]),
        rack or {},
        round_no,
    )


METRICS = {
    "http_held": 'maas_rack_boot_admission_held_total{kind="http"}',
    "http_expired": 'maas_rack_boot_admission_expired_total{kind="http"}',
    "http_wait_p99": 'maas_rack_boot_admission_wait_seconds{kind="http",quantile="0.99"}',
    "tftp_held": 'maas_rack_boot_admission_held_total{kind="tftp"}',
    "tftp_expired": 'maas_rack_boot_admission_expired_total{kind="tftp"}',
    "rpc_held": 'maas_rack_boot_admission_held_total{kind="boot_config"}',
    "rpc_wait_p99": 'maas_rack_boot_admission_wait_seconds{kind="boot_config",quantile="0.99"}',
    "http_503": 'maas_rack_http_responses_total{status="503"}',
    "tftp_failed": 'maas_rack_tftp_transfers_total{result="failed"}',
}


def rack_counters(rack: Host) -> dict[str, float]:
    """The rack's admission counters since its start (it restarts for every metalplane storm)."""
    text = rack.run(["curl", "-s", f"http://{RACK}:5248/metrics"], check=False).stdout
    values = {}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        values[name] = value
    return {key: float(values.get(series, 0) or 0) for key, series in METRICS.items()}


# -- stack a: metalplane --------------------------------------------------------------


def set_caps(stack: Stack, mode: str) -> None:
    _, data_dir, _ = stack.racks["rack1"]
    path = rack_config_path(data_dir)
    data = {k: v for k, v in read_yaml(path).items() if k not in CAP_KEYS}
    write_yaml_atomic(path, {**data, **CAPS[mode]}, 0o640)


def rack_serving(stack: Stack) -> bool:
    rack_info = stack.api("rack-controllers", "read")[0]
    status = {s["name"]: (s["status"], s["status_info"]) for s in rack_info["service_set"]}
    return status["dhcpd"][0] == "running" and status["http"][0] == "running" and "image" in status["http"][1]


def start_metalplane(lab: Lab, databases: TestDatabases, image_dir: Path, region: Host, rack: Host, mode: str) -> Stack:
    stack = Stack(lab, databases)
    stack.start_region(region, "storm")
    stack.add_rack(rack, "rack1")
    set_caps(stack, mode)
    stack.start_rack("rack1")
    wait_until(lambda: len(stack.api("rack-controllers", "read")) == 1, 60, what="the rack")
    stack.import_image(image_dir)
    stack.serve_dhcp(CIDR, POOL[0], POOL[1], "rack1")
    wait_until(lambda: rack_serving(stack), 180, interval=1, what="the rack serving DHCP and the cached image")
    return stack


def restart_rack(stack: Stack, rack: Host, mode: str) -> None:
    stop_rack(stack)
    set_caps(stack, mode)
    stack.start_rack("rack1")
    wait_until(lambda: kea_running(rack), 60, what="the rack's Kea")
    wait_until(
        lambda: (
            rack.run(
                ["curl", "-sf", "-o", "/dev/null", f"http://{RACK}:5248/images/index.json"], check=False
            ).returncode
            == 0
        ),
        60,
        what="the rack's HTTP server",
    )
    time.sleep(3)


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
    command = (
        f"cd /work/main && flock /work/research/bench.lock .venv/bin/python bench/boot_storm_bench.py "
        f"--clients {args.clients} --admission {args.admission} --rounds {args.rounds} --shards {args.shards}"
        + (" --no-stock" if args.no_stock else "")
        + " --write docs/benchmarks.md"
    )
    lines = [
        SECTION,
        "",
        f"{args.clients} simulated PXE machines booting at once on one rack "
        "(`bench/pxe_storm_client.py`: DHCP as a PXE ROM, TFTP loader, DHCP as iPXE, the HTTP script, "
        "kernel and initrd; a 503 with Retry-After is waited out and retried, a TFTP ERROR fails the machine), "
        "metalplane with admission control on (rackd.conf defaults: 64 image transfers, 1,024 TFTP transfers, "
        "64 GetBootConfig calls at once) and off (all 0: unlimited)"
        + ("" if args.no_stock else ", and a stock stack (bare kea-dhcp4 + tftpd-hpa + nginx, static script)")
        + f". Network namespaces on one bridge; {args.shards} client processes, each machine from its own "
        "leased address; servers and clients share the same CPUs.",
        "",
        f"- command: `{command}`",
        f"- machine: {machine_line()}",
        f"- date: {started}; bench wall time {wall:.0f} s; load average before/after: {load[0]} / {load[1]}",
        f"- per machine: loader {sizes['loader']:,} B over TFTP (blksize 1432), kernel {sizes['kernel']:,} B "
        f"and initrd {sizes['initrd']:,} B over HTTP (the ephemeral image)",
        "",
        "| round | stack | booted | failed | time to booted p50 / p95 / p99 / max, s | all booted, s | "
        "dhcp / tftp / dhcp iPXE / script / images p50, s | MB/s | client CPU s |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        st = " / ".join(f"{run.stages[s]:.2f}" for s in STAGES) if run.stages else "-"
        pm = run.per_machine
        lines.append(
            f"| {run.round} | {run.stack} | {run.booted} | {run.failed} | "
            f"{pct(pm, 0.5):.2f} / {pct(pm, 0.95):.2f} / {pct(pm, 0.99):.2f} / {pct(pm, 1.0):.2f} | "
            f"{run.wall:.2f} | {st} | {run.bytes / run.wall / 1e6:,.0f} | {run.client_cpu:.0f} |"
        )
    lines += [
        "",
        "Rack counters per metalplane storm (the rack restarts for each; from its /metrics), failures by cause:",
        "",
        "| round | stack | HTTP held / expired (503 to retry) / p99 wait, s | TFTP held / expired | "
        "GetBootConfig held / p99 wait, s | HTTP 503 sent / machines' 503 retries | failures by cause |",
        "| ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for run in runs:
        r = run.rack
        causes = "; ".join(f"{n} x {c}" for c, n in sorted(run.causes.items(), key=lambda kv: -kv[1])) or "-"
        if r:
            lines.append(
                f"| {run.round} | {run.stack} | {r['http_held']:.0f} / {r['http_expired']:.0f} / "
                f"{r['http_wait_p99']:.1f} | {r['tftp_held']:.0f} / {r['tftp_expired']:.0f} | "
                f"{r['rpc_held']:.0f} / {r['rpc_wait_p99']:.1f} | {r['http_503']:.0f} / {run.http_retries} | {causes} |"
            )
        else:
            lines.append(f"| {run.round} | {run.stack} | - | - | - | - / {run.http_retries} | {causes} |")
    lines.append("")
    for stack in sorted({r.stack for r in runs}):
        mine = [r for r in runs if r.stack == stack]
        p99 = statistics.median(pct(r.per_machine, 0.99) for r in mine)
        lines.append(
            f"- {stack}: booted {sum(r.booted for r in mine)} of {sum(r.booted + r.failed for r in mine)}, "
            f"failures {sum(r.failed for r in mine)}, median p99 {p99:.2f} s over {len(mine)} round(s)."
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--admission", default="on,off", help="metalplane modes per round, in order: on, off")
    parser.add_argument("--shards", type=int, default=4, help="client processes playing the machines")
    parser.add_argument("--no-stock", action="store_true", help="skip the stock stack")
    parser.add_argument("--write", metavar="FILE", help="write the boot storm section into this markdown file")
    args = parser.parse_args()
    modes = [m.strip() for m in args.admission.split(",") if m.strip()]
    if not modes or any(m not in CAPS for m in modes):
        parser.error("--admission takes on, off or both (comma-separated)")
    if os.geteuid() != 0:
        print("boot_storm_bench: needs root (network namespaces)", file=sys.stderr)
        return 2
    raise_open_files_limit()
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
            for net in POOL_NETS:  # the machines accept the pool; the rack reaches it through them
                machines.run(["ip", "route", "add", "local", net, "dev", "lo"])
                rack.run(["ip", "route", "add", net, "via", MACHINES])
            stack = start_metalplane(lab, databases, image.out, region, rack, modes[0])
            for round_no in range(args.rounds):
                for mode in modes:
                    if runs or rack_down(stack):  # a fresh rack (and counters) for every storm
                        restart_rack(stack, rack, mode)
                    # The same machines every storm (a MAC keeps its lease: the pool holds 2 x 2,000).
                    raw = storm(lab, machines, args.clients, args.shards, 1)
                    runs.append(summarise(f"metalplane, admission {mode}", raw, rack_counters(rack), round_no + 1))
                    print(f"round {round_no + 1} {mode}: {runs[-1].booted} booted, {runs[-1].causes}", file=sys.stderr)
                if not args.no_stock:
                    stop_rack(stack)
                    procs = start_stock(rack, lab.new_workdir("stock"), kernel, initrd)
                    try:
                        raw = storm(lab, machines, args.clients, args.shards, 2)
                        runs.append(summarise("stock", raw, None, round_no + 1))
                        print(f"round {round_no + 1} stock: {runs[-1].booted} booted", file=sys.stderr)
                    finally:
                        for proc in procs:
                            rack.stop(proc, timeout=5)
    finally:
        databases.stop()
    load_after = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    section = report(runs, args, started, time.monotonic() - t0, sizes, (load_before, load_after))
    publish(section, args.write)
    return 0


def rack_down(stack: Stack) -> bool:
    proc = stack.racks["rack1"][2]
    return proc is None or proc.poll() is not None


if __name__ == "__main__":
    sys.exit(main())
