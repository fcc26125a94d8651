"""Network discovery with real ARP: arping from hosts in their own namespaces, the rack's
AF_PACKET listener in its namespace, the durable queue across restarts."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import struct
import time
from collections.abc import Iterator

import pytest

from metalplane.rack.discovery import DiscoveryService
from tests.support.netlab import Host, Lab, list_netns

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(shutil.which("arping") is None, reason="iputils-arping not installed"),
    pytest.mark.timeout(120),
    pytest.mark.asyncio(loop_scope="session"),
]

RACK = "10.73.0.2"
HOSTS = {
    "h1": ("10.73.0.11", "52:54:00:12:34:11"),
    "h2": ("10.73.0.12", "52:54:00:12:34:12"),
    "h3": ("10.73.0.13", "52:54:00:12:34:13"),
}


@pytest.fixture
def lab() -> Iterator[Lab]:
    lab = Lab()
    lab.start()
    try:
        lab.add_network("pxe", "10.73.0.0/24")
        lab.add_network("other", "10.74.0.0/24")
        lab.add_host("rack", {"pxe": f"{RACK}/24", "other": "10.74.0.2/24"}, macs={"pxe": "02:00:00:00:00:02"})
        for name, (ip, mac) in HOSTS.items():
            lab.add_host(name, {"pxe": f"{ip}/24"}, macs={"pxe": mac})
        yield lab
    finally:
        lab.close()
        assert [n for n in list_netns() if n.startswith(lab.prefix + "-")] == []


def arping(host: Host, target: str, *extra: str) -> None:
    host.run(["arping", "-c", "1", "-w", "1", "-I", "pxe", *extra, target], check=False, timeout=10)


def tagged_arp(host: Host, vid: int, sender: str, target: str) -> None:
    """An 802.1Q-tagged ARP request from `host`, sent on a raw socket (this kernel has no VLAN devices)."""
    mac = bytes.fromhex(host.mac("pxe").replace(":", ""))
    frame = (
        b"\xff" * 6
        + mac
        + struct.pack("!HHH", 0x8100, vid, 0x0806)
        + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
        + mac
        + socket.inet_aton(sender)
        + b"\0" * 6
        + socket.inet_aton(target)
    )
    host.run(
        [
            "python3",
            "-c",
            "import socket,sys; s=socket.socket(socket.AF_PACKET, socket.SOCK_RAW); "
            f"s.bind(('pxe', 0)); s.send(bytes.fromhex('{frame.hex()}'))",
        ]
    )


async def until_events(svc: DiscoveryService, count: int, timeout: float = 10.0) -> list[dict]:
    t0 = time.monotonic()
    while len(svc.events.pending()) < count:
        assert time.monotonic() - t0 < timeout, svc.events.pending()
        await asyncio.sleep(0.05)
    return svc.events.pending()


async def test_arping_from_three_hosts_is_reported_once_each_and_survives_a_restart(lab: Lab):
    rack = lab.hosts["rack"]
    svc = DiscoveryService(lab.workdir / "discovery", netns=rack.netns)
    await svc.apply(True, {"pxe": None})
    assert svc.status()[0] == "running"
    t0 = time.monotonic()
    for name in HOSTS:
        await asyncio.to_thread(arping, lab.hosts[name], RACK)
    events = await until_events(svc, 3)
    took = time.monotonic() - t0
    assert {(e["ip"], e["mac"], e["interface"], e["vid"], e["event"]) for e in events} == {
        (ip, mac, "pxe", None, "NEW") for ip, mac in HOSTS.values()
    }
    assert all(abs(e["time"] - time.time()) < 30 for e in events)
    # again: nothing new (within the refresh interval); a gratuitous ARP from a new MAC is a move
    for name in HOSTS:
        await asyncio.to_thread(arping, lab.hosts[name], RACK)
    lab.hosts["h3"].run(["ip", "link", "set", "pxe", "address", "52:54:00:99:99:99"])
    await asyncio.to_thread(arping, lab.hosts["h3"], HOSTS["h3"][0], "-U")
    moved = (await until_events(svc, 4))[3]
    assert (moved["ip"], moved["mac"], moved["event"], moved["previous_mac"]) == (
        HOSTS["h3"][0],
        "52:54:00:99:99:99",
        "MOVED",
        HOSTS["h3"][1],
    )
    assert len(svc.events.pending()) == 4
    print(f"three arpings -> three observations queued in {took:.2f}s")

    # the region took the first two; the rack restarts: the rest comes again, in order
    svc.events.ack(events[1]["id"])
    await svc.stop()
    again = DiscoveryService(lab.workdir / "discovery", netns=rack.netns)
    try:
        left = again.events.pending()
        assert [e["ip"] for e in left] == [events[2]["ip"], HOSTS["h3"][0]]
        batches = again.events.batches(max_events=1)
        assert [(await anext(batches))[0]["id"] for _ in range(2)] == [e["id"] for e in left]
    finally:
        await again.stop()


async def test_disabled_stops_new_observations_and_vlan_tags_are_kept(lab: Lab):
    rack = lab.hosts["rack"]
    svc = DiscoveryService(lab.workdir / "discovery", netns=rack.netns)
    try:
        await svc.apply(True, {"pxe": None, "other": 30, "nosuch0": None})
        status, text = svc.status()
        assert status == "degraded" and "nosuch0" in text
        await asyncio.to_thread(tagged_arp, lab.hosts["h1"], 10, "10.80.0.11", "10.80.0.2")
        event = (await until_events(svc, 1))[0]
        assert (event["ip"], event["vid"], event["interface"]) == ("10.80.0.11", 10, "pxe")
        # network_discovery=disabled: the socket is closed, nothing new is queued
        await svc.apply(False, {"pxe": None})
        assert svc.status()[0] == "off" and not svc.listeners
        await asyncio.to_thread(arping, lab.hosts["h2"], RACK)
        await asyncio.sleep(0.5)
        assert len(svc.events) == 1
        await svc.apply(True, {"pxe": None})
        await asyncio.to_thread(arping, lab.hosts["h2"], RACK)
        assert (await until_events(svc, 2))[1]["ip"] == HOSTS["h2"][0]
        # the rack's own replies are not observations; nor is anything from a network it does not listen on
        assert {e["ip"] for e in svc.events.pending()} == {"10.80.0.11", HOSTS["h2"][0]}
    finally:
        await svc.stop()
