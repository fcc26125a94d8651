"""A supervised daemon dies with its supervisor, and no Python runs in the forked child
before the daemon's exec (a `preexec_fn` there can stall a threaded daemon's event loop)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

SUPERVISOR = textwrap.dedent(
    """
    import asyncio, sys, uvloop
    from pathlib import Path
    from metalplane.supervised import Supervised

    async def main():
        proc = Supervised("sleeper", ["sleep", "60"], log_path=Path(sys.argv[1]))
        await proc.start()
        print(proc.pid, flush=True)
        await asyncio.sleep(60)

    uvloop.run(main())
    """
)


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_supervised_daemon_is_the_command_itself_and_dies_with_its_supervisor(tmp_path: Path):
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, str(tmp_path / "log")], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert supervisor.stdout is not None
        pid = int(supervisor.stdout.readline())
        # The PID the supervisor reports is the daemon's own (the wrapper exec'd it in place).
        deadline = time.monotonic() + 5
        while Path(f"/proc/{pid}/cmdline").read_bytes() != b"sleep\x0060\x00":
            assert time.monotonic() < deadline, Path(f"/proc/{pid}/cmdline").read_bytes()
            time.sleep(0.01)
        supervisor.kill()  # kill -9: nothing of the supervisor's own code runs
        supervisor.wait()
        deadline = time.monotonic() + 5
        while not gone(pid):
            assert time.monotonic() < deadline, "the daemon outlived its supervisor"
            time.sleep(0.01)
    finally:
        supervisor.kill()
        supervisor.wait()


def test_no_python_runs_between_fork_and_exec():
    src = Path(__file__).resolve().parents[2] / "src"
    found = [str(p) for p in src.rglob("*.py") if "preexec_fn=" in p.read_text()]
    assert found == []
