"""The daemon supervisor with real (tiny) processes: restart with backoff, the cause of a
death from its own output, callbacks at once, stop kills the group."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from metalplane.supervised import Supervised, prefix_wrap, run_command

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def until(predicate, timeout: float = 5.0) -> float:
    t0 = time.monotonic()
    while not predicate():
        assert time.monotonic() - t0 < timeout, "condition not reached"
        await asyncio.sleep(0.01)
    return time.monotonic() - t0


async def test_restarts_after_a_kill_and_tells_at_once(tmp_path: Path):
    changes: list[bool] = []
    proc = Supervised(
        "sleeper",
        ["sh", "-c", "echo ready; exec sleep 60"],
        log_path=tmp_path / "log",
        restart_backoff=(0.2, 1.0),
        on_change=lambda: changes.append(proc.running()),
    )
    await proc.start()
    try:
        assert proc.running() and changes == [True]
        first = proc.pid
        # Its last words must be out before it dies (sh may not have run yet on a loaded machine).
        await until(lambda: "ready" in (tmp_path / "log").read_text())
        os.kill(first, signal.SIGKILL)
        took = await until(lambda: not proc.running() and proc.last_exit is not None)
        assert took < 1 and proc.death() == "killed by SIGKILL: ready" and changes[-1] is False  # + its last words
        await until(lambda: proc.running() and proc.pid != first)
        assert proc.restarts == 1 and proc.starts == 2 and changes[-1] is True
        assert (tmp_path / "log").read_text().count("starting sleeper") == 2
    finally:
        await proc.stop()
    assert not proc.running() and not proc.wanted


async def test_the_cause_of_death_is_its_own_error_line_and_no_restart_without_backoff(tmp_path: Path):
    proc = Supervised(
        "crasher",
        ["sh", "-c", "echo starting; echo 'Fatal error : no config' >&2; exit 3"],
        log_path=tmp_path / "log",
        restart_backoff=None,
        error_filter=lambda lines: [ln for ln in lines if "Fatal" in ln],
    )
    await proc.start()
    await until(lambda: proc.last_exit is not None)
    assert proc.death() == "exited with status 3: Fatal error : no config"
    await asyncio.sleep(0.3)
    assert proc.starts == 1 and not proc.running()
    proc.restart_now()  # an explicit restart runs it again
    await until(lambda: proc.starts == 2)
    await proc.stop()


async def test_stop_kills_the_whole_group_and_wrap_prefixes_commands(tmp_path: Path):
    marker = tmp_path / "child.pid"
    proc = Supervised(
        "parent", ["sh", "-c", f"sleep 60 & echo $! > {marker}; trap '' TERM; wait"], log_path=tmp_path / "log"
    )
    await proc.start()
    await until(lambda: marker.exists() and marker.read_text().strip() != "")  # sh creates it, then writes
    child = int(marker.read_text())
    await proc.stop(timeout=0.3)  # TERM is ignored: SIGKILL to the group
    await until(
        lambda: not os.path.exists(f"/proc/{child}") or "Z" in Path(f"/proc/{child}/stat").read_text().split(")")[1][:3]
    )
    code, out = await run_command(["hello"], wrap=prefix_wrap(["echo"]))
    assert (code, out) == (0, "hello\n")
