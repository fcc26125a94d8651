"""Without systemd: run one of metalplane's unit files the way systemd would.

`metalplane init` uses this where systemd is not PID 1 (containers, CI). It
honours the directives metalplane's units use, from the file itself:
ExecStart=, Environment=, Restart= (no, on-failure, always), RestartSec=,
TimeoutStopSec=, KillSignal=, KillMode=mixed, StartLimitIntervalSec= and
StartLimitBurst=. What it does not do: cgroups (the daemon's children are
found by its process group and by their own die-with-parent), User=, and
Type= other than simple.

    python -m metalplane.embedded.keeper --log FILE --main-pid FILE UNIT_FILE

It writes its own lines (starts, exits, restarts) into the daemon's log.
SIGTERM stops the daemon as `systemctl stop` would; if the keeper itself is
killed, the daemon gets SIGTERM from the kernel (it dies with its parent).
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from metalplane.embedded.units import environment, parse_unit, split_command
from metalplane.lifetimes import dying_with_parent
from metalplane.logs import FORMAT, LineFormatter, open_log

log = logging.getLogger("metalplane.keeper")
POLL = 0.1
# systemd.service(5): with Restart=on-failure, these signals are a clean exit (as is status 0).
CLEAN_SIGNALS = {signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE}
SUPPORTED_TYPES = {"simple", "exec"}


class UnitError(Exception):
    pass


@dataclass(frozen=True)
class ServicePolicy:
    argv: tuple[str, ...]
    env: dict[str, str]
    restart: str
    restart_sec: float
    timeout_stop_sec: float
    kill_signal: int
    start_limit_interval: float
    start_limit_burst: int


def _last(section: dict[str, list[str]], key: str, default: str) -> str:
    values = section.get(key)
    return values[-1] if values else default


def _seconds(value: str) -> float:
    """systemd time spans as metalplane writes them: `90`, `90s`, `2min`, `infinity`."""
    value = value.strip()
    if value == "infinity":
        return float("inf")
    for suffix, factor in (("min", 60), ("ms", 0.001), ("s", 1)):
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value)


def policy_from_unit(text: str) -> ServicePolicy:
    sections = parse_unit(text)
    unit, service = sections.get("Unit", {}), sections.get("Service", {})
    kind = _last(service, "Type", "simple")
    if kind not in SUPPORTED_TYPES:
        raise UnitError(f"Type={kind} is not supported without systemd")
    starts = service.get("ExecStart")
    if not starts or len(starts) != 1:
        raise UnitError("the unit needs exactly one ExecStart=")
    restart = _last(service, "Restart", "no")
    if restart not in ("no", "on-failure", "always"):
        raise UnitError(f"Restart={restart} is not supported without systemd")
    kill_mode = _last(service, "KillMode", "control-group")
    if kill_mode not in ("mixed", "control-group"):
        raise UnitError(f"KillMode={kill_mode} is not supported without systemd")
    return ServicePolicy(
        argv=tuple(split_command(starts[0])),
        env=environment(service.get("Environment", [])),
        restart=restart,
        restart_sec=_seconds(_last(service, "RestartSec", "0.1")),
        timeout_stop_sec=_seconds(_last(service, "TimeoutStopSec", "90")),
        kill_signal=int(getattr(signal, _last(service, "KillSignal", "SIGTERM"))),
        start_limit_interval=_seconds(_last(unit, "StartLimitIntervalSec", "10")),
        start_limit_burst=int(_last(unit, "StartLimitBurst", "5")),
    )


def should_restart(restart: str, returncode: int) -> bool:
    """systemd's table: on-failure restarts on a non-zero status or an unclean signal."""
    if restart == "always":
        return True
    if restart != "on-failure":
        return False
    if returncode < 0:
        return -returncode not in CLEAN_SIGNALS
    return returncode != 0


def start_limit_hit(starts: list[float], now: float, interval: float, burst: int) -> bool:
    """True when `burst` starts already happened within `interval` seconds before `now`."""
    return len([t for t in starts if now - t < interval]) >= burst


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with status {returncode}"


class Keeper:
    def __init__(self, unit_path: Path, log_path: Path, main_pid_file: Path | None):
        self.unit_path = unit_path
        self.name = unit_path.name
        self.log_path = log_path
        self.main_pid_file = main_pid_file
        self.policy = policy_from_unit(unit_path.read_text())
        self.stopping = False
        self.proc: subprocess.Popen | None = None

    def _on_signal(self, signum, frame) -> None:
        self.stopping = True

    def _spawn(self) -> subprocess.Popen:
        with open_log(self.log_path) as out, open(os.devnull, "rb") as devnull:
            proc = subprocess.Popen(
                dying_with_parent(list(self.policy.argv)),
                stdin=devnull,
                stdout=out,
                stderr=out,
                close_fds=True,
                env={**os.environ, **self.policy.env},
                start_new_session=True,
            )
        if self.main_pid_file is not None:
            self.main_pid_file.parent.mkdir(parents=True, exist_ok=True)
            self.main_pid_file.write_text(f"{proc.pid}\n")
        log.info("%s: started (pid %d)", self.name, proc.pid)
        return proc

    def _wait(self, proc: subprocess.Popen, seconds: float = float("inf")) -> int | None:
        """Wait for `proc` up to `seconds`, returning early (None) when asked to stop."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            code = proc.poll()
            if code is not None or self.stopping:
                return code
            time.sleep(POLL)
        return proc.poll()

    def _stop(self, proc: subprocess.Popen) -> int:
        """KillSignal to the main process, then SIGKILL to its whole group after TimeoutStopSec."""
        if proc.poll() is None:
            proc.send_signal(self.policy.kill_signal)
            try:
                return proc.wait(self.policy.timeout_stop_sec)
            except subprocess.TimeoutExpired:
                log.warning(
                    "%s: still running %.0f s after %s; killing it (TimeoutStopSec)",
                    self.name,
                    self.policy.timeout_stop_sec,
                    signal.Signals(self.policy.kill_signal).name,
                )
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return proc.wait()

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.stopping:
            time.sleep(POLL)

    def _done(self, code: int) -> int:
        if self.main_pid_file is not None:
            self.main_pid_file.unlink(missing_ok=True)
        return code

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        starts: list[float] = []
        while not self.stopping:
            now = time.monotonic()
            if start_limit_hit(starts, now, self.policy.start_limit_interval, self.policy.start_limit_burst):
                log.error(
                    "%s: started %d times within %.0f s; giving up (StartLimitBurst)",
                    self.name,
                    self.policy.start_limit_burst,
                    self.policy.start_limit_interval,
                )
                return self._done(1)
            starts.append(now)
            proc = self._spawn()
            code = self._wait(proc)
            if self.stopping:
                code = self._stop(proc)
                log.info("%s: stopped (%s)", self.name, describe_exit(code))
                break
            assert code is not None
            if not should_restart(self.policy.restart, code):
                log.info("%s: %s; not restarted (Restart=%s)", self.name, describe_exit(code), self.policy.restart)
                return self._done(0 if code == 0 or -code in CLEAN_SIGNALS else 1)
            log.warning(
                "%s: %s; restarting in %g s (Restart=%s)",
                self.name,
                describe_exit(code),
                self.policy.restart_sec,
                self.policy.restart,
            )
            self._pause(self.policy.restart_sec)
        return self._done(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="metalplane-keeper", description=__doc__.split("\n\n")[0])
    parser.add_argument("--log", type=Path, required=True, help="the daemon's log file (mode 0640)")
    parser.add_argument("--main-pid", type=Path, help="where to write the daemon's pid")
    parser.add_argument("unit", type=Path, help="the unit file to run")
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(io.TextIOWrapper(open_log(args.log), line_buffering=True))
    handler.setFormatter(LineFormatter("[keeper] " + FORMAT))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        keeper = Keeper(args.unit, args.log, args.main_pid)
    except (OSError, ValueError, UnitError) as exc:
        log.error("cannot run %s: %s", args.unit, exc)
        return 2
    return keeper.run()


if __name__ == "__main__":
    sys.exit(main())
