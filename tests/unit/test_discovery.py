"""ARP parsing (frames captured from arping in the lab), the bindings they prove, the
de-duplication into observations, and the rack's durable event queue."""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address as IP
from pathlib import Path

import pytest

from metalplane.rack.discovery import Bindings, bindings, parse_arp, parse_frame
from metalplane.rack.discovery.listener import ARP_FILTER
from metalplane.rack.event_queue import EventQueue

# Captured on the rack (10.73.0.2, 02:00:00:00:00:02) with the AF_PACKET listener; iputils arping.
REQUEST = bytes.fromhex("ffffffffffff525400123411080600010800060400015254001234110a49000bffffffffffff0a490002")
REPLY = bytes.fromhex("525400123411020000000002080600010800060400020200000000020a4900025254001234110a49000b")
GRATUITOUS = bytes.fromhex("ffffffffffff525400123411080600010800060400015254001234110a49000bffffffffffff0a49000b")
# A request that came with 802.1Q tag 10: the kernel hands the frame over untagged, the tag in auxdata.
TAGGED_UNTAGGED_BY_KERNEL = bytes.fromhex(
    "ffffffffffff525400123412080600010800060400015254001234120a4a000c0000000000000a4a0002"
)


def with_tag(frame: bytes, vid: int, tpid: bytes = b"\x81\x00") -> bytes:
    return frame[:12] + tpid + vid.to_bytes(2, "big") + frame[12:]


def test_request_reply_and_gratuitous():
    req = parse_frame(REQUEST)
    assert req is not None and (req.op, req.sender_mac, req.sender_ip, req.target_ip, req.vid) == (
        1,
        "52:54:00:12:34:11",
        IP("10.73.0.11"),
        IP("10.73.0.2"),
        None,
    )
    assert not req.gratuitous and bindings(req) == [(IP("10.73.0.11"), "52:54:00:12:34:11")]
    rep = parse_frame(REPLY)
    assert rep is not None and rep.op == 2
    assert bindings(rep) == [(IP("10.73.0.2"), "02:00:00:00:00:02"), (IP("10.73.0.11"), "52:54:00:12:34:11")]
    grat = parse_frame(GRATUITOUS)
    assert grat is not None and grat.gratuitous and bindings(grat) == [(IP("10.73.0.11"), "52:54:00:12:34:11")]


def test_vlan_from_auxdata_or_from_tags_in_the_frame():
    assert parse_frame(TAGGED_UNTAGGED_BY_KERNEL, vid=10).vid == 10
    assert parse_frame(with_tag(REQUEST, 20)).vid == 20
    qinq = with_tag(with_tag(REQUEST, 20), 100, b"\x88\xa8")  # outer S-tag 100, inner VLAN 20
    assert parse_frame(qinq).vid == 20
    assert parse_frame(with_tag(REQUEST, 20)[:16]) is None  # cut inside the header


def test_what_is_not_usable_arp_is_ignored():
    ipv4 = REQUEST[:12] + b"\x08\x00" + REQUEST[14:]
    assert parse_frame(ipv4) is None
    assert parse_frame(REQUEST[:30]) is None  # truncated
    assert parse_arp(REQUEST[14 : 14 + 4] + b"\x08\x04" + REQUEST[20:]) is None  # hlen 8
    assert parse_arp(b"\x00\x01\x08\x00\x06\x04\x00\x03" + REQUEST[22:]) is None  # op 3 (RARP)
    probe = parse_frame(REQUEST[:28] + b"\x00\x00\x00\x00" + REQUEST[32:])  # RFC 5227 probe
    assert probe is not None and bindings(probe) == []


def test_the_kernel_filter_keeps_arp_and_tagged_frames_only():
    def run(frame: bytes) -> int:  # a tiny interpreter of the classic BPF we attach
        pc, acc = 0, 0
        while True:
            code, jt, jf, k = ARP_FILTER[pc]
            if code == 0x28:
                acc = int.from_bytes(frame[k : k + 2], "big")
            elif code == 0x15:
                pc += jt if acc == k else jf
            elif code == 0x06:
                return k
            pc += 1

    assert run(REQUEST) > 0 and run(with_tag(REQUEST, 5)) > 0
    assert run(REQUEST[:12] + b"\x08\x00" + REQUEST[14:]) == 0 and run(REQUEST[:12] + b"\x86\xdd") == 0


def test_observations_new_moved_refreshed():
    seen = Bindings(refresh=600)
    ip = IP("10.73.0.11")
    first = seen.observe("pxe", None, ip, "52:54:00:12:34:11", 1000.0)
    assert first is not None and (first.event, first.previous_mac) == ("NEW", None)
    assert seen.observe("pxe", None, ip, "52:54:00:12:34:11", 1300.0) is None
    moved = seen.observe("pxe", None, ip, "52:54:00:99:99:99", 1301.0)
    assert moved is not None and (moved.event, moved.previous_mac) == ("MOVED", "52:54:00:12:34:11")
    assert seen.observe("pxe", None, ip, "52:54:00:99:99:99", 1900.0) is None
    refreshed = seen.observe("pxe", None, ip, "52:54:00:99:99:99", 1901.0)
    assert refreshed is not None and refreshed.event == "REFRESHED"
    # the same IP on another VLAN or interface is another binding
    assert seen.observe("pxe", 10, ip, "52:54:00:12:34:11", 1902.0).event == "NEW"
    assert seen.observe("eth2", None, ip, "52:54:00:12:34:11", 1902.0).event == "NEW"
    seen.forget("eth2")
    assert len(seen) == 2
    assert moved.as_event() == {
        "ip": "10.73.0.11",
        "mac": "52:54:00:99:99:99",
        "interface": "pxe",
        "vid": None,
        "time": 1301.0,
        "event": "MOVED",
        "previous_mac": "52:54:00:12:34:11",
    }


@pytest.mark.asyncio(loop_scope="session")
async def test_event_queue_replays_in_order_until_acked(tmp_path: Path):
    path = tmp_path / "q.sqlite3"
    q = EventQueue(path)
    assert q.append([{"n": i} for i in range(5)]) == 5
    batches = q.batches(max_events=2, linger=0)
    assert [e["n"] for e in await anext(batches)] == [0, 1]
    second = await anext(batches)
    q.ack(second[-1]["id"])
    q.rewind()  # the link dropped: what is unacked comes again
    assert [e["n"] for e in await anext(batches)] == [4]
    waiting = asyncio.ensure_future(anext(batches))  # nothing left: waits for the producer
    await asyncio.sleep(0.05)
    assert not waiting.done()
    q.append([{"n": 5}])
    assert [e["n"] for e in await asyncio.wait_for(waiting, 2)] == [5]
    q.close()
    again = EventQueue(path)  # a restart: the unacked ones, in order, same ids
    assert [e["n"] for e in again.pending()] == [4, 5] and len(again) == 2
    with pytest.raises(ZeroDivisionError):
        with again.transaction():
            again.insert({"n": 6})
            raise ZeroDivisionError  # rolled back: not stored
    assert len(again) == 2
    again.close()
