"""Which units a data dir needs, and putting them where systemd (or the keeper) reads them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from metalplane.config.rack import rack_config_path
from metalplane.config.region import REGION_CONFIG_NAME, load_region_config
from metalplane.embedded.daemons import systemctl, systemd_running
from metalplane.embedded.units import SYSTEM_UNIT_DIR, Unit, units_dir, units_for, write_units

DB_SUBDIR = "db"


class UnitsError(Exception):
    pass


def uses_embedded_db(data_dir: Path, database_host: str | list[str]) -> bool:
    """The region config points at the data dir's own cluster (its unix socket dir)."""
    return database_host == str(Path(data_dir) / DB_SUBDIR / "run")


def planned_units(data_dir: Path, *, region: bool, rack: bool, embedded_db: bool) -> list[Unit]:
    pg_bin = pg_owner = None
    if region and embedded_db:
        from metalplane.embedded.postgres import cluster_owner, find_pg_bin

        pg_bin, pg_owner = find_pg_bin(), cluster_owner()
    return units_for(
        Path(data_dir),
        sys.executable,
        region=region,
        rack=rack,
        embedded_db=embedded_db,
        pg_bin=pg_bin,
        pg_owner=pg_owner or "postgres",
    )


def detected_units(data_dir: Path) -> list[Unit]:
    """The units for what `init` / `rack register` set up in this data dir."""
    data_dir = Path(data_dir)
    region_conf = data_dir / REGION_CONFIG_NAME
    region = region_conf.exists()
    rack = rack_config_path(data_dir).exists()
    if not region and not rack:
        raise UnitsError(
            f"{data_dir} holds no regiond.conf or rackd.conf: run `metalplane init` or `metalplane rack register` first"
        )
    embedded = region and uses_embedded_db(data_dir, load_region_config(region_conf).database_host)
    return planned_units(data_dir, region=region, rack=rack, embedded_db=embedded)


def write_data_dir_units(data_dir: Path, units: list[Unit]) -> list[Path]:
    """DATA/units/: what the keeper runs, and the copy `install-units` installs."""
    return write_units(units_dir(data_dir), units)


def install_units(units: list[Unit], root: Path = Path("/"), start: bool = False) -> list[str]:
    """Write the units into ROOT/etc/systemd/system and enable them; with `start`, start them too.

    With systemd running (and ROOT /) this is `daemon-reload` + `enable [--now]`; otherwise
    `systemctl --root=ROOT enable` makes the same links offline, for the next boot.
    """
    target = Path(root) / SYSTEM_UNIT_DIR.relative_to("/")
    paths = write_units(target, units)
    names = [u.name for u in units]
    live = Path(root) == Path("/") and systemd_running()
    if live:
        systemctl("daemon-reload")
        systemctl("enable", *(["--now"] if start else []), *names)
        done = "enabled and started" if start else "enabled"
    elif shutil.which("systemctl"):
        proc = subprocess.run(["systemctl", f"--root={root}", "enable", *names], capture_output=True, text=True)
        if proc.returncode != 0:
            raise UnitsError(f"systemctl --root={root} enable failed: {(proc.stderr or proc.stdout).strip()}")
        done = "enabled for the next boot (systemd is not running here)"
    else:
        done = "written (no systemctl here to enable them)"
    return [f"{path}: {done}" for path in paths]
