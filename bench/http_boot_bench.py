"""HTTP boot assets: metalplane's rack HTTP server against nginx on the same files, in one run.

    .venv/bin/python bench/http_boot_bench.py [--duration 4] [--rounds 5] [--with-starlette] [--write docs/benchmarks.md]

The files: a kernel-sized (8 MB) and an initrd-sized (40 MB) file of random bytes, put
into a real image cache by `ImageCache.sync` from a fake region. Servers, each its own
process on 127.0.0.1:

- metalplane: `python -m metalplane.rack.http --cache DIR` (uvloop, one process: what
  the rack daemon runs in-process), and the same with `--workers 2` (SO_REUSEPORT);
- nginx: `nginx -c CONF -g 'daemon off;'` with the config `metalplane.rack.http.nginx`
  generates (sendfile on, tcp_nopush, access_log off), serving the cache's symlink tree
  under the same URLs, with `worker_processes auto` (2 here) and with 1.

Load, for C = 1, 50, 200 concurrent clients (keep-alive connections):

1. wrk (C, 2 threads; 1 for C = 1; --timeout 60s) for `--duration` seconds; each
   thread's requests alternate kernel and initrd. MB/s counts every byte read (also of
   transfers cut by the end of the time box), req/s completed requests. Medians over the
   rounds (every round's value is listed); servers take turns, the first one rotating.
2. Boot storm (asyncio + uvloop client in this process; metalplane and nginx only): C machines start at once, each
   fetches kernel then initrd on one connection and reads to the end; the wall time until
   the last machine is done. MB/s = boots x 48 MB / that time. (A lone machine boots 10
   times in a row, else the cell lasts ~50 ms.)

`--with-starlette` adds, for the sustained-load table only, uvicorn (uvloop, httptools) with
a Starlette `FileResponse` on the same tree: the obvious Python alternative.

Server CPU is utime + stime of the server's processes (nginx master and workers,
metalplane parent and workers) over the cell, per GB sent.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import hashlib
import os
import platform
import re
import select
import shutil
import signal
import statistics
import string
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "src"), str(REPO)]  # metalplane, and the test house (tests.support)

from benchdoc import cpu_model, descendants, publish  # noqa: E402

from metalplane.rack.http.nginx import render_config  # noqa: E402
from metalplane.rack.images import ImageCache  # noqa: E402
from tests.support.fake_region_files import FakeRegionFiles, image  # noqa: E402

KERNEL_SIZE = 8 * 1000 * 1000
INITRD_SIZE = 40 * 1000 * 1000
BOOT_BYTES = KERNEL_SIZE + INITRD_SIZE
PATHS = (
    "/images/ephemeral/bookworm/amd64/generic/20261123/boot-kernel",
    "/images/ephemeral/bookworm/amd64/generic/20261123/boot-initrd",
)
CONCURRENCY = (1, 50, 200)
STORM_SERVERS = ("metalplane", "nginx")
TICK = os.sysconf("SC_CLK_TCK")

WRK_SCRIPT = string.Template("""
local i = 0
local paths = {"$first", "$second"}
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % 2) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d\\n", summary.requests, summary.bytes, summary.duration,
                         e.connect + e.read + e.write + e.status + e.timeout))
end
""").substitute(first=PATHS[0], second=PATHS[1])


# -- servers ------------------------------------------------------------------------------


class Server:
    def __init__(self, name: str, argv: list[str], port: int | None = None, ready_line: bool = True):
        self.name = name
        self.argv = argv
        self.port = port
        self.ready_line = ready_line
        self.proc: subprocess.Popen | None = None

    def start(self, log_dir: Path) -> None:
        log = open(log_dir / f"{self.name}.log", "wb")
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=log, start_new_session=True)
        log.close()
        if self.ready_line:
            ready, _, _ = select.select([self.proc.stdout], [], [], 20)
            if not ready:
                self.stop()
                raise RuntimeError(f"{self.name} did not start")
            line = self.proc.stdout.readline().decode()
            assert line.startswith("ready "), line
            self.port = int(line.split()[2])
        else:
            deadline = time.monotonic() + 10
            while True:
                try:
                    import socket

                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or self.proc.poll() is not None:
                        self.stop()
                        raise RuntimeError(f"{self.name} did not start") from None
                    time.sleep(0.05)

    def pids(self) -> list[int]:
        return [self.proc.pid, *descendants(self.proc.pid)] if self.proc else []

    def cpu(self) -> float:
        total = 0.0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / TICK
            except (OSError, IndexError, ValueError):
                pass
        return total

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # our own process, by PID
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


STARLETTE_APP = """
import os
from starlette.applications import Starlette
from starlette.responses import FileResponse
from starlette.routing import Route
TREE = os.environ["MP_BENCH_TREE"]
async def serve(request):
    return FileResponse(os.path.join(TREE, request.url.path.lstrip("/")))
app = Starlette(routes=[Route("/images/{rest:path}", serve)])
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- load ---------------------------------------------------------------------------------


@dataclass
class Cell:
    load: str  # "wrk" | "storm"
    clients: int
    server: str
    mbps: float
    rps: float  # wrk: completed requests/s; storm: machines booted/s
    errors: int
    cpu_ms_per_gb: float | None
    seconds: float = 0.0  # storm: wall time


def run_wrk(port: int, clients: int, duration: float, script: Path) -> tuple[int, int, float, int]:
    threads = 1 if clients == 1 else 2
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(clients),
            "-d",
            f"{max(1, round(duration))}s",
            "--timeout",
            "60s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        timeout=duration + 120,
    )
    m = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+)", out.stdout)
    if not m:
        raise RuntimeError(f"wrk output not understood: {out.stdout} {out.stderr}")
    requests, nbytes, micros, errors = map(int, m.groups())
    return requests, nbytes, micros / 1e6, errors


def boots_per_machine(machines: int) -> int:
    """One boot each, except that a lone machine boots 10 times in a row (else ~50 ms of work)."""
    return max(1, 10 // machines)


async def storm(port: int, machines: int) -> tuple[float, int, int]:
    """(seconds until every machine has kernel + initrd, bytes, errors)."""
    repeat = boots_per_machine(machines)
    errors = 0
    total = 0
    gate = asyncio.Event()

    async def machine() -> None:
        nonlocal errors, total
        await gate.wait()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
            try:
                for path in PATHS * repeat:
                    writer.write(f"GET {path} HTTP/1.1\r\nHost: rack\r\n\r\n".encode())
                    head = await reader.readuntil(b"\r\n\r\n")
                    if not head.startswith(b"HTTP/1.1 200"):
                        raise RuntimeError(head[:40])
                    length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
                    left = length
                    while left:
                        chunk = await reader.read(min(left, 1 << 20))
                        if not chunk:
                            raise ConnectionError("closed early")
                        left -= len(chunk)
                    total += length
            finally:
                writer.close()
        except (OSError, RuntimeError, asyncio.IncompleteReadError):
            errors += 1

    tasks = [asyncio.ensure_future(machine()) for _ in range(machines)]
    await asyncio.sleep(0.05)
    started = time.monotonic()
    gate.set()
    await asyncio.gather(*tasks)
    return time.monotonic() - started, total, errors


async def fetch_check(port: int, want: dict[str, str]) -> None:
    """Every server must serve the right bytes before it is measured."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    try:
        for path in PATHS:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: rack\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
            digest = hashlib.sha256(await reader.readexactly(length)).hexdigest()
            if digest != want[path]:
                raise RuntimeError(f"port {port} served wrong bytes for {path}")
    finally:
        writer.close()


def measure(server: Server, load: str, clients: int, duration: float, script: Path) -> Cell:
    cpu0 = server.cpu()
    if load == "wrk":
        requests, nbytes, seconds, errors = run_wrk(server.port, clients, duration, script)
        cpu = server.cpu() - cpu0
        gb = nbytes / 1e9
        return Cell(
            load,
            clients,
            server.name,
            nbytes / 1e6 / seconds,
            requests / seconds,
            errors,
            cpu * 1000 / gb if gb else None,
        )
    import uvloop

    seconds, nbytes, errors = uvloop.run(storm(server.port, clients))
    cpu = server.cpu() - cpu0
    gb = nbytes / 1e9
    boots = clients * boots_per_machine(clients)
    return Cell(
        load,
        clients,
        server.name,
        boots * BOOT_BYTES / 1e6 / seconds,
        boots / seconds,
        errors,
        cpu * 1000 / gb if gb else None,
        seconds,
    )


# -- report -------------------------------------------------------------------------------


def machine() -> tuple[str, str]:
    return (
        f"{os.cpu_count()} CPUs (nproc), {cpu_model()}",
        f"Linux {platform.release()}, Python {platform.python_version()}",
    )


def version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=5)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def report(runs: dict[tuple, list[Cell]], args, started: str, load: tuple[str, str], wall: float) -> str:
    cpu, system = machine()
    starlette = any(key[2] == "starlette" for key in runs)

    def med(load_: str, n: int, server: str, attr: str = "mbps") -> float | None:
        cells = runs.get((load_, n, server))
        if not cells:
            return None
        return median([getattr(c, attr) or 0.0 for c in cells])

    def paired(load_: str, n: int, a: str = "metalplane", b: str = "nginx") -> float | None:
        """Median over rounds of a/b, each round's two cells measured back to back."""
        xs, ys = runs.get((load_, n, a), []), runs.get((load_, n, b), [])
        ratios = [x.mbps / y.mbps for x, y in zip(xs, ys) if y.mbps]
        return median(ratios) if ratios else None

    def fmt(value: float | None, spec: str = ",.0f") -> str:
        return "n/a" if value is None else format(value, spec)

    def errors(load_: str, n: int, server: str) -> int:
        return sum(c.errors for c in runs.get((load_, n, server), []))

    lines = [
        "## HTTP boot assets",
        "",
        "metalplane's rack HTTP server (`python -m metalplane.rack.http --cache DIR`, raw asyncio sockets",
        "on uvloop, `os.sendfile`) against nginx on the same two files in one image cache: kernel-sized",
        "8 MB and initrd-sized 40 MB, under the same URLs (nginx serves the cache's symlink tree with",
        "the config `metalplane.rack.http.nginx.render_config` writes: sendfile on, tcp_nopush on,",
        "access_log off). Everything on 127.0.0.1; servers and clients share the same CPUs.",
        "",
        f"- command: `cd /work/main && .venv/bin/python bench/http_boot_bench.py --duration {args.duration:g} "
        f"--rounds {args.rounds}{' --with-starlette' if starlette else ''} --write docs/benchmarks.md`",
        f"- machine: {cpu}; {system}",
        f"- nginx: {version(['nginx', '-v'])}; wrk: {version(['wrk', '-v'])}",
        f"- date: {started}; bench wall time {wall:.0f} s; load average before/after: {load[0]} / {load[1]}",
        "- metalplane = one process (what the rack daemon runs in-process); `mp 2w` = `--workers 2`;",
        "  nginx = `worker_processes auto` (2 here); `nginx 1w` = `worker_processes 1`.",
        f"- {args.rounds} rounds; in each, every server gets the same cell back to back (the first one",
        "  rotating). Values are medians over the rounds; ratio = median over rounds of metalplane / nginx",
        "  (auto) measured in the same round. MB = 10^6 bytes.",
        "",
        f"### Sustained load (wrk, keep-alive, kernel and initrd alternating; {args.duration:g} s per cell)",
        "",
        "| clients | metalplane MB/s | nginx MB/s | ratio | metalplane req/s | nginx req/s | mp 2w MB/s | "
        "mp 2w ratio | nginx 1w MB/s | server CPU ms/GB mp / nginx | errors mp / nginx |"
        + (" starlette MB/s | starlette CPU ms/GB |" if starlette else ""),
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        + (" ---: | ---: |" if starlette else ""),
    ]
    ratios: list[tuple[str, int, float]] = []
    for n in CONCURRENCY:
        if not runs.get(("wrk", n, "metalplane")):
            continue
        r = paired("wrk", n)
        if r is not None:
            ratios.append(("wrk", n, r))
        lines.append(
            f"| {n} | {fmt(med('wrk', n, 'metalplane'))} | {fmt(med('wrk', n, 'nginx'))} | {fmt(r, '.2f')} | "
            f"{fmt(med('wrk', n, 'metalplane', 'rps'), '.1f')} | {fmt(med('wrk', n, 'nginx', 'rps'), '.1f')} | "
            f"{fmt(med('wrk', n, 'mp-2w'))} | {fmt(paired('wrk', n, 'mp-2w'), '.2f')} | "
            f"{fmt(med('wrk', n, 'nginx-1w'))} | {fmt(med('wrk', n, 'metalplane', 'cpu_ms_per_gb'))} / "
            f"{fmt(med('wrk', n, 'nginx', 'cpu_ms_per_gb'))} | {errors('wrk', n, 'metalplane')} / "
            f"{errors('wrk', n, 'nginx')} |"
            + (
                f" {fmt(med('wrk', n, 'starlette'))} | {fmt(med('wrk', n, 'starlette', 'cpu_ms_per_gb'))} |"
                if starlette
                else ""
            )
        )
    lines += [
        "",
        "### Boot storm (C machines at once, each kernel then initrd on one connection, asyncio client; "
        "1 machine: 10 boots in a row)",
        "",
        "| machines | metalplane s | nginx s | metalplane MB/s | nginx MB/s | ratio | metalplane boots/s | "
        "nginx boots/s | server CPU ms/GB mp / nginx | errors mp / nginx |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n in CONCURRENCY:
        if not runs.get(("storm", n, "metalplane")):
            continue
        r = paired("storm", n)
        if r is not None:
            ratios.append(("storm", n, r))
        lines.append(
            f"| {n} | {fmt(med('storm', n, 'metalplane', 'seconds'), '.2f')} | "
            f"{fmt(med('storm', n, 'nginx', 'seconds'), '.2f')} | {fmt(med('storm', n, 'metalplane'))} | "
            f"{fmt(med('storm', n, 'nginx'))} | {fmt(r, '.2f')} | {fmt(med('storm', n, 'metalplane', 'rps'), '.1f')} | "
            f"{fmt(med('storm', n, 'nginx', 'rps'), '.1f')} | {fmt(med('storm', n, 'metalplane', 'cpu_ms_per_gb'))} / "
            f"{fmt(med('storm', n, 'nginx', 'cpu_ms_per_gb'))} | {errors('storm', n, 'metalplane')} / "
            f"{errors('storm', n, 'nginx')} |"
        )
    values = [r for _, _, r in ratios]
    lines += [
        "",
        "### Summary and notes",
        "",
        f"- metalplane/nginx throughput ratio (median of paired rounds): {min(values):.2f} to {max(values):.2f} "
        f"over {len(values)} cells ({'; '.join(f'{ld} {n}: {r:.2f}' for ld, n, r in ratios)}).",
        "- Both servers hand the bytes to the kernel with sendfile, so on loopback the cost is the kernel's",
        "  copy into the receiving socket and the clients' reads, on the same 2 CPUs: the server's own",
        "  work per request (parse, open, fstat against the cache's fingerprint, one header write) is",
        "  small next to 8-40 MB of body. Server CPU per GB counts the sender's side of loopback TCP too.",
        "- The machine is shared with other work (see the load average), which moves single cells by a",
        "  factor of 2 or more (every round's value is listed below); hence medians and paired ratios.",
    ]
    if starlette:
        lines += [
            "- The Starlette column is uvicorn + `FileResponse`, the obvious Python alternative: without",
            "  the ASGI pathsend extension (uvicorn has none) it reads the file in 64 KB chunks in a thread",
            "  and writes them through the event loop, so every byte is copied through Python.",
        ]
    lines += [
        "- Every server's bytes are checked (sha256 of both files) before it is measured. wrk counts",
        "  bytes of transfers cut at the end of the time box, so MB/s is the measure there; with 200",
        "  clients few of the 48 MB pairs complete within a cell, which is what the boot storm measures.",
        "",
        "Every round (MB/s, in round order):",
        "",
    ]
    for load_ in ("wrk", "storm"):
        for n in CONCURRENCY:
            parts = [
                f"{name} " + "/".join(f"{c.mbps:.0f}" for c in runs[(load_, n, name)])
                for name in ("metalplane", "nginx", "mp-2w", "nginx-1w", "starlette")
                if runs.get((load_, n, name))
            ]
            if parts:
                lines.append(f"- {load_} {n}: " + "; ".join(parts))
    return "\n".join(lines) + "\n"


# -- main ---------------------------------------------------------------------------------


async def build_cache(cache_dir: Path) -> dict[str, str]:
    region = FakeRegionFiles()
    kernel, initrd = os.urandom(KERNEL_SIZE), os.urandom(INITRD_SIZE)
    files = {"boot-kernel": region.add(kernel), "boot-initrd": region.add(initrd)}
    await region.start()
    cache = ImageCache(cache_dir)
    cache.load()
    try:
        result = await cache.sync({"images": [image("ephemeral/bookworm", "20261123", files)]}, [region.url])
        assert result.ok, result.failed
    finally:
        await cache.close()
        await region.stop()
    return {PATHS[0]: files["boot-kernel"]["sha256"], PATHS[1]: files["boot-initrd"]["sha256"]}


def main() -> int:
    global CONCURRENCY
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=4, help="seconds of wrk load per server per cell")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; medians are reported, and every round's value")
    parser.add_argument("--quick", action="store_true", help="1 and 50 clients only")
    parser.add_argument(
        "--with-starlette", action="store_true", help="also uvicorn + Starlette FileResponse (sustained load only)"
    )
    parser.add_argument("--write", metavar="FILE", help="write the HTTP boot assets section into this file")
    args = parser.parse_args()
    if args.quick:
        CONCURRENCY = (1, 50)
    for tool in ("nginx", "wrk"):
        if not shutil.which(tool):
            print(
                f"{tool} not found (apt-get install -y {'nginx-light' if tool == 'nginx' else tool})", file=sys.stderr
            )
            return 2
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    t0 = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="mp-http-bench-"))
    root.chmod(0o755)  # nginx workers run as nobody
    servers: list[Server] = []
    try:
        import uvloop

        want = uvloop.run(build_cache(root / "cache"))
        script = root / "boot.lua"
        script.write_text(WRK_SCRIPT)
        os.environ["PYTHONPATH"] = str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")
        mp_cmd = [
            sys.executable,
            "-m",
            "metalplane.rack.http",
            "--cache",
            str(root / "cache"),
            "--listen",
            "127.0.0.1:0",
        ]
        servers = [Server("metalplane", mp_cmd), Server("mp-2w", mp_cmd + ["--workers", "2"])]
        for name, workers in (("nginx", "auto"), ("nginx-1w", "1")):
            prefix = root / name
            prefix.mkdir()
            port = free_port()
            conf = prefix / "nginx.conf"
            conf.write_text(
                render_config(root / "cache", listen=f"127.0.0.1:{port}", worker_processes=workers, prefix_dir=prefix)
            )
            servers.append(
                Server(
                    name,
                    ["nginx", "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
                    port=port,
                    ready_line=False,
                )
            )
        if args.with_starlette:
            (root / "mp_bench_app.py").write_text(STARLETTE_APP)
            os.environ["PYTHONPATH"] = str(root) + os.pathsep + os.environ["PYTHONPATH"]
            os.environ["MP_BENCH_TREE"] = str(root / "cache" / "tree")
            port = free_port()
            servers.append(
                Server(
                    "starlette",
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        "mp_bench_app:app",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--loop",
                        "uvloop",
                        "--http",
                        "httptools",
                        "--log-level",
                        "warning",
                        "--no-access-log",
                    ],
                    port=port,
                    ready_line=False,
                )
            )
        for server in servers:
            server.start(root)
            uvloop.run(fetch_check(server.port, want))  # right bytes, and warms the page cache
        plan = [(load, n) for load in ("wrk", "storm") for n in CONCURRENCY]
        runs: dict[tuple, list[Cell]] = {}
        for round_ in range(args.rounds):
            for i, (load, n) in enumerate(plan):
                targets = [s for s in servers if load == "wrk" or s.name in STORM_SERVERS]
                k = (i + round_) % len(targets)
                for server in targets[k:] + targets[:k]:
                    cell = measure(server, load, n, args.duration, script)
                    runs.setdefault((load, n, server.name), []).append(cell)
                    print(
                        f"round {round_ + 1} {load:5} {n:3} {server.name:11} {cell.mbps:8.0f} MB/s "
                        f"{cell.rps:7.1f}/s errors {cell.errors} cpu {cell.cpu_ms_per_gb or 0:.0f} ms/GB",
                        flush=True,
                    )
        load_after = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        section = report(runs, args, started, (load_before, load_after), time.monotonic() - t0)
        publish(section, args.write)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
