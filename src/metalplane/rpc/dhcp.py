"""DhcpState: what the region tells each rack to serve (the `GetDhcpState` reply).

Decoding validates everything a rack needs before it hands the state to Kea,
and reports every problem at once, each at its path
(``vlans[0].subnets[0].pools: a dynamic range would hand out gateway_ip 10.50.0.1``),
by raising `InvalidDhcpState`. On the wire::

    {
      "server_name": "rack1",        # this rack's name; required when any VLAN is HA
                                     #   (Kea's this-server-name; the peer knows it by it)
      "ha_port": 5280,               # optional: TCP port of each rack's HA listener
                                     #   (same on every rack; default 5280)
      "vlans": [{
         "vlan_id": 5001,            # the region's VLAN id (unique)
         "vid": 0, "mtu": 1500,      # mtu != 1500 is sent as option 26
         "interface": "eth1",        # the rack's interface on that VLAN (one VLAN each)
         "self_address": "10.50.0.2",# the rack's IP on it, inside one of the VLAN's subnets
         "role": "standalone" | "primary" | "secondary",
         "mode": "hot-standby" | "load-balancing",   # HA only; default hot-standby
         "peer": {"name": "rack2", "address": "10.50.0.3"} | None,   # HA only
         "subnets": [{
            "subnet_id": 1,          # unique, stable: leases are stored by it
            "cidr": "10.50.0.0/24",
            "gateway_ip": "10.50.0.1" | None,
            "dns_servers": [...], "ntp_servers": [...], "domain_name": "maas" | None,
            "search_list": ["maas", "lab.example"],         # option 119 (v6: 24); optional:
                                     #   absent or empty, the domain_name alone
            "pools": [["10.50.0.100", "10.50.0.199"]],      # dynamic ranges
            "reserved": [["10.50.0.150", "10.50.0.160"]],   # never handed out (cut out of pools)
            "lease_time": 600}],     # seconds
      }],
      "hosts": [{"mac": "52:54:00:..", "hostname": "node1" | None, "ip": None | "10.50.0.50"}],
      "problems": ["..."],           # what the region could not include, for the rack's dhcpd status
    }

``{"vlans": []}`` means DHCP off. Hosts with an ``ip`` are reserved in the
subnet holding it (and ignored by the others); hosts without one get their
hostname in every subnet. Unknown top-level fields are refused (a misspelt
setting must not silently change what is served; a newer region only sends a
new field to racks whose protocol version has it); unknown fields inside are
ignored.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass

from metalplane.rpc.fields import IFNAME_RE, matching, one_of, parsed
from metalplane.rpc.wire import InvalidMessage, Problems

DEFAULT_HA_PORT = 5280
#: Kea's DHCPv6 HA listener, on the racks' IPv4 addresses (a kea-dhcp6 of its own beside kea-dhcp4).
DEFAULT_HA_PORT6 = 5281
HA_ROLES = ("primary", "secondary")
ROLES = ("standalone", *HA_ROLES)
MODES = ("hot-standby", "load-balancing")

_MAC_RE = re.compile(r"^([0-9a-f]{2})([:-]?[0-9a-f]{2}){5}$")
_NORMAL_MAC_RE = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")
_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$", re.IGNORECASE)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class InvalidDhcpState(InvalidMessage):
    """The state cannot be served; `errors` lists every reason, each with its path."""

    code = "invalid-dhcp-state"
    what = "DHCP state"


# --------------------------------------------------------------------------- field types

IP = ipaddress.IPv4Address


def _none_as_empty(value: Any) -> Any:
    return [] if value is None else value


EmptyIfNone = BeforeValidator(_none_as_empty)  # None on the wire means an empty list
Ipv4 = Annotated[IP, parsed(IP, "an IPv4 address")]
Range = tuple[Ipv4, Ipv4]
Ipv4List = Annotated[list[Ipv4], EmptyIfNone]
RangeList = Annotated[list[Range], EmptyIfNone]
Network = Annotated[
    ipaddress.IPv4Network,
    parsed(ipaddress.IPv4Network, "an IPv4 network like 10.0.0.0/24 (host bits zero)"),
]
Ipv6 = Annotated[ipaddress.IPv6Address, parsed(ipaddress.IPv6Address, "an IPv6 address")]
Ipv6List = Annotated[list[Ipv6], EmptyIfNone]
Range6List = Annotated[list[tuple[Ipv6, Ipv6]], EmptyIfNone]
Network6 = Annotated[
    ipaddress.IPv6Network,
    parsed(ipaddress.IPv6Network, "an IPv6 network like fd00::/64 (host bits zero)"),
]
RackName = Annotated[str, matching(_NAME_RE, "a rack name ([A-Za-z0-9._-], up to 63)")]
Label = Annotated[str, matching(_LABEL_RE, "a DNS label")]
# Integers are strict: "5248" and True are refused, not converted.
VlanId = Annotated[int, Field(ge=1, le=2**31 - 1, strict=True)]
SubnetId = Annotated[int, Field(ge=1, le=2**32 - 2, strict=True)]
Vid = Annotated[int, Field(ge=0, le=4094, strict=True)]
Mtu = Annotated[int, Field(ge=552, le=65535, strict=True)]
Seconds = Annotated[int, Field(ge=1, le=2**31 - 1, strict=True)]
TcpPort = Annotated[int, Field(ge=1, le=65535, strict=True)]


def normalise_mac(value: Any) -> str | None:
    """ "52-54-00-AA-BB-01" -> "52:54:00:aa:bb:01"; None when it is not a MAC address."""
    if not isinstance(value, str):
        return None
    if _NORMAL_MAC_RE.match(value):  # as the region stores them: most hosts, fast
        return value
    mac = value.strip().lower()
    if not _MAC_RE.match(mac):
        return None
    digits = mac.replace(":", "").replace("-", "")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


# --------------------------------------------------------------------------- ranges


def subtract(pools: Iterable[Range], holes: Iterable[Range]) -> list[Range]:
    """`pools` minus every address in `holes`, as sorted, merged ranges."""
    cur = _merge(pools)
    for h0, h1 in _merge(holes):
        nxt: list[Range] = []
        for p0, p1 in cur:
            if h1 < p0 or h0 > p1:
                nxt.append((p0, p1))
                continue
            if p0 < h0:
                nxt.append((p0, h0 - 1))
            if h1 < p1:
                nxt.append((h1 + 1, p1))
        cur = nxt
    return cur


def _merge(ranges: Iterable[Range]) -> list[Range]:
    out: list[Range] = []
    for a, b in sorted(ranges):
        if out and int(a) <= int(out[-1][1]) + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _in_ranges(ip: IP, ranges: Iterable[Range]) -> bool:
    return any(a <= ip <= b for a, b in ranges)


def _usable(cidr: ipaddress.IPv4Network) -> Range:
    if cidr.prefixlen < 31:
        return (cidr.network_address + 1, cidr.broadcast_address - 1)
    return (cidr.network_address, cidr.broadcast_address)


def _check_ranges(ranges: list[Range], cidr: ipaddress.IPv4Network | None) -> None:
    """Each range starts before it ends (and, with `cidr`, lies in its usable addresses)."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    for i, (start, end) in enumerate(ranges):
        if start > end:
            found.append(((i,), f"range {start}-{end} ends before it starts"))
        elif cidr is not None:
            low, high = _usable(cidr)
            if start < low or end > high:
                found.append(((i,), f"range {start}-{end} is not inside {cidr}'s usable addresses {low}-{high}"))
    if found:
        raise Problems(found)


# --------------------------------------------------------------------------- the model


def _domain_name(value: str | None) -> str | None:
    if value is None:
        return None
    if not (value and len(value) <= 253 and all(_LABEL_RE.match(p) for p in value.rstrip(".").split("."))):
        raise ValueError(f"expected a domain name, got {value!r}")
    return value.rstrip(".")


def _domain_names(value: list[str]) -> list[str]:
    return [_domain_name(name) or "" for name in value]


DomainName = Annotated[str | None, AfterValidator(_domain_name)]
DomainList = Annotated[list[str], EmptyIfNone, AfterValidator(_domain_names)]


def _ha_mode(value: str | None, info: ValidationInfo) -> str | None:
    """None unless the role is HA; then hot-standby unless said otherwise."""
    if info.data.get("role") not in HA_ROLES:
        return None
    if (value or "hot-standby") not in MODES:
        raise ValueError(f"expected one of {', '.join(MODES)}, got {value!r}")
    return value or "hot-standby"


def _non_empty(value: list[Any]) -> list[Any]:
    if not value:
        raise ValueError("expected a non-empty list of subnets")
    return value


class _SearchDomains:
    """What a subnet served by kea-dhcp4 (Subnet) and one served by kea-dhcp6 (Subnet6) hand out
    as the DNS search list (their dataclass fields)."""

    domain_name: str | None
    search_list: list[str]

    @property
    def searched(self) -> list[str]:
        """The DNS search list handed out: the region's, or (an older region's state) the domain alone."""
        return self.search_list or ([self.domain_name] if self.domain_name else [])


@dataclass(frozen=True)
class Subnet(_SearchDomains):
    subnet_id: SubnetId
    cidr: Network
    gateway_ip: Ipv4 | None = None
    dns_servers: Ipv4List = Field(default_factory=list)
    ntp_servers: Ipv4List = Field(default_factory=list)
    domain_name: DomainName = None
    search_list: DomainList = Field(default_factory=list)  # option 119 (domain-search)
    pools: RangeList = Field(default_factory=list)  # dynamic ranges
    reserved: RangeList = Field(default_factory=list)  # cut out of the pools
    lease_time: Seconds = 600

    @field_validator("pools")
    @classmethod
    def _pools(cls, value: list[Range], info: ValidationInfo) -> list[Range]:
        _check_ranges(value, info.data.get("cidr"))
        return value

    @field_validator("reserved")
    @classmethod
    def _reserved(cls, value: list[Range]) -> list[Range]:
        _check_ranges(value, None)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Subnet:
        found: list[tuple[tuple[str | int, ...], str]] = []
        if self.gateway_ip is not None and self.gateway_ip not in self.cidr:
            found.append((("gateway_ip",), f"{self.gateway_ip} is not in {self.cidr}"))
        pools = self.pools
        for a in range(len(pools)):
            for b in range(a + 1, len(pools)):
                if pools[a][0] <= pools[b][1] and pools[b][0] <= pools[a][1]:
                    found.append(
                        (
                            ("pools",),
                            f"dynamic ranges {pools[a][0]}-{pools[a][1]} and {pools[b][0]}-{pools[b][1]} overlap",
                        )
                    )
        problem_ = self.hands_out("gateway_ip", self.gateway_ip)
        if problem_:
            found.append((("pools",), problem_))
        if found:
            raise Problems(found)
        return self

    @cached_property
    def dynamic(self) -> tuple[Range, ...]:
        """What Kea hands out: the pools with the reserved ranges cut out."""
        return tuple(subtract(self.pools, self.reserved))

    def hands_out(self, what: str, address: IP | None) -> str | None:
        """The problem when a dynamic range would hand out `address` (a router's, a rack's)."""
        if address is not None and _in_ranges(address, self.dynamic):
            return f"a dynamic range would hand out {what} {address}; exclude it (or mark it reserved)"
        return None


@dataclass(frozen=True)
class Peer:
    """The other rack of a VLAN's HA pair: `name`, its Kea server name (its own `server_name`);
    `address`, its IPv4 address on the VLAN, where its HA listener answers (`ha_port`, `ha_port6`)."""

    name: RackName
    address: Ipv4


@dataclass(frozen=True)
class _ServedVlan:
    """The field checks a VLAN served by kea-dhcp4 (Vlan) and one served by kea-dhcp6 (Vlan6) share."""

    @field_validator("mode", check_fields=False)
    @classmethod
    def _mode(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _ha_mode(value, info)

    @field_validator("subnets", check_fields=False)
    @classmethod
    def _some_subnets(cls, value: list[Any]) -> list[Any]:
        return _non_empty(value)


def _pairing_problems(
    role: str, peer: Peer | None, self_address: IP | None, lacking: str | None
) -> list[tuple[tuple[str | int, ...], str]]:
    """What is wrong with a VLAN's HA pairing; `lacking` names what an HA role misses (None: nothing)."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    if role in HA_ROLES and lacking is not None:
        found.append((("peer",), lacking))
    if role not in HA_ROLES and peer is not None:
        found.append((("peer",), "a standalone VLAN has no peer (set role primary/secondary for HA)"))
    if peer is not None and peer.address == self_address:
        found.append((("peer", "address"), f"the peer's address {peer.address} is this rack's own"))
    return found


@dataclass(frozen=True)
class Vlan(_ServedVlan):
    vlan_id: VlanId
    interface: Annotated[str, matching(IFNAME_RE, "an interface name")]
    self_address: Ipv4
    vid: Vid = 0
    mtu: Mtu = 1500
    role: Annotated[str, one_of(ROLES)] = "standalone"
    mode: str | None = Field(default=None, validate_default=True)  # None unless role is HA
    peer: Peer | None = None
    subnets: Annotated[list[Subnet], EmptyIfNone] = Field(default_factory=list, validate_default=True)

    @model_validator(mode="after")
    def _consistent(self) -> Vlan:
        lacking = f"role {self.role} needs a peer {{name, address}}, got None" if self.peer is None else None
        found = _pairing_problems(self.role, self.peer, self.self_address, lacking)
        if not any(self.self_address in s.cidr for s in self.subnets):
            found.append(
                (
                    ("self_address",),
                    f"{self.self_address} is in none of the VLAN's subnets "
                    f"({', '.join(str(s.cidr) for s in self.subnets)})",
                )
            )
        if self.peer is not None and not any(self.peer.address in s.cidr for s in self.subnets):
            found.append((("peer", "address"), f"{self.peer.address} is in none of the VLAN's subnets"))
        for j, s in enumerate(self.subnets):
            for what, address in (
                ("the rack's own address", self.self_address),
                ("the peer's address", self.peer.address if self.peer else None),
            ):
                problem_ = s.hands_out(what, address)
                if problem_:
                    found.append((("subnets", j, "pools"), problem_))
        if found:
            raise Problems(found)
        return self


@dataclass(frozen=True)
class Subnet6(_SearchDomains):
    """An IPv6 subnet served by kea-dhcp6 (addresses only: no prefix delegation)."""

    subnet_id: SubnetId
    cidr: Network6
    dns_servers: Ipv6List = Field(default_factory=list)  # option 23
    ntp_servers: Ipv6List = Field(default_factory=list)  # option 31 (SNTP servers)
    domain_name: DomainName = None
    search_list: DomainList = Field(default_factory=list)  # option 24 (domain search list)
    pools: Range6List = Field(default_factory=list)
    reserved: Range6List = Field(default_factory=list)
    lease_time: Seconds = 600

    @model_validator(mode="after")
    def _consistent(self) -> Subnet6:
        found: list[tuple[tuple[str | int, ...], str]] = []
        for i, (start, end) in enumerate(self.pools):
            if start > end:
                found.append((("pools", i), f"range {start}-{end} ends before it starts"))
            elif start not in self.cidr or end not in self.cidr:
                found.append((("pools", i), f"range {start}-{end} is not inside {self.cidr}"))
        ordered = sorted(self.pools)
        for (a0, a1), (b0, b1) in itertools.pairwise(ordered):
            if b0 <= a1:
                found.append((("pools",), f"dynamic ranges {a0}-{a1} and {b0}-{b1} overlap"))
        if found:
            raise Problems(found)
        return self

    @cached_property
    def dynamic(self) -> tuple[tuple[ipaddress.IPv6Address, ipaddress.IPv6Address], ...]:
        return tuple(subtract(self.pools, self.reserved))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Vlan6(_ServedVlan):
    """A VLAN this rack serves over DHCPv6. Its HA partner is reached on IPv4, like kea-dhcp4's:
    `self_address` is the rack's IPv4 address on the VLAN (its HA listener; needed for HA)."""

    vlan_id: VlanId
    interface: Annotated[str, matching(IFNAME_RE, "an interface name")]
    self_address: Ipv4 | None = None
    vid: Vid = 0
    role: Annotated[str, one_of(ROLES)] = "standalone"
    mode: str | None = Field(default=None, validate_default=True)
    peer: Peer | None = None
    subnets: Annotated[list[Subnet6], EmptyIfNone] = Field(default_factory=list, validate_default=True)

    @model_validator(mode="after")
    def _consistent(self) -> Vlan6:
        lacking = None
        if self.peer is None or self.self_address is None:
            lacking = f"role {self.role} needs a peer and this rack's IPv4 self_address (the HA listener)"
        found = _pairing_problems(self.role, self.peer, self.self_address, lacking)
        if found:
            raise Problems(found)
        return self


@dataclass(frozen=True)
class Host:
    mac: str  # normalised: "52:54:00:12:34:56"
    hostname: Label | None = None
    ip: Ipv4 | None = None

    @field_validator("mac", mode="plain")
    @classmethod
    def _mac(cls, value: Any) -> str:
        mac = normalise_mac(value)
        if mac is None:
            raise ValueError(f"expected a MAC address like 52:54:00:12:34:56, got {value!r}")
        return mac


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class DhcpState:
    wire_root: ClassVar[str] = "state"
    invalid: ClassVar[type[InvalidMessage]] = InvalidDhcpState

    server_name: RackName | None = None
    ha_port: TcpPort = DEFAULT_HA_PORT
    vlans: Annotated[list[Vlan], EmptyIfNone] = Field(default_factory=list)
    hosts: Annotated[list[Host], EmptyIfNone] = Field(default_factory=list)
    problems: Annotated[list[str], EmptyIfNone] = Field(default_factory=list)
    # Protocol 2: DHCPv6 (sent only to racks whose agreed protocol has it: unknown fields are refused).
    vlans6: Annotated[list[Vlan6], EmptyIfNone] = Field(default_factory=list)
    ha_port6: TcpPort = DEFAULT_HA_PORT6

    @property
    def enabled(self) -> bool:
        return bool(self.vlans)

    @model_validator(mode="after")
    def _consistent(self) -> DhcpState:
        found = (
            _vlan_problems(self.vlans, self.server_name)
            + _host_problems(self.hosts, self.vlans)
            + _vlan_problems(self.vlans6, self.server_name, "vlans6")
        )
        if found:
            raise Problems(found)
        return self


def _vlan_problems(
    vlans: Sequence[Vlan | Vlan6], server_name: str | None, root: str = "vlans"
) -> list[tuple[tuple[str | int, ...], str]]:
    found: list[tuple[tuple[str | int, ...], str]] = []
    seen_ids: set[int] = set()
    seen_ifaces: dict[str, int] = {}
    seen_subnet_ids: dict[int, str] = {}
    nets: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int]] = []
    for i, v in enumerate(vlans):
        if v.vlan_id in seen_ids:
            found.append(((root, i, "vlan_id"), f"vlan_id {v.vlan_id} appears twice"))
        seen_ids.add(v.vlan_id)
        if v.interface in seen_ifaces:
            found.append(
                ((root, i, "interface"), f"interface {v.interface} already serves vlan {seen_ifaces[v.interface]}")
            )
        seen_ifaces[v.interface] = v.vlan_id
        if v.role != "standalone" and not server_name:
            found.append(
                ((root, i, "role"), f"role {v.role} needs the state's server_name (this rack's name, the HA peer name)")
            )
        if v.peer is not None and server_name and v.peer.name == server_name:
            found.append(((root, i, "peer", "name"), f"the peer {v.peer.name} is this rack itself"))
        subnets: Sequence[Subnet | Subnet6] = v.subnets
        for j, s in enumerate(subnets):
            where: tuple[str | int, ...] = (root, i, "subnets", j)
            if s.subnet_id in seen_subnet_ids:
                found.append(
                    (
                        where + ("subnet_id",),
                        f"subnet_id {s.subnet_id} ({s.cidr}) is also used by {seen_subnet_ids[s.subnet_id]}",
                    )
                )
            seen_subnet_ids[s.subnet_id] = str(s.cidr)
            for other, owner in nets:
                if s.cidr.overlaps(other):
                    found.append((where + ("cidr",), f"subnet {s.cidr} overlaps {other} (vlan {owner})"))
            nets.append((s.cidr, v.vlan_id))
    # One HA relationship per (peer, mode): the same peer must have one role toward us.
    roles: dict[tuple[str, str | None], set[str]] = {}
    for v in vlans:
        if v.peer is not None:
            roles.setdefault((v.peer.name, v.mode), set()).add(v.role)
    for (peer, mode), rs in roles.items():
        if len(rs) > 1:
            found.append(
                (
                    (root,),
                    f"this rack is both primary and secondary toward {peer} in {mode} mode; "
                    f"Kea allows one relationship per server pair and mode: make the roles agree",
                )
            )
    return found


def _host_problems(hosts: list[Host], vlans: list[Vlan]) -> list[tuple[tuple[str | int, ...], str]]:
    found: list[tuple[tuple[str | int, ...], str]] = []
    by_mac: dict[str, int] = {}
    by_ip: dict[IP, str] = {}
    for i, h in enumerate(hosts):
        if h.mac in by_mac:
            found.append((("hosts", i, "mac"), f"{h.mac} is also hosts[{by_mac[h.mac]}]"))
            continue
        by_mac[h.mac] = i
        if h.ip is None:
            continue
        if h.ip in by_ip:
            found.append((("hosts", i, "ip"), f"{h.ip} is reserved for both {by_ip[h.ip]} and {h.mac}"))
            continue
        by_ip[h.ip] = h.mac
        for v in vlans:
            for s in v.subnets:
                if h.ip in (s.cidr.network_address, s.cidr.broadcast_address) and s.cidr.prefixlen < 31:
                    found.append((("hosts", i, "ip"), f"{h.ip} is {s.cidr}'s network or broadcast address"))
                if h.ip in (v.self_address, s.gateway_ip) or (v.peer and h.ip == v.peer.address):
                    found.append((("hosts", i, "ip"), f"{h.ip} belongs to a rack or gateway on vlan {v.vlan_id}"))
    return found
