"""DHCP HA end to end: a region and two racks in network namespaces, real Kea,
real DHCP clients; DHCP turned on with the seeds' CLI sequence."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import time
from pathlib import Path

import pytest

from metalplane.rack.dhcp.kea import control
from tests.support.netlab import Lab
from tests.support.processes import wait_until
from tests.support.stack import Stack, region_and_two_racks

pytestmark = pytest.mark.system
CIDR = "10.60.0.0/24"


@pytest.fixture(scope="module")
def stack(databases):
    with Lab() as lab:
        s, _, _ = region_and_two_racks(lab, databases, CIDR)
        s.clients = [lab.add_host(f"c{i}", {"pxe": None}) for i in range(1, 7)]
        yield s


def lease4_get(stack: Stack, rack: str, ip: str) -> dict | None:
    """Ask the rack's running Kea (its newest control socket) for a lease."""
    sockets = sorted((stack.racks[rack][1] / "dhcp").glob("*/kea.sock"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in sockets:
        try:
            answer = asyncio.run(control(path, "lease4-get", {"ip-address": ip}, timeout=5))
        except OSError:
            continue  # a socket left by an instance that no longer runs
        return answer.get("arguments") if answer.get("result") == 0 else None
    return None


def kea_pids(stack: Stack, rack: str) -> list[int]:
    host = stack.racks[rack][0]
    return [pid for pid in host.pids() if Path(f"/proc/{pid}/comm").read_text().strip() == "kea-dhcp4"]


def dhcpd(stack: Stack, rack: str) -> tuple[str, str]:
    for r in stack.api("rack-controllers", "read"):
        if r["hostname"] == rack:
            s = next(x for x in r["service_set"] if x["name"] == "dhcpd")
            return s["status"], s["status_info"]
    raise AssertionError(rack)


def known_ips(stack: Stack, subnet_id: int) -> list[str]:
    return [a["ip"] for a in stack.api("subnet", "ip-addresses", str(subnet_id)) if a["alloc_type"] == 6]


def seeds_sequence(stack: Stack) -> None:
    """The seeds' commands, with metalplane in place of maas."""
    stack.shell(f"""
        vid=$(metalplane $PROFILE subnets read | jq -r '.[] | select(.cidr == "{CIDR}") | .vlan.vid')
        fabric=$(metalplane $PROFILE subnets read | jq -r '.[] | select(.cidr == "{CIDR}") | .vlan.fabric')
        fabric_id=$(metalplane $PROFILE fabrics read | jq -r --arg f "$fabric" '.[] | select(.name == $f) | .id')
        metalplane $PROFILE ipranges create type=reserved start_ip=10.60.0.1 end_ip=10.60.0.20
        metalplane $PROFILE ipranges create type=dynamic start_ip=10.60.0.100 end_ip=10.60.0.199
        metalplane $PROFILE vlan update $fabric_id $vid primary_rack=rack1 dhcp_on=true
    """)


def vlan_path(stack: Stack) -> tuple[str, str]:
    subnet = next(s for s in stack.api("subnets", "read") if s["cidr"] == CIDR)
    return str(subnet["vlan"]["fabric_id"]), str(subnet["vlan"]["vid"])


def test_dhcp_ha_end_to_end(stack):
    seeds_sequence(stack)
    subnet = next(s for s in stack.api("subnets", "read") if s["cidr"] == CIDR)
    wait_until(lambda: kea_pids(stack, "rack1"), 20, what="Kea on the primary")
    c1, c2, c3, c4, c5, c6 = stack.clients

    # A client gets a lease from the primary; the region shows it.
    lease1 = c1.dhcp_udhcpc("pxe", timeout=20)
    assert lease1.server_id == "10.60.0.2"
    assert 100 <= int(lease1.ip.split(".")[-1]) <= 199
    wait_until(lambda: lease1.ip in known_ips(stack, subnet["id"]), 10, what="the region to know the lease")
    wait_until(lambda: dhcpd(stack, "rack1")[0] == "running", 15, what="dhcpd running on rack1")

    # The second rack joins as the candidate secondary, then becomes the secondary.
    fabric_id, vid = vlan_path(stack)
    vlan = stack.api("vlan", "read", fabric_id, vid)
    assert vlan["candidate_secondary_rack"] == stack.rack_system_id("rack2")
    stack.api("vlan", "update", fabric_id, vid, "secondary_rack=rack2")
    wait_until(lambda: kea_pids(stack, "rack2"), 20, what="Kea on the secondary")
    wait_until(lambda: lease4_get(stack, "rack2", lease1.ip), 30, what="the standby to sync the lease")
    lease2 = c2.dhcp_dhclient("pxe", timeout=20)
    assert lease2.server_id == "10.60.0.2"  # hot-standby: the primary answers everything
    wait_until(lambda: lease4_get(stack, "rack2", lease2.ip), 10, what="replication of a new lease")

    # kill -9 of the primary's Kea: a new client gets a lease within 5 s — from the
    # standby, or from the primary's Kea once its rack has restarted it and it synced.
    killed_pids = kea_pids(stack, "rack1")
    for pid in killed_pids:
        os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    lease3 = c3.dhcp_udhcpc("pxe", timeout=10)
    assert time.monotonic() - killed < 5.0
    if lease3.server_id == "10.60.0.2":
        assert set(kea_pids(stack, "rack1")).isdisjoint(killed_pids), "answered by a restarted Kea"

    # Failback: the primary's Kea is restarted by its rack, syncs, and takes over.
    wait_until(lambda: kea_pids(stack, "rack1"), 20, what="the rack to restart Kea")
    wait_until(lambda: lease4_get(stack, "rack1", lease3.ip), 60, interval=0.5, what="the primary to sync")
    for ip in (lease1.ip, lease2.ip, lease3.ip):
        assert lease4_get(stack, "rack1", ip) and lease4_get(stack, "rack2", ip), ip
    lease4 = wait_until(
        lambda: (lease := c4.dhcp_udhcpc("pxe", timeout=10)) and lease.server_id == "10.60.0.2" and lease,
        30,
        interval=1,
        what="the primary serving again",
    )

    # kill -9 of the whole primary rack (rackd and its Kea).
    rack1_host = stack.racks["rack1"][0]
    for pid in rack1_host.pids():
        os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    lease5 = c5.dhcp_udhcpc("pxe", timeout=10)
    assert time.monotonic() - killed < 5.0
    assert lease5.server_id == "10.60.0.3"
    stack.start_rack("rack1")
    wait_until(lambda: lease4_get(stack, "rack1", lease5.ip), 60, interval=0.5, what="failback after a rack crash")
    for lease in (lease1, lease2, lease3, lease4, lease5):
        assert lease4_get(stack, "rack1", lease.ip) and lease4_get(stack, "rack2", lease.ip), lease.ip
    # Both racks report; the region stores each lease once.
    known = wait_until(
        lambda: (
            (k := known_ips(stack, subnet["id"]))
            and len(set(k) & {lease1.ip, lease2.ip, lease3.ip, lease4.ip, lease5.ip}) == 5
            and k
        ),
        20,
        what="all leases at the region",
    )
    assert len(known) == len(set(known))

    # Deleting the primary while DHCP HA is on is refused, naming the VLAN.
    rack1_id = stack.rack_system_id("rack1")
    refused = stack.cli("admin", "rack-controller", "delete", rack1_id, check=False)
    assert refused.returncode == 2 and "Disable DHCP HA first" in refused.stdout

    # A bad range is refused by the API; Kea's configuration is untouched.
    configs = sorted((stack.racks["rack2"][1] / "dhcp").glob("*/kea-dhcp4.json"))
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in configs}
    for args in (["start_ip=10.60.0.150", "end_ip=10.60.0.210"], ["start_ip=10.61.0.1", "end_ip=10.61.0.9"]):
        bad = stack.cli("admin", "ipranges", "create", "type=dynamic", f"subnet={subnet['id']}", *args, check=False)
        assert bad.returncode == 2 and "start_ip" in bad.stdout
    time.sleep(1)
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in configs} == before

    # DHCP off stops Kea on both racks; then the rack can be deleted.
    stack.api("vlan", "update", fabric_id, vid, "dhcp_on=false")
    wait_until(lambda: not kea_pids(stack, "rack1") and not kea_pids(stack, "rack2"), 20, what="Kea to stop")
    wait_until(lambda: dhcpd(stack, "rack2")[0] == "off", 15, what="dhcpd off")
    assert stack.cli("admin", "rack-controller", "delete", rack1_id).returncode == 0
    del c6
