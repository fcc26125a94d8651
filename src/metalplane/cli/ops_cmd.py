"""`metalplane install-units` and `metalplane logs`: running a data dir like any other service."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from metalplane.cli.errors import CliError
from metalplane.embedded.daemons import systemd_running
from metalplane.embedded.units import SYSTEM_UNIT_DIR, unit_names

LOG_SOURCES = ("region", "rack", "dhcp", "db")


@dataclass(frozen=True)
class LogSource:
    what: str
    path: Path | None = None  # a file ...
    unit: str | None = None  # ... or a systemd unit's journal


def log_sources(data_dir: Path, wanted: list[str], systemd: bool) -> list[LogSource]:
    """Where each kind of log lives. Under systemd the daemons log to the journal; Kea always
    writes its own file under DATA/dhcp, and the embedded PostgreSQL without systemd to DATA/db."""
    names = unit_names(data_dir)
    sources = []
    for what in wanted or LOG_SOURCES:
        if what == "dhcp":
            sources += [LogSource("dhcp", path=p) for p in sorted((data_dir / "dhcp").glob("*/kea.log"))]
        elif systemd:
            unit = {"region": names.regiond, "rack": names.rackd, "db": names.postgresql}[what]
            sources.append(LogSource(what, unit=unit))
        else:
            path = {
                "region": data_dir / "log" / "regiond.log",
                "rack": data_dir / "log" / "rackd.log",
                "db": data_dir / "db" / "postgres.log",
            }[what]
            sources.append(LogSource(what, path=path))
    return sources


def log_commands(sources: list[LogSource], lines: int, follow: bool) -> list[list[str]]:
    """One `journalctl` for every unit, one `tail` for every file (both followed with -f)."""
    commands = []
    units = [s.unit for s in sources if s.unit]
    if units:
        commands.append(
            [
                "journalctl",
                "--no-pager",
                "-n",
                str(lines),
                *(["-f"] if follow else []),
                *(arg for unit in units for arg in ("-u", unit)),
            ]
        )
    files = [str(s.path) for s in sources if s.path is not None and (follow or s.path.exists())]
    if files:
        commands.append(["tail", "-n", str(lines), *(["-F"] if follow else []), *files])
    return commands


def _logs(args: argparse.Namespace) -> int:
    unknown = [w for w in args.what if w not in LOG_SOURCES]
    if unknown:
        raise CliError(f"unknown log {unknown[0]!r}; choose from {', '.join(LOG_SOURCES)}")
    data_dir = args.data_dir.resolve()
    sources = log_sources(data_dir, args.what, systemd_running())
    commands = log_commands(sources, args.lines, args.follow)
    if not commands:
        raise CliError(f"no {' or '.join(args.what or LOG_SOURCES)} logs in {data_dir}")
    if len(commands) == 1:
        sys.stdout.flush()
        os.execvp(commands[0][0], commands[0])
    procs = [subprocess.Popen(cmd) for cmd in commands]
    try:
        return max(p.wait() for p in procs)
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        return 130


def _install_units(args: argparse.Namespace) -> int:
    from metalplane.embedded.service_units import UnitsError, detected_units, install_units, write_data_dir_units

    data_dir = args.data_dir.resolve()
    try:
        units = detected_units(data_dir)
        write_data_dir_units(data_dir, units)
        lines = install_units(units, root=args.root, start=args.now)
    except (UnitsError, RuntimeError) as exc:
        raise CliError(str(exc)) from None
    for line in lines:
        print(line)
    if not systemd_running() and args.root == Path("/"):
        print("systemd is not running here; `metalplane init` keeps running the daemons itself until it is")
    return 0


def register(sub: argparse._SubParsersAction, data_dir_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("install-units", help=f"install and enable the data dir's systemd units in {SYSTEM_UNIT_DIR}")
    data_dir_arg(p)
    p.add_argument(
        "--root",
        type=Path,
        default=Path("/"),
        help="install under this root directory instead (an image being built; enabled offline)",
    )
    p.add_argument("--now", action="store_true", help="start them too (systemd must be running)")
    p.set_defaults(func=_install_units)

    p = sub.add_parser("logs", help="show a data dir's logs (the journal under systemd, else DATA/log/*.log)")
    data_dir_arg(p)
    p.add_argument("what", nargs="*", metavar="WHAT", help=f"any of {', '.join(LOG_SOURCES)} (default: all)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p.add_argument("-n", "--lines", type=int, default=50, help="lines to show from each (default 50)")
    p.set_defaults(func=_logs)
