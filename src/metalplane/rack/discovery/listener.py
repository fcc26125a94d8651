"""ARP from the wire: one AF_PACKET socket per interface, read on the event loop.

The socket never asks for promiscuous mode: it sees what the interface
receives anyway (broadcast requests, gratuitous announcements, replies to
this host), which is how machines announce themselves, without listening to
other hosts' unicast traffic. Frames this host sends are skipped.

VLANs: the kernel takes an 802.1Q tag out of a frame as it arrives, and, when
no VLAN device claims it, clears it before protocol handlers (an ETH_P_ARP
socket) see the frame; only the taps that see every frame (ETH_P_ALL) get
the VLAN, in the packet's auxiliary data (PACKET_AUXDATA,
TP_STATUS_VLAN_VALID). So the socket is an ETH_P_ALL tap with a kernel
filter (classic BPF) that passes only ARP frames: the rack's TFTP and HTTP
traffic never wakes this process.

`netns` opens the sockets inside a named network namespace (a thread enters
it with setns(2) just for that; a socket stays in the namespace it was made
in): the tests put each rack in one.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path

from metalplane.rack.discovery.arp import ArpPacket, parse_frame

SOL_PACKET = 263
SO_ATTACH_FILTER = 26
ETH_P_ALL = 0x0003
PACKET_AUXDATA = 8
PACKET_OUTGOING = 4
TP_STATUS_VLAN_VALID = 1 << 4
CLONE_NEWNET = 0x40000000
_AUX = struct.Struct("=IIIHHHH")  # struct tpacket_auxdata
#: classic BPF: ethertype (offset 12) is ARP, or a VLAN tag still in the frame -> keep; else drop
ARP_FILTER = [
    (0x28, 0, 0, 12),  # ldh [12]
    (0x15, 3, 0, 0x0806),  # jeq #ARP -> keep
    (0x15, 2, 0, 0x8100),  # jeq #802.1Q -> keep
    (0x15, 1, 0, 0x88A8),  # jeq #802.1ad -> keep
    (0x06, 0, 0, 0),  # drop
    (0x06, 0, 0, 0x40000),  # keep: ret #262144
]


def open_socket(interface: str, netns: str | None = None) -> socket.socket:
    """A non-blocking AF_PACKET socket receiving the ARP of `interface` (OSError if it cannot)."""
    if netns is None:
        return _open(interface)
    result: list[socket.socket | BaseException] = []

    def inside() -> None:
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            fd = os.open(Path("/run/netns") / netns, os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {netns}: {os.strerror(err)}")
            finally:
                os.close(fd)
            result.append(_open(interface))
        except BaseException as e:  # handed to the caller
            result.append(e)

    thread = threading.Thread(target=inside, name=f"netns-{netns}")  # a thread of its own: it ends in netns
    thread.start()
    thread.join()
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


def _attach_filter(sock: socket.socket) -> None:
    program = b"".join(struct.pack("=HBBI", *ins) for ins in ARP_FILTER)
    buf = ctypes.create_string_buffer(program)
    fprog = struct.pack("=HxxxxxxQ", len(ARP_FILTER), ctypes.addressof(buf))  # struct sock_fprog
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def _open(interface: str) -> socket.socket:
    # protocol 0 receives nothing until bind: the filter is in place before the first frame
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        _attach_filter(sock)
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        sock.bind((interface, ETH_P_ALL))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def read_packets(sock: socket.socket, limit: int = 256) -> list[ArpPacket]:
    """The ARP packets waiting on `sock` (up to `limit`), without blocking."""
    out = []
    for _ in range(limit):
        try:
            data, ancdata, _flags, addr = sock.recvmsg(2048, socket.CMSG_SPACE(_AUX.size))
        except (BlockingIOError, InterruptedError):
            break
        if addr[2] == PACKET_OUTGOING:
            continue
        vid = None
        for level, kind, raw in ancdata:
            if level == SOL_PACKET and kind == PACKET_AUXDATA and len(raw) >= _AUX.size:
                status, _len, _snap, _mac, _net, tci, _tpid = _AUX.unpack_from(raw)
                if status & TP_STATUS_VLAN_VALID and tci & 0x0FFF:  # VLAN 0: priority tag only
                    vid = tci & 0x0FFF
        pkt = parse_frame(data, vid)
        if pkt is not None:
            out.append(pkt)
    return out


class ArpListener:
    """Reads ARP on one interface and hands each burst of packets to `on_packets`."""

    def __init__(self, interface: str, on_packets: Callable[[str, list[ArpPacket]], None], *, netns: str | None = None):
        self.interface = interface
        self.on_packets = on_packets
        self.sock = open_socket(interface, netns)
        self.packets = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        loop.add_reader(self.sock.fileno(), self._readable)

    def _readable(self) -> None:
        packets = read_packets(self.sock)
        if packets:
            self.packets += len(packets)
            self.on_packets(self.interface, packets)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.sock.fileno())
            self._loop = None
        self.sock.close()
