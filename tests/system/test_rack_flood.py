"""A TFTP flood on the boot network must degrade the rack, not cut it off its region.

In a netlab: a region, a rack (real `metalplane rack run`), a `flooder` host sending
14,000 never-acknowledged read requests with `timeout=255` from one socket (the
attack of issue 12: on the old code it pushed the rack to its 20,000 open-file limit
and the region link task died for good), and a `client` host booting the real way
meanwhile: tftp-hpa for a loader, curl for the iPXE chain script and the
per-machine script (which the rack asks the region for). A thread watches the rack's
`rackd` status through the region API the whole time.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

from metalplane.rack.limits import budget, current_nofile
from tests.support import module_command
from tests.support.netlab import Lab
from tests.support.ns_api import NsApi
from tests.support.processes import wait_until
from tests.support.stack import Stack

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(shutil.which("tftp") is None, reason="tftp-hpa not installed"),
    pytest.mark.timeout(300),
]
CIDR = "10.81.0.0/24"
RACK = "10.81.0.2"
LOADER = Path("/usr/lib/ipxe/undionly.kpxe")
FLOOD = 14000
MAX_OUTAGE = 5.0


def rackd(api: NsApi, name: str = "rackd") -> tuple[str, str]:
    rack = api.json("GET", "rackcontrollers/")[0]
    service = next(s for s in rack["service_set"] if s["name"] == name)
    return service["status"], service["status_info"]


class StatusWatch(threading.Thread):
    """Samples (time, rackd status) until stopped."""

    def __init__(self, api: NsApi):
        super().__init__(daemon=True)
        self.api = api
        self.samples: list[tuple[float, str, str]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                status, info = rackd(self.api)
            except Exception as exc:
                status, info = "api-error", str(exc)
            self.samples.append((time.monotonic(), status, info))
            self.done.wait(0.5)

    def longest_outage(self) -> float:
        """Longest stretch of samples not `running` (to the next running sample)."""
        longest, since = 0.0, None
        for t, status, _ in self.samples:
            if status != "running" and since is None:
                since = t
            elif status == "running" and since is not None:
                longest, since = max(longest, t - since), None
        if since is not None:
            longest = max(longest, self.samples[-1][0] - since)
        return longest


@pytest.fixture(scope="module")
def lab(databases):
    with Lab() as lab:
        lab.add_network("boot", CIDR)
        region = lab.add_host("region", {"boot": "10.81.0.10/24"})
        rack = lab.add_host("rack1", {"boot": f"{RACK}/24"})
        lab.client = lab.add_host("client", {"boot": "10.81.0.60/24"})
        lab.flooder = lab.add_host("flooder", {"boot": "10.81.0.66/24"})
        stack = Stack(lab, databases)
        stack.start_region(region, "boot")
        stack.add_rack(rack, "rack1")
        stack.start_rack("rack1")
        lab.stack = stack
        lab.api = NsApi(region, stack.url, stack.api_key, timeout=10)
        try:
            wait_until(
                lambda: stack.api("rack-controllers", "read") and rackd(lab.api)[0] == "running",
                60,
                interval=0.5,
                what="the rack to connect",
            )
            yield lab
        finally:
            lab.api.close()


def boot_once(lab, tag: str) -> dict[str, float | str]:
    """What a PXE client fetches first: the loader over TFTP, the iPXE scripts over HTTP.
    Returns each fetch's seconds, or what went wrong."""
    times: dict[str, float | str] = {}
    out = lab.workdir / f"loader-{tag}"
    t0 = time.monotonic()
    hpa = lab.client.run(
        ["tftp", "-m", "binary", RACK, "-c", "get", "undionly.kpxe", str(out)], check=False, timeout=60
    )
    ok = hpa.returncode == 0 and out.exists() and out.read_bytes() == LOADER.read_bytes()
    times["tftp"] = time.monotonic() - t0 if ok else f"failed: {hpa.stdout.strip()} {hpa.stderr.strip()}"
    # A fresh MAC each time, so the rack asks the region (no cached answer); with no image
    # imported the answer is "local disk", and the rack log says when no region answered.
    lab.macs = getattr(lab, "macs", 0) + 1
    mac = f"52-54-00-81-00-{lab.macs:02x}"
    for name, path, expect in (
        ("http-chain", "ipxe.cfg", "#!ipxe"),
        ("http-machine", f"ipxe.cfg-{mac}", "booting from the local disk"),
    ):
        t0 = time.monotonic()
        got = lab.client.run(["curl", "-sS", "--max-time", "30", f"http://{RACK}:5248/{path}"], check=False, timeout=60)
        ok = got.returncode == 0 and expect in got.stdout
        times[name] = time.monotonic() - t0 if ok else f"failed: {got.stdout.strip()} {got.stderr.strip()}"
    return times


def test_a_tftp_flood_degrades_the_rack_but_it_stays_on_its_region(lab):
    stack, api = lab.stack, lab.api
    before = boot_once(lab, "before")
    watch = StatusWatch(api)
    watch.start()
    cmd, env = module_command(
        "tests.support.tftp_flood", "--server", RACK, "--count", str(FLOOD), "--rate", "800", "--hold", "5"
    )
    flood = lab.flooder.spawn(cmd, env=env, log=lab.workdir / "flood.log")
    during = []
    try:
        time.sleep(1)
        while flood.poll() is None:  # boot again and again while the flood lasts
            during.append(boot_once(lab, f"during{len(during)}"))
            time.sleep(2)
        assert flood.returncode == 0, flood.log()
    finally:
        if flood.poll() is None:
            lab.flooder.kill(flood)
    report = json.loads(flood.log().strip().splitlines()[-1])
    after = boot_once(lab, "after")
    time.sleep(2)
    watch.done.set()
    watch.join(10)
    log = stack.rack_log("rack1")
    summary = {
        "flood": report,
        "before": before,
        "during": during,
        "after": after,
        "longest outage": watch.longest_outage(),
        "final": rackd(api),
        "not running": [s for s in watch.samples if s[1] != "running"][:10],
        "rack log problems": [line[:300] for line in log.splitlines() if "[ERROR]" in line or "Errno" in line][:10],
    }
    print(json.dumps(summary, indent=1))
    assert report["sent"] == FLOOD
    assert during, summary  # a client booted while the flood lasted
    failed = [
        (tag, t)
        for tag, t in (("before", before), *(("during", d) for d in during), ("after", after))
        if any(isinstance(v, str) for v in t.values())
    ]
    assert not failed, summary
    assert watch.longest_outage() <= MAX_OUTAGE, summary
    assert summary["final"][0] == "running", summary
    assert "Too many open files" not in log, log[-3000:]
    assert "no boot config for" not in log, log[-3000:]  # every per-machine script came from the region
    assert re.search(r"TFTP: \S+ has \d+ transfers in progress.*per-client limit", log), log[-3000:]
    # The rack says so in its tftp status (reported every 5 s).
    tftp = wait_until(
        lambda: (t := rackd(api, "tftp")) and "at the limits" in t[1] and t,
        15,
        interval=0.5,
        what="the tftp status to mention the limits",
    )
    assert tftp[0] == "running", tftp
    # The per-client limit held the flooder to its share (twice over at most: the first
    # ones time out after MAX_IDLE and make room while the flood goes on).
    assert report["transfers_started"] <= 2 * budget(current_nofile()).tftp.per_client, summary
