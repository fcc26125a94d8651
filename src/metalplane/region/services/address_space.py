"""A subnet's addresses as MAAS accounts for them: what is taken, what is free, how
much is used, and where a new dynamic range fits. Pure functions over integers.

The facts are MAAS's (IPRangeStatistics): an IPv4 subnet larger than /31 does not
count its network and broadcast addresses; the gateway, every reserved or
dynamic range and every address a node or a lease holds are unavailable; usage
is unavailable / total. A suggested dynamic range is taken from the top of the
largest free block, never more than a quarter of the subnet nor more than half
of what is still free, and is offered only while the subnet has no dynamic range.

A new address (a static or AUTO link, a reservation) is MAAS's
get_next_ip_for_allocation: the first address of the *smallest* free block (ties:
the lowest), so large blocks stay whole. A managed subnet hands out anything
outside its ranges; an unmanaged one only inside its reserved ranges. An IPv6
subnet keeps its router anycast address (::0, below /127) and, as a /64,
::1 to ::ffff:ffff (kept for MAAS's future per-node scheme) out of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network


@dataclass(frozen=True)
class Block:
    """Addresses first..last (inclusive), as integers."""

    first: int
    last: int

    @property
    def size(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True)
class Usage:
    total: int
    unavailable: int
    largest_free: int

    @property
    def available(self) -> int:
        return self.total - self.unavailable

    @property
    def percent(self) -> int:
        """Unavailable as a whole percentage, rounded as MAAS's usage_string ("{:.0%}")."""
        return round(100 * self.unavailable / self.total) if self.total else 100


def usable_block(cidr: str) -> Block:
    """The addresses a subnet can hand out: IPv4 without network and broadcast (above /31)."""
    network = ip_network(cidr)
    first, last = int(network.network_address), int(network.broadcast_address)
    if network.version == 4 and network.num_addresses > 2:
        first, last = first + 1, last - 1
    return Block(first, last)


def _merge(blocks: Iterable[Block]) -> list[Block]:
    merged: list[Block] = []
    for block in sorted(blocks, key=lambda b: b.first):
        if merged and block.first <= merged[-1].last + 1:
            if block.last > merged[-1].last:
                merged[-1] = Block(merged[-1].first, block.last)
        else:
            merged.append(block)
    return merged


def taken_blocks(cidr: str, ranges: Iterable[tuple[str, str]], addresses: Iterable[str]) -> list[Block]:
    """Ranges and single addresses, clipped to the usable block and merged, in order."""
    usable = usable_block(cidr)
    blocks = [Block(int(ip_address(start)), int(ip_address(end))) for start, end in ranges]
    blocks += [Block(int(ip_address(a)), int(ip_address(a))) for a in addresses]
    clipped = [Block(max(b.first, usable.first), min(b.last, usable.last)) for b in blocks]
    return _merge(b for b in clipped if b.first <= b.last)


def free_blocks(cidr: str, taken: list[Block]) -> list[Block]:
    """What `taken_blocks` leaves of the usable block, in order."""
    usable = usable_block(cidr)
    free, cursor = [], usable.first
    for block in taken:
        if block.first > cursor:
            free.append(Block(cursor, block.first - 1))
        cursor = max(cursor, block.last + 1)
    if cursor <= usable.last:
        free.append(Block(cursor, usable.last))
    return free


def usage(cidr: str, ranges: Iterable[tuple[str, str]], addresses: Iterable[str]) -> Usage:
    taken = taken_blocks(cidr, ranges, addresses)
    total = usable_block(cidr).size
    free = free_blocks(cidr, taken)
    return Usage(total, sum(b.size for b in taken), max((b.size for b in free), default=0))


def suggest_dynamic_range(
    cidr: str, ranges: Iterable[tuple[str, str]], addresses: Iterable[str]
) -> tuple[str, str] | None:
    """(start, end) for a new dynamic range from the largest free block, or None when no
    sensible block is left. `ranges` are the subnet's ranges of any type, `addresses`
    its gateway and the addresses nodes and leases hold. Ties go to the lowest block."""
    taken = taken_blocks(cidr, ranges, addresses)
    free = free_blocks(cidr, taken)
    if not free:
        return None
    largest = max(free, key=lambda b: (b.size, -b.first))
    total = usable_block(cidr).size
    available = sum(b.size for b in free)
    quarter, half_free = total >> 2, available >> 1
    first = largest.first
    if largest.size > quarter:
        first = largest.last - quarter  # at most a quarter of the subnet (and one)
    elif largest.size >= half_free:
        first = largest.last - half_free + 1  # at most half of what is left
    if first >= largest.last:
        return None
    return address_text(cidr, first), address_text(cidr, largest.last)


def address_text(cidr: str, value: int) -> str:
    """An address of this subnet's family as text (::5 stays IPv6)."""
    kind = IPv4Address if ip_network(cidr).version == 4 else IPv6Address
    return str(kind(value))


def _ipv6_kept(cidr: str) -> list[tuple[str, str]]:
    network = ip_network(cidr)
    if network.version != 6:
        return []
    first = int(network.network_address)
    kept = [(address_text(cidr, first), address_text(cidr, first))] if network.prefixlen < 127 else []
    if network.prefixlen == 64:
        kept.append((address_text(cidr, first + 1), address_text(cidr, first + 0xFFFFFFFF)))
    return kept


def next_free(
    cidr: str,
    ranges: Iterable[tuple[str, str, str]],
    addresses: Iterable[str],
    managed: bool = True,
) -> str | None:
    """The address to hand out next, or None when the subnet is full. `ranges` are
    (type, start, end) with type "dynamic" or "reserved"; `addresses` what is in use
    (held, leased, the gateway, the subnet's DNS servers, static routes' gateways)."""
    ranges = list(ranges)
    kept = [(start, end) for kind, start, end in ranges if managed or kind != "reserved"]
    taken = taken_blocks(cidr, kept + _ipv6_kept(cidr), addresses)
    free = free_blocks(cidr, taken)
    if not managed:
        allowed = [Block(int(ip_address(s)), int(ip_address(e))) for kind, s, e in ranges if kind == "reserved"]
        free = _merge(
            Block(max(f.first, a.first), min(f.last, a.last))
            for f in free
            for a in allowed
            if max(f.first, a.first) <= min(f.last, a.last)
        )
    if not free:
        return None
    return address_text(cidr, min(free, key=lambda b: (b.size, b.first)).first)
