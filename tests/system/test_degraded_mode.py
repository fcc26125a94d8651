"""Issue 16, degraded mode end to end: two racks with DHCP HA, every region killed
(kill -9). New DHCP clients still get leases (from the primary, then from the
secondary once the primary rack is killed too), TFTP and HTTP boot of a cached image
are still served, the racks say they are degraded; what they queued meanwhile (lease
events, the isolation itself) reaches the region after it returns: counted, none lost.
Meanwhile each rack's board on disk says rackd is degraded and its chronyd serves time."""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from metalplane.images.publish import publish_image
from metalplane.rack.services import read_board
from tests.support.netlab import Lab
from tests.support.processes import wait_until
from tests.support.stack import Stack, region_and_two_racks
from tests.system.test_dhcp_ha import kea_pids, lease4_get

pytestmark = [pytest.mark.system, pytest.mark.timeout(400)]
CIDR = "10.62.0.0/24"
PRIMARY, SECONDARY = "10.62.0.2", "10.62.0.3"
KERNEL = secrets.token_bytes(300_000)
IMAGE = dict(os_name="ephemeral", release="degraded", arch="amd64", subarch="generic", version="20261206")


def tiny_mirror(root: Path) -> str:
    """A one-file ephemeral image; returns its sha256."""
    kernel = root / "staging" / "boot-kernel"
    kernel.parent.mkdir(parents=True)
    kernel.write_bytes(KERNEL)
    publish_image(root / "mirror", files={"boot-kernel": kernel}, title="degraded mode test", **IMAGE)
    return hashlib.sha256(KERNEL).hexdigest()


def service(stack: Stack, rack: str, name: str) -> tuple[str, str]:
    found = next(r for r in stack.api("rack-controllers", "read") if r["hostname"] == rack)
    s = next(x for x in found["service_set"] if x["name"] == name)
    return s["status"], s["status_info"]


def known_ips(stack: Stack) -> list[str]:
    subnet = next(s for s in stack.api("subnets", "read") if s["cidr"] == CIDR)
    return [a["ip"] for a in stack.api("subnet", "ip-addresses", str(subnet["id"])) if a["alloc_type"] == 6]


def queued(data_dir: Path) -> int:
    """Events waiting on disk in the rack's queues (read while the rack is dead)."""
    total = 0
    for path in sorted(data_dir.rglob("*.sqlite3")):
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            total += db.execute("SELECT count(*) FROM events").fetchone()[0]
        finally:
            db.close()
    return total


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_racks_serve_without_any_region_and_deliver_what_they_queued(databases, tmp_path):
    sha = tiny_mirror(tmp_path)
    with Lab() as lab:
        stack, region_host, racks = region_and_two_racks(lab, databases, CIDR)
        fetcher = lab.add_host("fetch", {"pxe": "10.62.0.60/24"})
        clients = [lab.add_host(f"c{i}", {"pxe": None}) for i in range(1, 6)]
        stack.import_image(tmp_path / "mirror", timeout=120)
        stack.serve_dhcp(CIDR, "10.62.0.100", "10.62.0.199", "rack1")
        subnet = next(s for s in stack.api("subnets", "read") if s["cidr"] == CIDR)
        stack.api(
            "vlan", "update", str(subnet["vlan"]["fabric_id"]), str(subnet["vlan"]["vid"]), "secondary_rack=rack2"
        )
        wait_until(lambda: kea_pids(stack, "rack1") and kea_pids(stack, "rack2"), 30, what="Kea on both racks")
        for rack in racks:
            wait_until(
                lambda r=rack: (
                    service(stack, r, "http")[0] == "running" and "serving 1 of 1 image" in service(stack, r, "http")[1]
                ),
                60,
                what=f"{rack} to cache the image",
            )
        first = clients[0].dhcp_udhcpc("pxe", timeout=20)
        assert first.server_id == PRIMARY
        wait_until(lambda: lease4_get(stack, "rack2", first.ip), 30, what="the standby in sync")
        wait_until(lambda: first.ip in known_ips(stack), 10, what="the region to know the first lease")

        # Every region dies.
        marks = {name: len(stack.rack_log(name)) for name in racks}
        region_pids = region_host.pids()
        assert region_pids
        kill_all(region_pids)
        killed = time.monotonic()
        for name in racks:
            wait_until(
                lambda n=name: "degraded: lost every region controller" in stack.rack_log(n)[marks[n] :],
                10,
                what=f"{name} to say it is degraded",
            )
        assert time.monotonic() - killed < 10

        # New clients get leases from the primary.
        alone = [c.dhcp_udhcpc("pxe", timeout=20) for c in clients[1:3]]
        assert all(lease.server_id == PRIMARY for lease in alone)
        # TFTP and HTTP boot of the cached image, from both racks.
        for address in (PRIMARY, SECONDARY):
            loader = fetcher.run(
                [
                    "curl",
                    "-sf",
                    "--tftp-blksize",
                    "1468",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{size_download}",
                    f"tftp://{address}/undionly.kpxe",
                ]
            )
            assert int(loader.stdout) == Path("/usr/lib/ipxe/undionly.kpxe").stat().st_size
            image = fetcher.run(["sh", "-c", f"curl -sf http://{address}:5248/images/by-sha256/{sha} | sha256sum"])
            assert image.stdout.split()[0] == sha
            by_name = fetcher.run(
                [
                    "sh",
                    "-c",
                    f"curl -sf http://{address}:5248/images/ephemeral/degraded/amd64/"
                    f"generic/20261206/boot-kernel | sha256sum",
                ]
            )
            assert by_name.stdout.split()[0] == sha
            # A machine's iPXE script: with no region to ask, boot from the local disk.
            script = fetcher.run(["curl", "-sf", f"http://{address}:5248/ipxe.cfg-52-54-00-00-00-99"], check=False)
            assert script.returncode == 0 and "#!ipxe" in script.stdout

        # What each rack says of itself meanwhile (its board on disk: no region can hear it),
        # and NTP: each rack's chronyd keeps serving time.
        for name in racks:
            rackd = read_board(stack.racks[name][1])["rackd"]
            assert rackd["status"] == "degraded", (name, rackd)
            assert rackd["status_info"].startswith("no region controller reachable"), (name, rackd)
        for address in (PRIMARY, SECONDARY):
            wait_until(
                lambda a=address: fetcher.run(["sntp", "-t", "2", a], check=False, timeout=20).returncode == 0,
                30,
                interval=1,
                what=f"time from {address} without any region",
            )

        # The primary rack dies too (rackd and its Kea): the secondary serves new clients.
        rack1_data = stack.racks["rack1"][1]
        kill_all(racks["rack1"].pids())
        dead = time.monotonic()
        from_secondary = clients[3].dhcp_udhcpc("pxe", timeout=15)
        assert from_secondary.server_id == SECONDARY
        assert time.monotonic() - dead < 15
        queued_on_rack1 = queued(rack1_data)
        assert queued_on_rack1 >= 2  # at least the two leases it made alone

        # The region returns, then the primary rack: everything queued arrives, once.
        outage_started = killed
        stack.start_region(region_host, "pxe")
        stack.start_rack("rack1")
        leased = {first.ip, *(lease.ip for lease in alone), from_secondary.ip}
        assert len(leased) == 4
        known = wait_until(
            lambda: (k := known_ips(stack)) and leased <= set(k) and k,
            60,
            interval=0.5,
            what="every lease made without the region at the region",
        )
        assert len(known) == len(set(known))
        wait_until(lambda: queued(rack1_data) == 0, 30, what="rack1's queue to drain")

        # The isolation is an event of the rack that lived through it; its services run again.
        def isolation_events() -> list[str]:
            found = stack.api("events", "query", "hostname=rack2", "level=WARNING")["events"]
            return [e["description"] for e in found if e["type"] == "Rack ran without any region controller"]

        events = wait_until(isolation_events, 30, what="rack2's degraded-mode event")
        assert len(events) == 1 and events[0].startswith("degraded: no region controller for ")
        seconds = float(events[0].split(" for ")[1].split(" s")[0])
        assert 1 <= seconds <= time.monotonic() - outage_started + 5
        wait_until(
            lambda: all(service(stack, r, "rackd")[0] == "running" for r in racks), 30, what="both racks running again"
        )
        assert service(stack, "rack1", "dhcpd")[0] in ("running", "degraded")
        # One more client after the return: served as before.
        last = clients[4].dhcp_udhcpc("pxe", timeout=20)
        assert last.ip not in leased
