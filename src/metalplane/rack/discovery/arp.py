"""Pure: Ethernet frames -> ARP packets -> the (IP, MAC) bindings they prove.

Which bindings an ARP packet proves (MAAS's network monitor): the sender's
always (a request, a reply, a gratuitous announcement: sender IP = target IP);
the target's only in a reply (a request's target MAC is unknown, usually
zero). A probe (sender IP 0.0.0.0, RFC 5227) proves nothing. Only Ethernet
(hardware type 1, or 6 for IEEE 802) with IPv4 (0x0800), 6-byte and 4-byte
addresses, as MAAS accepts.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

ETH_P_ARP = 0x0806
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
OP_REQUEST, OP_REPLY = 1, 2
_HTYPES = (1, 6)


@dataclass(frozen=True)
class ArpPacket:
    op: int
    sender_mac: str
    sender_ip: ipaddress.IPv4Address
    target_mac: str
    target_ip: ipaddress.IPv4Address
    vid: int | None = None  #: the 802.1Q VLAN the frame came on, when known

    @property
    def gratuitous(self) -> bool:
        return self.sender_ip == self.target_ip


def mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def parse_frame(frame: bytes, vid: int | None = None) -> ArpPacket | None:
    """An Ethernet frame (802.1Q/802.1ad tags allowed) -> ArpPacket, or None if it is not a
    usable ARP packet. `vid`: a VLAN the kernel already took out of the frame (auxdata)."""
    if len(frame) < 14:
        return None
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    offset = 14
    while ethertype in (ETH_P_8021Q, ETH_P_8021AD):
        if len(frame) < offset + 4:
            return None
        tci, ethertype = struct.unpack_from("!HH", frame, offset)
        vid = tci & 0x0FFF  # the innermost tag is the VLAN
        offset += 4
    if ethertype != ETH_P_ARP:
        return None
    return parse_arp(frame[offset:], vid)


def parse_arp(payload: bytes, vid: int | None = None) -> ArpPacket | None:
    """An ARP payload (after the Ethernet header) -> ArpPacket, or None."""
    if len(payload) < 28:
        return None
    htype, ptype, hlen, plen, op = struct.unpack_from("!HHBBH", payload, 0)
    if htype not in _HTYPES or ptype != 0x0800 or hlen != 6 or plen != 4 or op not in (OP_REQUEST, OP_REPLY):
        return None
    sha, spa, tha, tpa = payload[8:14], payload[14:18], payload[18:24], payload[24:28]
    return ArpPacket(op, mac_text(sha), ipaddress.IPv4Address(spa), mac_text(tha), ipaddress.IPv4Address(tpa), vid)


def bindings(pkt: ArpPacket) -> list[tuple[ipaddress.IPv4Address, str]]:
    """The (ip, mac) pairs `pkt` proves."""
    out = []
    if not pkt.sender_ip.is_unspecified and pkt.sender_mac != "00:00:00:00:00:00":
        out.append((pkt.sender_ip, pkt.sender_mac))
    if (
        pkt.op == OP_REPLY
        and not pkt.gratuitous
        and not pkt.target_ip.is_unspecified
        and pkt.target_mac not in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff")
    ):
        out.append((pkt.target_ip, pkt.target_mac))
    return out
