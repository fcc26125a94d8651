"""The rack's supervised tasks, with a real region and real `metalplane rack run` processes:
a task that dies is logged with its cause and restarted, the rack says `degraded`
(naming the task) through the region API meanwhile, and is back to `running` after.

1. The TFTP port is taken when the rack starts (a real cause): its "tftp" task dies,
   is retried with backoff, and serves once the port is free.
2. The rack runs out of descriptors while its region restarts (a real EMFILE): once
   descriptors are back, it is connected and running again (issue 12: it stayed
   `rackd dead` until restarted by hand).
3. The region-link task itself fails (EMFILE injected into its loop by a launcher
   wrapping `metalplane rack run`): logged once with the traceback, restarted,
   reconnected.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from metalplane.embedded.init import run_db
from metalplane.rack import region_links
from metalplane.region.services import cluster
from tests.conftest import RunningRegion, create_admin, start_region
from tests.support.processes import RackProcess, RegionProcess, wait_until

LAUNCHER = """
import errno, os, sys
from metalplane.rack import region_links

MARK = os.environ["METALPLANE_TEST_FAULT"]
reconcile = region_links.RegionLinks._reconcile


async def faulty(self):
    if os.path.exists(MARK):  # a stat, no descriptor
        raise OSError(errno.EMFILE, "Too many open files (injected by the test)")
    await reconcile(self)


region_links.RegionLinks._reconcile = faulty
from metalplane.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


class Lab:
    def __init__(self, databases, root: Path):
        self.root = root
        self.region = start_region(databases, root, "region-a", num_workers=1)
        self.key = create_admin(self.region.config)
        self.secret = run_db(self.region.config, cluster.shared_secret)
        self.racks: list[RackProcess] = []

    def rack(self, name: str, launcher: Path | None = None, env: dict | None = None) -> RackProcess:
        if launcher is None:
            rack = RackProcess(self.root / name, [self.region.url], self.secret, name)
        else:
            rack = LaunchedRack(launcher, self.root / name, [self.region.url], self.secret, name)
        rack.env = env
        self.racks.append(rack)
        return rack

    def service(self, hostname: str, name: str) -> tuple[str, str] | None:
        with RunningRegion(self.region, self.key).api() as api:
            for rack in api.get("rackcontrollers/").json():
                if rack["hostname"] == hostname:
                    s = next(s for s in rack["service_set"] if s["name"] == name)
                    return s["status"], s["status_info"]
        return None

    def stop(self) -> None:
        for rack in self.racks:
            rack.stop()
        self.region.stop()


class LaunchedRack(RackProcess):
    """`metalplane rack run` with the same arguments, through `launcher` instead of `-m metalplane`."""

    def __init__(self, launcher: Path, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.launcher = launcher

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(self.launcher), *self.args],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(self.env or {})},
                start_new_session=True,
            )


@pytest.fixture
def lab(databases, workdir):
    lab = Lab(databases, workdir)
    yield lab
    lab.stop()


def rack_config(rack: RackProcess) -> dict:
    from metalplane.config.rack import load_rack_config, rack_config_path

    return load_rack_config(rack_config_path(rack.data_dir)).model_dump()


def test_a_dead_tftp_task_is_logged_retried_reported_and_recovers(lab):
    rack = lab.rack("rack-tftp")
    port = rack_config(rack)["tftp_port"]
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # no SO_REUSEADDR: the rack cannot share it
    blocker.bind(("127.0.0.1", port))
    try:
        rack.start()
        wait_until(lambda: "task tftp died" in rack.log(), 30, what="the tftp task to die")
        down = wait_until(
            lambda: (s := lab.service("rack-tftp", "rackd")) and s[0] == "degraded" and s,
            30,
            interval=0.3,
            what="rackd degraded",
        )
        assert "tftp" in down[1] and "Address already in use" in down[1]
        tftp = lab.service("rack-tftp", "tftp")
        assert tftp[0] == "dead" and "cannot listen" in tftp[1]
        time.sleep(6)  # a few retries at the backoff's ceiling
    finally:
        blocker.close()
    wait_until(lambda: lab.service("rack-tftp", "tftp")[0] == "running", 30, interval=0.3, what="tftp running")
    wait_until(
        lambda: lab.service("rack-tftp", "rackd") == ("running", ""), 30, interval=0.3, what="rackd running again"
    )
    log = rack.log()
    assert log.count("Traceback") == 1  # the cause once; the repeats in one line each
    assert "died again" in log and "same cause" in log


@pytest.mark.skipif(not shutil.which("prlimit"), reason="prlimit (util-linux) not installed")
def test_out_of_descriptors_while_the_region_restarts_the_rack_comes_back(lab):
    rack = lab.rack("rack-fds")
    rack.start()
    wait_until(lambda: lab.service("rack-fds", "rackd") == ("running", ""), 60, interval=0.3, what="rack running")
    subprocess.run(["prlimit", f"--pid={rack.pid}", "--nofile=12:20000"], check=True)  # nothing new opens
    config = lab.region.config
    lab.region.stop()
    wait_until(lambda: "lost region" in rack.log(), 20, what="the rack to notice")
    lab.region = RegionProcess(config, lab.root / "region-a-again")
    lab.region.start_and_wait()
    time.sleep(3)  # the rack tries, and cannot even make a socket
    assert "Too many open files" in rack.log() or "lost every region" in rack.log()
    assert lab.service("rack-fds", "rackd")[0] == "dead"
    subprocess.run(["prlimit", f"--pid={rack.pid}", "--nofile=20000:20000"], check=True)
    wait_until(
        lambda: lab.service("rack-fds", "rackd") == ("running", ""),
        60,
        interval=0.5,
        what="the rack connected and running again",
    )
    assert rack.alive()


def test_a_failing_region_link_task_is_restarted_and_logged(lab, workdir):
    launcher = workdir / "faulty_rack.py"
    launcher.write_text(LAUNCHER)
    mark = workdir / "fault"
    rack = lab.rack("rack-links", launcher=launcher, env={"METALPLANE_TEST_FAULT": str(mark)})
    rack.start()
    wait_until(lambda: lab.service("rack-links", "rackd") == ("running", ""), 60, interval=0.3, what="rack running")
    mark.touch()
    # A settled rack's loop wakes for its next refresh (REFRESH_INTERVAL) if nothing else comes first.
    wait_until(
        lambda: "task region-links died" in rack.log(), region_links.REFRESH_INTERVAL + 10, what="the link task to die"
    )
    wait_until(
        lambda: lab.service("rack-links", "rackd")[0] == "dead",
        15,
        interval=0.3,
        what="the region to see the rack gone",
    )
    time.sleep(2)
    mark.unlink()
    # Reconnected, and saying which task died until it has run a while again.
    back = wait_until(
        lambda: (s := lab.service("rack-links", "rackd")) and s[0] == "degraded" and s,
        15,
        interval=0.2,
        what="the rack to reconnect and report",
    )
    assert "region-links restarted after OSError: [Errno 24]" in back[1], back
    wait_until(
        lambda: lab.service("rack-links", "rackd") == ("running", ""), 30, interval=0.3, what="rackd running again"
    )
    log = rack.log()
    assert log.count("Traceback") == 1 and "injected by the test" in log
    assert "task region-links has run" in log  # healthy again
