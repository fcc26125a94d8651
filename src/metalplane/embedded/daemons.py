"""The daemons of a data dir, run from their unit files: by systemd when it is
PID 1, else by metalplane's keeper (embedded/keeper.py) with pid files in
DATA/run and logs in DATA/log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from metalplane.embedded.units import SYSTEM_UNIT_DIR, unit_names, units_dir

NO_SYSTEMD = (
    "systemd is not PID 1 here: metalplane's keeper runs the daemons from {units} "
    "(Restart=on-failure honoured; pid files in {run}, logs in {log}); "
    "`metalplane install-units` installs them for systemd"
)


def systemd_running() -> bool:
    """sd_booted(3): systemd is the init system when /run/systemd/system exists."""
    return Path("/run/systemd/system").is_dir()


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def our_process(pid: int | None) -> int | None:
    """`pid` if that process is alive, not a zombie, and a metalplane one (pids get reused)."""
    if pid is None:
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    if not any(b"metalplane" in part for part in cmdline):
        return None
    if stat.rsplit(")", 1)[1].split()[0] == "Z":
        return None
    return pid


class Service(Protocol):
    @property
    def name(self) -> str: ...

    def pid(self) -> int | None: ...
    def main_pid(self) -> int | None: ...
    def start(self) -> int | None: ...
    def stop(self) -> bool: ...
    def where_logs(self) -> str: ...
    def log_tail(self, lines: int = 20) -> str: ...


@dataclass(frozen=True)
class Daemon:
    """One unit run by the keeper; `pid()` is the keeper's, `main_pid()` the daemon's."""

    name: str
    data_dir: Path
    unit: Path

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "run" / f"{self.name}.pid"

    @property
    def main_pid_file(self) -> Path:
        return self.data_dir / "run" / f"{self.name}.main.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "log" / f"{self.name}.log"

    def pid(self) -> int | None:
        return our_process(_read_pid(self.pid_file))

    def main_pid(self) -> int | None:
        return our_process(_read_pid(self.main_pid_file)) if self.pid() is not None else None

    def start(self) -> int:
        for sub in ("run", "log"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        with open(os.devnull, "rb") as devnull, open(os.devnull, "wb") as null_out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "metalplane.embedded.keeper",
                    "--log",
                    str(self.log_file),
                    "--main-pid",
                    str(self.main_pid_file),
                    str(self.unit),
                ],
                stdin=devnull,
                stdout=null_out,
                stderr=null_out,
                start_new_session=True,
                close_fds=True,
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        return proc.pid

    def stop_timeout(self) -> float:
        from metalplane.embedded.keeper import policy_from_unit

        try:
            return policy_from_unit(self.unit.read_text()).timeout_stop_sec + 10
        except (OSError, ValueError):
            return 30.0

    def stop(self) -> bool:
        """SIGTERM to the keeper (which stops the daemon as its unit says), wait, then SIGKILL.
        True if something was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout()
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.1)
        if self.pid() is not None:
            os.kill(pid, signal.SIGKILL)  # the daemon dies with it (dying_with_parent)
        self.pid_file.unlink(missing_ok=True)
        return True

    def where_logs(self) -> str:
        return str(self.log_file)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def systemctl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"systemctl {' '.join(args)} failed: {(proc.stderr or proc.stdout).strip()}")
    return proc


@dataclass(frozen=True)
class SystemdService:
    """One installed unit, run by systemd."""

    name: str
    unit_name: str

    def pid(self) -> int | None:
        out = systemctl("show", "--property=MainPID", "--value", self.unit_name, check=False).stdout.strip()
        return int(out) if out.isdigit() and int(out) > 0 else None

    def main_pid(self) -> int | None:
        return self.pid()

    def start(self) -> int | None:
        systemctl("start", self.unit_name)
        return self.pid()

    def stop(self) -> bool:
        active = systemctl("is-active", "--quiet", self.unit_name, check=False).returncode == 0
        systemctl("stop", self.unit_name, check=False)
        return active

    def where_logs(self) -> str:
        return f"journalctl -u {self.unit_name}"

    def log_tail(self, lines: int = 20) -> str:
        return subprocess.run(
            ["journalctl", "-u", self.unit_name, "-n", str(lines), "--no-pager"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout


def service(name: str, data_dir: Path, unit_name: str, unit_dir: Path) -> Service:
    """systemd's unit when systemd runs and has it installed, else the keeper on DATA/units/."""
    if systemd_running() and (SYSTEM_UNIT_DIR / unit_name).exists():
        return SystemdService(name, unit_name)
    return Daemon(name, data_dir, unit_dir / unit_name)


def data_dir_service(data_dir: Path, which: str) -> Service:
    """`regiond`, `rackd` or `postgresql` of a data dir."""
    return service(which, Path(data_dir), getattr(unit_names(Path(data_dir)), which), units_dir(Path(data_dir)))
