"""A TFTP flood against the rack's TFTP server, and what a real client sees meanwhile.

    .venv/bin/python bench/tftp_flood_bench.py [--before-src DIR] [--write docs/benchmarks.md]

The server: `python -m metalplane.rack.tftp` (the rack's server with the rack's default
limits, sized from this process's RLIMIT_NOFILE) on 127.0.0.1, serving iPXE's
undionly.kpxe. The flood (`tests.support.tftp_flood`): 14,000 read requests asking
`timeout=255`, never acknowledged, paced at 800/s,

- "one address": from one socket on 127.0.0.2 (issue 12's attack);
- "64 addresses": from 64 sockets on 127.0.1.1-64, taking turns (what a spoofed flood
  looks like: the per-client limit does not stop it, the global limit must).

Meanwhile curl fetches the loader from 127.0.0.1 again and again (before, during, and
after the flood); reported: its fetch times and failures, the descriptors the server
holds at the flood's peak (/proc/PID/fd), and the transfers it started for the flood.

`--before-src DIR`: also run the server from another source tree (e.g. a checkout of
main before the limits) with the same flood, for the before/after table. Needs no
network namespace: everything is on 127.0.0.0/8.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "src"), str(REPO)]  # metalplane, and the test house (tests.support)

from benchdoc import cpu_model, publish  # noqa: E402

from metalplane.rack.limits import budget, current_nofile  # noqa: E402
from tests.support import pythonpath_env  # noqa: E402

LOADER = Path("/usr/lib/ipxe/undionly.kpxe")
FLOOD = 14000
RATE = 800
SCENARIOS = {"one address": ["127.0.0.2"], "64 addresses": [f"127.0.1.{i}" for i in range(1, 65)]}


@dataclass
class Run:
    code: str
    scenario: str
    fetches: dict[str, list[float]] = field(default_factory=lambda: {"before": [], "during": [], "after": []})
    failures: dict[str, int] = field(default_factory=lambda: {"before": 0, "during": 0, "after": 0})
    peak_fds: int = 0
    flood: dict = field(default_factory=dict)
    limits_line: str = ""


def start_server(src: Path, root: Path, log) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "metalplane.rack.tftp", "--root", str(root), "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=log,
        env=env,
    )
    line = proc.stdout.readline().decode()
    if not line.startswith("ready "):
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, int(line.split()[2])


def fetch(port: int, out: Path) -> float | None:
    t0 = time.monotonic()
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "30",
            "--tftp-blksize",
            "1468",
            "-o",
            str(out),
            f"tftp://127.0.0.1:{port}/undionly.kpxe",
        ],
        capture_output=True,
    )
    if done.returncode != 0 or out.read_bytes() != LOADER.read_bytes():
        return None
    return time.monotonic() - t0


def fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def run(code: str, src: Path, scenario: str, workdir: Path) -> Run:
    result = Run(code, scenario)
    root = workdir / "root"
    root.mkdir(exist_ok=True)
    shutil.copyfile(LOADER, root / "undionly.kpxe")
    log_path = workdir / f"server-{code}-{scenario.replace(' ', '-')}.log"
    with open(log_path, "wb") as log:
        proc, port = start_server(src, root, log)
    out = workdir / "fetched"
    try:

        def sample(phase: str, count: int) -> None:
            for _ in range(count):
                took = fetch(port, out)
                if took is None:
                    result.failures[phase] += 1
                else:
                    result.fetches[phase].append(took)

        sample("before", 5)
        flood = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.tftp_flood",
                "--server",
                "127.0.0.1",
                "--port",
                str(port),
                "--count",
                str(FLOOD),
                "--rate",
                str(RATE),
                "--hold",
                "5",
                *[f"--source={a}" for a in SCENARIOS[scenario]],
            ],
            stdout=subprocess.PIPE,
            env={**os.environ, **pythonpath_env()},
        )
        watching = True

        def watch() -> None:
            while watching:
                result.peak_fds = max(result.peak_fds, fds(proc.pid))
                time.sleep(0.1)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        time.sleep(1)
        while flood.poll() is None:
            sample("during", 1)
            time.sleep(0.5)
        watching = False
        watcher.join()
        result.flood = json.loads(flood.stdout.read().decode().strip().splitlines()[-1])
        sample("after", 5)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for line in log_path.read_text(errors="replace").splitlines():
        if "limits: " in line:
            result.limits_line = line.split("limits: ", 1)[1]
    return result


def cell(times: list[float], failures: int) -> str:
    if not times:
        return f"all {failures} failed"
    text = f"{statistics.median(times) * 1000:.0f} / {max(times) * 1000:.0f} ms"
    return text + (f", {failures} failed" if failures else "")


def report(runs: list[Run], before_label: str, args) -> str:
    nofile = current_nofile()
    b = budget(nofile)
    lines = [
        "## TFTP flood",
        "",
        f"- date: {datetime.date.today()}, {cpu_model()}, {os.cpu_count()} CPUs (shared), Linux "
        f"{platform.release()}, RLIMIT_NOFILE {nofile}",
        "- command: `.venv/bin/python bench/tftp_flood_bench.py"
        + (f" --before-src SRC --before-label '{before_label}'" if args.before_src else "")
        + " --write docs/benchmarks.md`"
        + (f" (SRC: the src/ of a checkout of {before_label})" if args.before_src else ""),
        f"- flood: {FLOOD:,} RRQs with `timeout=255`, never acknowledged, {RATE}/s, from one socket on one "
        "address or from 64 addresses taking turns; the real client: curl fetching undionly.kpxe "
        f"({LOADER.stat().st_size:,} bytes) from another address, again and again",
        f"- limits now, at this RLIMIT_NOFILE (`rack.limits.budget`): {b.tftp.total:,} TFTP transfers "
        f"({b.tftp.per_client} per client address), {b.http.total:,} HTTP connections "
        f"({b.http.per_client} per client), {b.reserve} descriptors kept for the rest of the rack. "
        f"At 1,024 (a common default soft limit, raised to the hard limit by the rack at start when it can): "
        f"{budget(1024).tftp.total} transfers ({budget(1024).tftp.per_client} per client); at 524,288: "
        f"{budget(524288).tftp.total:,} (the memory cap).",
        "",
        "| code | flood from | curl before (median / max) | during | after | flood transfers started | "
        "server descriptors at peak | server's limits |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in runs:
        label = before_label if r.code == "before" else "this branch"
        errors = ", ".join(f'{n} "{m}"' for m, n in r.flood.get("errors", {}).items())
        lines.append(
            f"| {label} | {r.scenario} | {cell(r.fetches['before'], r.failures['before'])} | "
            f"{cell(r.fetches['during'], r.failures['during'])} | {cell(r.fetches['after'], r.failures['after'])} | "
            f"{r.flood.get('transfers_started', 0):,}{' (' + errors + ')' if errors else ''} | "
            f"{r.peak_fds:,} of {nofile:,} | {r.limits_line or 'none'} |"
        )
    lines += [
        "",
        "Notes:",
        '- "during" fetches start 1 s into the flood and repeat until it ends (~18 s); a failed fetch is '
        "curl giving up (30 s) or a wrong file.",
        "- The per-client limit drops a flooding address's packets unanswered (cheap: no socket, no file); "
        "the global limit first abandons transfers no ACK has reached for 1 s (a spoofed or silent "
        "requester), so a real client still gets in; the server retransmits after at most 5 s and gives a "
        "transfer up after 15 s without an ACK, whatever `timeout` the request asked for.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--before-src", metavar="DIR", help="the src/ directory of another tree to run the server from, for comparison"
    )
    parser.add_argument("--before-label", default="before", help="its name in the table (e.g. a commit)")
    parser.add_argument(
        "--scenario", choices=sorted(SCENARIOS), action="append", help="run only these scenarios (default: all)"
    )
    parser.add_argument("--write", metavar="FILE", help="write the section into this markdown file")
    args = parser.parse_args()
    if not LOADER.exists() or not shutil.which("curl"):
        raise SystemExit(f"needs {LOADER} (ipxe) and curl")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # as the rack and the server do
    runs = []
    with tempfile.TemporaryDirectory(prefix="mp-tftp-flood-") as tmp:
        for scenario in args.scenario or list(SCENARIOS):
            trees = [("before", Path(args.before_src))] if args.before_src else []
            for code, src in [*trees, ("after", REPO / "src")]:
                print(f"{code} / {scenario} ...", flush=True)
                workdir = Path(tmp) / f"{code}-{scenario.replace(' ', '-')}"
                workdir.mkdir()
                runs.append(run(code, src, scenario, workdir))
                print("  ", runs[-1], flush=True)
    publish(report(runs, args.before_label, args), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
