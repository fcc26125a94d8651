"""systemd units for a data dir: rendered by pure functions, read back by the same module.

Three services, named after the data dir (plain names for the default one):

    metalplane-postgresql.service   the embedded PostgreSQL (only when the data dir has db/)
    metalplane-regiond.service      `metalplane region run` (the supervisor and its workers)
    metalplane-rackd.service        `metalplane rack run`

The files are written to DATA/units/ whatever runs the host, and installed
into /etc/systemd/system when systemd does. Without systemd the keeper
(embedded/keeper.py) runs the same files, honouring the directives below, so
one text decides how a daemon starts, restarts and stops.

Stop timeouts: the region supervisor gives its workers 10 s and uvicorn 5 s
more; the rack first lets in-flight power actions finish (up to
rack.daemon.POWER_DRAIN seconds, the runner's own action timeout and grace
inside it), then stops Kea (SIGTERM, 5 s, SIGKILL). KillMode=mixed sends the
stop signal to the main process only (it stops its children itself) and
SIGKILL to every process left when the timeout expires.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from metalplane.config.region import DEFAULT_DATA_DIR

SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
UNITS_SUBDIR = "units"
REGION_STOP_TIMEOUT = 30
RACK_STOP_TIMEOUT = 120
POSTGRES_STOP_TIMEOUT = 120
RESTART_SEC = 2
# systemd gives up on a unit that starts more than BURST times in INTERVAL seconds.
START_LIMIT_INTERVAL = 120
START_LIMIT_BURST = 10
NETWORK = "network-online.target"
_SAFE_ARG = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


@dataclass(frozen=True)
class Unit:
    name: str
    description: str
    exec_start: tuple[str, ...]
    service_type: str = "simple"
    after: tuple[str, ...] = ()
    wants: tuple[str, ...] = ()
    user: str | None = None
    restart: str = "on-failure"
    restart_sec: int = RESTART_SEC
    timeout_stop_sec: int = REGION_STOP_TIMEOUT
    kill_mode: str = "mixed"
    kill_signal: str = "SIGTERM"
    environment: tuple[tuple[str, str], ...] = (("PYTHONUNBUFFERED", "1"),)
    exec_reload: str = ""  # as written: systemd expands $MAINPID in it
    extra_service: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True)
class UnitNames:
    postgresql: str
    regiond: str
    rackd: str


def systemd_escape_path(path: Path) -> str:
    """`systemd-escape --path`: slashes become dashes, anything unusual `\\xNN`."""
    text = str(path).strip("/") or "-"
    out = []
    for i, ch in enumerate(text):
        if ch == "/":
            out.append("-")
        elif (ch.isascii() and (ch.isalnum() or ch in ":_.")) and not (ch == "." and i == 0):
            out.append(ch)
        else:
            out.extend(f"\\x{b:02x}" for b in ch.encode())
    return "".join(out)


def unit_names(data_dir: Path) -> UnitNames:
    """Plain names for the default data dir; others carry their escaped path, so several coexist."""
    suffix = "" if Path(data_dir) == DEFAULT_DATA_DIR else "-" + systemd_escape_path(Path(data_dir))
    return UnitNames(*(f"metalplane-{what}{suffix}.service" for what in ("postgresql", "regiond", "rackd")))


def quote_arg(arg: str) -> str:
    """One ExecStart word as systemd reads it: `%` and `$` doubled, quoted when needed."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if _SAFE_ARG.fullmatch(arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_unit(unit: Unit) -> str:
    lines = [
        "# Written by metalplane (`metalplane install-units`); changes are overwritten.",
        "[Unit]",
        "Description=" + unit.description.replace("%", "%%"),
    ]
    if unit.wants:
        lines.append("Wants=" + " ".join(unit.wants))
    if unit.after:
        lines.append("After=" + " ".join(unit.after))
    lines += [
        f"StartLimitIntervalSec={START_LIMIT_INTERVAL}",
        f"StartLimitBurst={START_LIMIT_BURST}",
        "",
        "[Service]",
        f"Type={unit.service_type}",
    ]
    if unit.user:
        lines.append(f"User={unit.user}")
    for key, value in unit.environment:
        lines.append(f"Environment={quote_arg(f'{key}={value}')}")
    lines.append("ExecStart=" + " ".join(quote_arg(a) for a in unit.exec_start))
    if unit.exec_reload:
        lines.append(f"ExecReload={unit.exec_reload}")
    lines += [
        f"Restart={unit.restart}",
        f"RestartSec={unit.restart_sec}",
        f"TimeoutStopSec={unit.timeout_stop_sec}",
        f"KillMode={unit.kill_mode}",
        f"KillSignal={unit.kill_signal}",
    ]
    lines += [f"{key}={value}" for key, value in unit.extra_service]
    lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A unit file's sections -> key -> every value given (in order), as systemd reads them."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        if current is None or "=" not in line:
            raise ValueError(f"not a unit file line: {raw!r}")
        key, value = line.split("=", 1)
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def split_command(value: str) -> list[str]:
    """An ExecStart= value -> argv (the quoting `quote_arg` writes; `%%` and `$$` undone)."""
    if value[:1] in "-@+!:":
        raise ValueError(f"ExecStart prefixes are not supported here: {value!r}")
    return [word.replace("%%", "%").replace("$$", "$") for word in shlex.split(value)]


def environment(values: Iterable[str]) -> dict[str, str]:
    env = {}
    for value in values:
        for word in split_command(value):
            key, _, val = word.partition("=")
            env[key] = val
    return env


def metalplane_command(python: str, *args: str) -> tuple[str, ...]:
    return (python, "-m", "metalplane", *args)


def postgres_unit(names: UnitNames, data_dir: Path, pg_bin: Path, owner: str) -> Unit:
    return Unit(
        name=names.postgresql,
        description=f"metalplane's embedded PostgreSQL ({data_dir}/db)",
        # postgres is built with sd_notify support on Debian: it says when it accepts connections.
        service_type="notify",
        exec_start=(str(pg_bin / "postgres"), "-D", str(data_dir / "db" / "data")),
        exec_reload="/bin/kill -HUP $MAINPID",
        after=("network.target",),
        user=owner,
        timeout_stop_sec=POSTGRES_STOP_TIMEOUT,
        kill_signal="SIGINT",  # PostgreSQL's fast shutdown: roll back open transactions, checkpoint, exit
        environment=(),
        extra_service=(("TimeoutStartSec", "300"), ("OOMScoreAdjust", "-900")),
    )


def region_unit(names: UnitNames, data_dir: Path, python: str, embedded_db: bool) -> Unit:
    deps = (NETWORK, names.postgresql) if embedded_db else (NETWORK,)
    return Unit(
        name=names.regiond,
        description=f"metalplane region controller ({data_dir})",
        exec_start=metalplane_command(python, "region", "run", "--config", str(data_dir / "regiond.conf")),
        wants=deps,
        after=deps,
        timeout_stop_sec=REGION_STOP_TIMEOUT,
    )


def rack_unit(names: UnitNames, data_dir: Path, python: str, with_region: bool) -> Unit:
    # A rack works without any region ("degraded, not dead"), so the local region is only ordered before it.
    return Unit(
        name=names.rackd,
        description=f"metalplane rack controller ({data_dir})",
        exec_start=metalplane_command(python, "rack", "run", "--data-dir", str(data_dir)),
        wants=(NETWORK,),
        after=(NETWORK, names.regiond) if with_region else (NETWORK,),
        timeout_stop_sec=RACK_STOP_TIMEOUT,
    )


def units_for(
    data_dir: Path,
    python: str,
    *,
    region: bool,
    rack: bool,
    embedded_db: bool,
    pg_bin: Path | None = None,
    pg_owner: str = "postgres",
) -> list[Unit]:
    """Every unit a data dir needs, in start order."""
    names = unit_names(data_dir)
    units = []
    if region and embedded_db:
        if pg_bin is None:
            raise ValueError("the embedded PostgreSQL's unit needs the PostgreSQL binaries' directory")
        units.append(postgres_unit(names, data_dir, pg_bin, pg_owner))
    if region:
        units.append(region_unit(names, data_dir, python, embedded_db))
    if rack:
        units.append(rack_unit(names, data_dir, python, with_region=region))
    return units


def units_dir(data_dir: Path) -> Path:
    return Path(data_dir) / UNITS_SUBDIR


def write_units(directory: Path, units: list[Unit]) -> list[Path]:
    """Write each unit (0644, as systemd's own) atomically; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for unit in units:
        path = directory / unit.name
        tmp = directory / f".{unit.name}.tmp"
        tmp.write_text(render_unit(unit))
        tmp.chmod(0o644)
        tmp.replace(path)
        paths.append(path)
    return paths
