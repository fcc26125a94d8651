"""Pure functions: a DhcpState (the region's wire dict) -> validated model ->
one kea-dhcp4 configuration per Kea instance.

Nothing here touches the disk, the network or a process; `kea.py` runs what
this renders. The wire format is documented in the package docstring.

Instances: Kea 2.2 supports one HA relationship per server, so VLANs are
grouped into one kea-dhcp4 process per distinct (role, peer, mode), plus one
standalone process for every VLAN this rack serves alone.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

HOOKS_DIR = "/usr/lib/x86_64-linux-gnu/kea/hooks"
DEFAULT_HA_PORT = 5280

#: HA timers (milliseconds) that fail over in ~3.3 s (FIELD-NOTES: Kea HA).
HA_TIMERS = {
    "heartbeat-delay": 1000,
    "max-response-delay": 3000,
    "max-ack-delay": 1000,
    "max-unacked-clients": 0,
}

#: PXE client architectures (option 93, RFC 4578 / IANA) -> loader key in boot.loaders.
ARCHES: dict[str, tuple[int, ...]] = {
    "bios": (0x0000,),
    "uefi-x64": (0x0007, 0x0009),
    "uefi-arm64": (0x000B,),
}

ROLES = ("standalone", "primary", "secondary")
MODES = ("hot-standby", "load-balancing")

_MAC_RE = re.compile(r"^([0-9a-f]{2})([:-]?[0-9a-f]{2}){5}$")
_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$", re.IGNORECASE)
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class InvalidDhcpState(ValueError):
    """The state cannot be served; `errors` lists every reason, each with its path."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("invalid DHCP state:\n  " + "\n  ".join(self.errors))


# --------------------------------------------------------------------------- model

IP = ipaddress.IPv4Address
Range = tuple[IP, IP]


@dataclass(frozen=True)
class Subnet:
    subnet_id: int
    cidr: ipaddress.IPv4Network
    gateway_ip: IP | None
    dns_servers: tuple[IP, ...]
    ntp_servers: tuple[IP, ...]
    domain_name: str | None
    pools: tuple[Range, ...]          #: dynamic ranges with the reserved ones cut out
    lease_time: int


@dataclass(frozen=True)
class Peer:
    name: str
    address: IP


@dataclass(frozen=True)
class Vlan:
    vlan_id: int
    vid: int
    mtu: int
    interface: str
    self_address: IP
    role: str
    mode: str | None
    peer: Peer | None
    subnets: tuple[Subnet, ...]


@dataclass(frozen=True)
class Host:
    mac: str                          #: normalised "52:54:00:12:34:56"
    hostname: str | None
    ip: IP | None


@dataclass(frozen=True)
class Boot:
    """What PXE and iPXE clients are sent to. Each VLAN's clients go to this rack's own
    address on that VLAN: TFTP there (next-server), iPXE to http://ADDRESS:http_port/ipxe.cfg."""
    http_port: int | None                     #: None: no iPXE script URL
    loaders: tuple[tuple[str, str], ...]      #: (arch key, file), in ARCHES order

    @property
    def serves(self) -> bool:
        return self.http_port is not None or bool(self.loaders)


IPXE_PATH = "/ipxe.cfg"


def ipxe_url(address: IP, http_port: int) -> str:
    return f"http://{address}:{http_port}{IPXE_PATH}"


@dataclass(frozen=True)
class State:
    server_name: str | None
    ha_port: int
    vlans: tuple[Vlan, ...]
    hosts: tuple[Host, ...]
    boot: Boot

    @property
    def enabled(self) -> bool:
        return bool(self.vlans)


@dataclass(frozen=True)
class Instance:
    """One kea-dhcp4 process: its VLANs and (for HA) its one relationship."""

    name: str                         #: stable, filesystem-safe: "standalone", "ha-primary-rack2-hot-standby"
    role: str                         #: "standalone" | "primary" | "secondary"
    mode: str | None
    peer: Peer | None
    vlans: tuple[Vlan, ...]
    ha_listen: tuple[IP, int] | None = None   #: this server's HA URL (address, port)
    ha_peer: tuple[IP, int] | None = None     #: the partner's HA URL

    @property
    def subnets(self) -> tuple[Subnet, ...]:
        return tuple(s for v in self.vlans for s in v.subnets)


@dataclass(frozen=True)
class Paths:
    """Where an instance's files live (decided by kea.py)."""

    lease_file: str
    control_socket: str


@dataclass
class _Errors:
    items: list[str] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")


# --------------------------------------------------------------------------- validation

def _ip(value: Any, where: str, errs: _Errors, what: str = "an IPv4 address") -> IP | None:
    if not isinstance(value, str):
        errs.add(where, f"expected {what}, got {value!r}")
        return None
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        errs.add(where, f"expected {what}, got {value!r}")
        return None


def _int(value: Any, where: str, errs: _Errors, lo: int, hi: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        errs.add(where, f"expected an integer in [{lo}, {hi}], got {value!r}")
        return None
    return value


def _ips(values: Any, where: str, errs: _Errors) -> tuple[IP, ...]:
    if values is None:
        return ()
    if not isinstance(values, list):
        errs.add(where, f"expected a list of IPv4 addresses, got {values!r}")
        return ()
    out = [_ip(v, f"{where}[{i}]", errs) for i, v in enumerate(values)]
    return tuple(a for a in out if a is not None)


def _ranges(values: Any, where: str, errs: _Errors, cidr: ipaddress.IPv4Network | None,
            inside: bool) -> list[Range]:
    if values is None:
        return []
    if not isinstance(values, list):
        errs.add(where, f"expected a list of [start, end] pairs, got {values!r}")
        return []
    out: list[Range] = []
    for i, pair in enumerate(values):
        w = f"{where}[{i}]"
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            errs.add(w, f"expected [start, end], got {pair!r}")
            continue
        start, end = _ip(pair[0], w, errs), _ip(pair[1], w, errs)
        if start is None or end is None:
            continue
        if start > end:
            errs.add(w, f"range {start}-{end} ends before it starts")
            continue
        if inside and cidr is not None:
            usable = (cidr.network_address + 1, cidr.broadcast_address - 1) if cidr.prefixlen < 31 else \
                (cidr.network_address, cidr.broadcast_address)
            if start < usable[0] or end > usable[1]:
                errs.add(w, f"range {start}-{end} is not inside {cidr}'s usable addresses "
                            f"{usable[0]}-{usable[1]}")
                continue
        out.append((start, end))
    return out


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


def normalise_mac(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    mac = value.strip().lower()
    if not _MAC_RE.match(mac):
        return None
    digits = mac.replace(":", "").replace("-", "")
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def parse_state(raw: Mapping[str, Any] | None) -> State:
    """Validate the wire dict; raise InvalidDhcpState listing every problem."""
    errs = _Errors()
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise InvalidDhcpState([f"state: expected a dict, got {type(raw).__name__}"])
    known = {"server_name", "ha_port", "vlans", "hosts", "boot"}
    for key in raw:
        if key not in known:
            errs.add("state", f"unknown field {key!r} (known: {', '.join(sorted(known))})")

    server_name = raw.get("server_name")
    if server_name is not None and not (isinstance(server_name, str) and _NAME_RE.match(server_name)):
        errs.add("server_name", f"expected a rack name ([A-Za-z0-9._-], up to 63), got {server_name!r}")
        server_name = None
    ha_port = raw.get("ha_port", DEFAULT_HA_PORT)
    ha_port = _int(ha_port, "ha_port", errs, 1, 65535) or DEFAULT_HA_PORT

    vlans: list[Vlan] = []
    raw_vlans = raw.get("vlans") or []
    if not isinstance(raw_vlans, list):
        errs.add("vlans", "expected a list")
        raw_vlans = []
    for i, rv in enumerate(raw_vlans):
        vlan = _parse_vlan(rv, f"vlans[{i}]", errs)
        if vlan is not None:
            vlans.append(vlan)
    _check_vlans(vlans, server_name, errs)

    hosts = _parse_hosts(raw.get("hosts") or [], errs, vlans)
    boot = _parse_boot(raw.get("boot") or {}, errs)
    if errs.items:
        raise InvalidDhcpState(errs.items)
    return State(server_name, ha_port, tuple(sorted(vlans, key=lambda v: v.vlan_id)), tuple(hosts), boot)


def _parse_vlan(rv: Any, where: str, errs: _Errors) -> Vlan | None:
    if not isinstance(rv, Mapping):
        errs.add(where, "expected a dict")
        return None
    n0 = len(errs.items)
    vlan_id = _int(rv.get("vlan_id"), f"{where}.vlan_id", errs, 1, 2**31 - 1)
    vid = _int(rv.get("vid", 0), f"{where}.vid", errs, 0, 4094)
    mtu = _int(rv.get("mtu", 1500), f"{where}.mtu", errs, 552, 65535)
    iface = rv.get("interface")
    if not (isinstance(iface, str) and _IFNAME_RE.match(iface)):
        errs.add(f"{where}.interface", f"expected an interface name, got {iface!r}")
    self_address = _ip(rv.get("self_address"), f"{where}.self_address", errs)
    role = rv.get("role", "standalone")
    if role not in ROLES:
        errs.add(f"{where}.role", f"expected one of {', '.join(ROLES)}, got {role!r}")
    mode = rv.get("mode")
    peer: Peer | None = None
    if role in ("primary", "secondary"):
        mode = mode or "hot-standby"
        if mode not in MODES:
            errs.add(f"{where}.mode", f"expected one of {', '.join(MODES)}, got {mode!r}")
        rp = rv.get("peer")
        if not isinstance(rp, Mapping):
            errs.add(f"{where}.peer", f"role {role} needs a peer {{name, address}}, got {rp!r}")
        else:
            pname = rp.get("name")
            if not (isinstance(pname, str) and _NAME_RE.match(pname)):
                errs.add(f"{where}.peer.name", f"expected a rack name, got {pname!r}")
            paddr = _ip(rp.get("address"), f"{where}.peer.address", errs)
            if isinstance(pname, str) and paddr is not None:
                peer = Peer(pname, paddr)
                if self_address is not None and paddr == self_address:
                    errs.add(f"{where}.peer.address", f"the peer's address {paddr} is this rack's own")
    else:
        mode = None
        if rv.get("peer"):
            errs.add(f"{where}.peer", "a standalone VLAN has no peer (set role primary/secondary for HA)")

    subnets: list[Subnet] = []
    raw_subnets = rv.get("subnets") or []
    if not isinstance(raw_subnets, list) or not raw_subnets:
        errs.add(f"{where}.subnets", "expected a non-empty list of subnets")
        raw_subnets = []
    for j, rs in enumerate(raw_subnets):
        s = _parse_subnet(rs, f"{where}.subnets[{j}]", errs, self_address, peer)
        if s is not None:
            subnets.append(s)
    if self_address is not None and subnets and not any(self_address in s.cidr for s in subnets):
        errs.add(f"{where}.self_address", f"{self_address} is in none of the VLAN's subnets "
                                          f"({', '.join(str(s.cidr) for s in subnets)})")
    if peer is not None and subnets and not any(peer.address in s.cidr for s in subnets):
        errs.add(f"{where}.peer.address", f"{peer.address} is in none of the VLAN's subnets")
    if len(errs.items) != n0:
        return None
    return Vlan(vlan_id, vid, mtu, iface, self_address, role, mode, peer, tuple(subnets))  # type: ignore[arg-type]


def _parse_subnet(rs: Any, where: str, errs: _Errors, self_address: IP | None, peer: Peer | None) -> Subnet | None:
    if not isinstance(rs, Mapping):
        errs.add(where, "expected a dict")
        return None
    n0 = len(errs.items)
    sid = _int(rs.get("subnet_id"), f"{where}.subnet_id", errs, 1, 2**32 - 2)
    cidr = None
    try:
        cidr = ipaddress.IPv4Network(rs.get("cidr"))
    except (ValueError, TypeError):
        errs.add(f"{where}.cidr", f"expected an IPv4 network like 10.0.0.0/24 (host bits zero), got {rs.get('cidr')!r}")
    gw = None
    if rs.get("gateway_ip") is not None:
        gw = _ip(rs.get("gateway_ip"), f"{where}.gateway_ip", errs)
        if gw is not None and cidr is not None and gw not in cidr:
            errs.add(f"{where}.gateway_ip", f"{gw} is not in {cidr}")
    dns = _ips(rs.get("dns_servers"), f"{where}.dns_servers", errs)
    ntp = _ips(rs.get("ntp_servers"), f"{where}.ntp_servers", errs)
    domain = rs.get("domain_name")
    if domain is not None:
        if not (isinstance(domain, str) and domain and len(domain) <= 253
                and all(_LABEL_RE.match(p) for p in domain.rstrip(".").split("."))):
            errs.add(f"{where}.domain_name", f"expected a domain name, got {domain!r}")
    lease_time = _int(rs.get("lease_time", 600), f"{where}.lease_time", errs, 1, 2**31 - 1)
    pools = _ranges(rs.get("pools"), f"{where}.pools", errs, cidr, inside=True)
    reserved = _ranges(rs.get("reserved"), f"{where}.reserved", errs, cidr, inside=False)
    for a in range(len(pools)):
        for b in range(a + 1, len(pools)):
            if pools[a][0] <= pools[b][1] and pools[b][0] <= pools[a][1]:
                errs.add(f"{where}.pools", f"dynamic ranges {pools[a][0]}-{pools[a][1]} and "
                                           f"{pools[b][0]}-{pools[b][1]} overlap")
    dynamic = subtract(pools, reserved)
    for what, addr in (("gateway_ip", gw), ("the rack's own address", self_address),
                       ("the peer's address", peer.address if peer else None)):
        if addr is not None and _in_ranges(addr, dynamic):
            errs.add(f"{where}.pools", f"a dynamic range would hand out {what} {addr}; "
                                       f"exclude it (or mark it reserved)")
    if len(errs.items) != n0:
        return None
    return Subnet(sid, cidr, gw, dns, ntp, domain.rstrip(".") if domain else None, tuple(dynamic), lease_time)  # type: ignore[arg-type]


def _check_vlans(vlans: list[Vlan], server_name: str | None, errs: _Errors) -> None:
    seen_ids: dict[int, int] = {}
    seen_ifaces: dict[str, int] = {}
    seen_subnet_ids: dict[int, str] = {}
    nets: list[tuple[ipaddress.IPv4Network, str]] = []
    for v in vlans:
        w = f"vlan {v.vlan_id}"
        if v.vlan_id in seen_ids:
            errs.add(w, "vlan_id appears twice")
        seen_ids[v.vlan_id] = 1
        if v.interface in seen_ifaces:
            errs.add(w, f"interface {v.interface} already serves vlan {seen_ifaces[v.interface]}")
        seen_ifaces[v.interface] = v.vlan_id
        if v.role != "standalone" and not server_name:
            errs.add(w, f"role {v.role} needs the state's server_name (this rack's name, the HA peer name)")
        if v.peer is not None and server_name and v.peer.name == server_name:
            errs.add(w, f"the peer {v.peer.name} is this rack itself")
        for s in v.subnets:
            if s.subnet_id in seen_subnet_ids:
                errs.add(w, f"subnet_id {s.subnet_id} ({s.cidr}) is also used by {seen_subnet_ids[s.subnet_id]}")
            seen_subnet_ids[s.subnet_id] = str(s.cidr)
            for other, owner in nets:
                if s.cidr.overlaps(other):
                    errs.add(w, f"subnet {s.cidr} overlaps {other} ({owner})")
            nets.append((s.cidr, w))
    # One HA relationship per (peer, mode): the same peer must have one role toward us.
    roles: dict[tuple[str, str | None], set[str]] = {}
    for v in vlans:
        if v.peer is not None:
            roles.setdefault((v.peer.name, v.mode), set()).add(v.role)
    for (peer, mode), rs in roles.items():
        if len(rs) > 1:
            errs.add(f"peer {peer}", f"this rack is both primary and secondary toward {peer} in {mode} mode; "
                                     f"Kea allows one relationship per server pair and mode: make the roles agree")


def _parse_hosts(raw: Any, errs: _Errors, vlans: list[Vlan]) -> list[Host]:
    if not isinstance(raw, list):
        errs.add("hosts", "expected a list")
        return []
    hosts: list[Host] = []
    by_mac: dict[str, int] = {}
    by_ip: dict[IP, str] = {}
    for i, rh in enumerate(raw):
        w = f"hosts[{i}]"
        if not isinstance(rh, Mapping):
            errs.add(w, "expected a dict")
            continue
        mac = normalise_mac(rh.get("mac"))
        if mac is None:
            errs.add(f"{w}.mac", f"expected a MAC address like 52:54:00:12:34:56, got {rh.get('mac')!r}")
            continue
        if mac in by_mac:
            errs.add(f"{w}.mac", f"{mac} is also hosts[{by_mac[mac]}]")
            continue
        by_mac[mac] = i
        hostname = rh.get("hostname")
        if hostname is not None and not (isinstance(hostname, str) and _LABEL_RE.match(hostname)):
            errs.add(f"{w}.hostname", f"expected a DNS label, got {hostname!r}")
            continue
        ip = None
        if rh.get("ip") is not None:
            ip = _ip(rh.get("ip"), f"{w}.ip", errs)
            if ip is None:
                continue
            if ip in by_ip:
                errs.add(f"{w}.ip", f"{ip} is reserved for both {by_ip[ip]} and {mac}")
                continue
            by_ip[ip] = mac
            for v in vlans:
                for s in v.subnets:
                    if ip in s.cidr and ip in (s.cidr.network_address, s.cidr.broadcast_address) \
                            and s.cidr.prefixlen < 31:
                        errs.add(f"{w}.ip", f"{ip} is {s.cidr}'s network or broadcast address")
                    if ip == v.self_address or ip == s.gateway_ip or (v.peer and ip == v.peer.address):
                        errs.add(f"{w}.ip", f"{ip} belongs to a rack or gateway on vlan {v.vlan_id}")
        hosts.append(Host(mac, hostname, ip))
    return hosts


def _parse_boot(raw: Any, errs: _Errors) -> Boot:
    if not isinstance(raw, Mapping):
        errs.add("boot", "expected a dict")
        return Boot(None, ())
    for key in raw:
        if key not in ("http_port", "loaders"):
            errs.add("boot", f"unknown field {key!r}")
    port = raw.get("http_port")
    if port is not None and not (isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536):
        errs.add("boot.http_port", f"expected a TCP port (1-65535), got {port!r}")
        port = None
    loaders = raw.get("loaders") or {}
    out: list[tuple[str, str]] = []
    if not isinstance(loaders, Mapping):
        errs.add("boot.loaders", "expected a dict {arch: file}")
        loaders = {}
    for arch in loaders:
        if arch not in ARCHES:
            errs.add("boot.loaders", f"unknown architecture {arch!r} (known: {', '.join(ARCHES)})")
    for arch in ARCHES:
        f = loaders.get(arch)
        if f is None:
            continue
        if not (isinstance(f, str) and f and len(f) <= 127 and re.match(r"^[^\s'\"]+$", f)):
            errs.add(f"boot.loaders.{arch}", f"expected a file name up to 127 characters, got {f!r}")
            continue
        out.append((arch, f))
    return Boot(port, tuple(out))


# --------------------------------------------------------------------------- instances

def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def instances(state: State) -> list[Instance]:
    """Group the VLANs into Kea instances (one HA relationship each); raises
    InvalidDhcpState when two HA instances would listen on the same address."""
    groups: dict[tuple, list[Vlan]] = {}
    for v in state.vlans:
        key = ("standalone",) if v.role == "standalone" else (v.role, v.peer.name, v.mode)  # type: ignore[union-attr]
        groups.setdefault(key, []).append(v)
    out: list[Instance] = []
    listens: dict[tuple[IP, int], str] = {}
    errs = _Errors()
    for key, vlans in sorted(groups.items()):
        vlans.sort(key=lambda v: v.vlan_id)
        if key[0] == "standalone":
            out.append(Instance("standalone", "standalone", None, None, tuple(vlans)))
            continue
        role, peer_name, mode = key
        first = vlans[0]      # both racks see the same VLANs of the pair, so they pick the same one
        inst = Instance(f"ha-{role}-{_safe(peer_name)}-{mode}", role, mode, first.peer, tuple(vlans),
                        (first.self_address, state.ha_port), (first.peer.address, state.ha_port))  # type: ignore[union-attr]
        if inst.ha_listen in listens:
            errs.add(inst.name, f"its HA listener {inst.ha_listen[0]}:{inst.ha_listen[1]} is also "  # type: ignore[index]
                                f"{listens[inst.ha_listen]}'s")  # type: ignore[index]
        listens[inst.ha_listen] = inst.name  # type: ignore[index]
        out.append(inst)
    if errs.items:
        raise InvalidDhcpState(errs.items)
    return out


def plan(raw: Mapping[str, Any] | None) -> tuple[State, list[Instance]]:
    """parse_state + instances: everything that can refuse a state, in one call."""
    state = parse_state(raw)
    return state, instances(state)


# --------------------------------------------------------------------------- rendering

def _client_classes(boot: Boot, vlans: tuple[Vlan, ...]) -> list[dict[str, Any]]:
    """Global classes pick the loader by architecture; the iPXE script URL differs per VLAN
    (the rack's address there), so it comes from a class each VLAN's subnets require."""
    classes: list[dict[str, Any]] = []
    if boot.http_port is not None:
        classes.append({"name": "ipxe", "test": "substring(option[77].hex,0,4) == 'iPXE'"})
        classes += [{"name": _ipxe_class(v), "test": "member('ipxe')", "only-if-required": True,
                     "boot-file-name": ipxe_url(v.self_address, boot.http_port)} for v in vlans]
    not_ipxe = " and not member('ipxe')" if boot.http_port is not None else ""
    for arch, loader in boot.loaders:
        codes = ARCHES[arch]
        test = " or ".join(f"option[93].hex == 0x{c:04x}" for c in codes)
        if len(codes) > 1:
            test = f"({test})"
        classes.append({"name": f"pxe-{arch}", "test": test + not_ipxe, "boot-file-name": loader})
    return classes


def _ipxe_class(vlan: Vlan) -> str:
    return f"ipxe-vlan{vlan.vlan_id}"


def _subnet(s: Subnet, vlan: Vlan, hosts: tuple[Host, ...], boot: Boot) -> dict[str, Any]:
    options: list[dict[str, Any]] = []
    if s.gateway_ip is not None:
        options.append({"name": "routers", "data": str(s.gateway_ip)})
    if s.dns_servers:
        options.append({"name": "domain-name-servers", "data": ", ".join(map(str, s.dns_servers))})
    if s.ntp_servers:
        options.append({"name": "ntp-servers", "data": ", ".join(map(str, s.ntp_servers))})
    if s.domain_name:
        options.append({"name": "domain-name", "data": s.domain_name})
    if vlan.mtu != 1500:
        options.append({"name": "interface-mtu", "data": str(vlan.mtu)})
    reservations = []
    for h in hosts:
        if h.ip is not None and h.ip not in s.cidr:
            continue           # reserved in another subnet
        r: dict[str, Any] = {"hw-address": h.mac}
        if h.ip is not None:
            r["ip-address"] = str(h.ip)
        if h.hostname:
            r["hostname"] = h.hostname
        reservations.append(r)
    out: dict[str, Any] = {
        "id": s.subnet_id,
        "subnet": str(s.cidr),
        "interface": vlan.interface,
        "valid-lifetime": s.lease_time,
        "min-valid-lifetime": s.lease_time,
        "max-valid-lifetime": s.lease_time,
        "pools": [{"pool": f"{a}-{b}"} for a, b in s.pools],
        "option-data": options,
        "reservations": reservations,
        "user-context": {"vlan_id": vlan.vlan_id, "vid": vlan.vid},
    }
    if boot.serves:
        out["next-server"] = str(vlan.self_address)
    if boot.http_port is not None:
        out["require-client-classes"] = [_ipxe_class(vlan)]
    return out


_LOG_PATTERN = "%d{%H:%M:%S.%q} %-5p [%c] %m\n"


def render(instance: Instance, state: State, paths: Paths, *, threads: int = 0,
           reclaim_interval: int = 5) -> dict[str, Any]:
    """The complete kea-dhcp4 configuration ({"Dhcp4": ...}) for one instance.

    threads: Kea worker threads (0 = one per CPU). reclaim_interval: seconds
    between expired-lease reclamation runs (expiry events come this late at most).
    """
    ifaces = [v.interface for v in instance.vlans]
    dhcp4: dict[str, Any] = {
        "interfaces-config": {"interfaces": ifaces, "dhcp-socket-type": "raw",
                              "service-sockets-max-retries": 5, "service-sockets-retry-wait-time": 2000},
        "control-socket": {"socket-type": "unix", "socket-name": paths.control_socket},
        "lease-database": {"type": "memfile", "persist": True, "name": paths.lease_file,
                           # LFC compacts the file hourly; leases.py follows the rotation.
                           "lfc-interval": 3600},
        "expired-leases-processing": {"reclaim-timer-wait-time": reclaim_interval,
                                      "flush-reclaimed-timer-wait-time": 25,
                                      "hold-reclaimed-time": 3600,
                                      "max-reclaim-leases": 100, "max-reclaim-time": 250,
                                      "unwarned-reclaim-cycles": 5},
        "multi-threading": {"enable-multi-threading": True, "thread-pool-size": threads,
                            "packet-queue-size": 64},
        "calculate-tee-times": True,
        "authoritative": True,
        "match-client-id": False,      # MAAS matches on MAC: PXE ROM, iPXE and the OS share one lease
        "host-reservation-identifiers": ["hw-address"],
        "server-tag": instance.name,
        "subnet4": [_subnet(s, v, state.hosts, state.boot) for v in instance.vlans for s in v.subnets],
        # lease_cmds everywhere: lease4-get & co. for the rack and for HA lease updates
        "hooks-libraries": [{"library": f"{HOOKS_DIR}/libdhcp_lease_cmds.so"}],
        # INFO logs two lines per lease and one per HA lease update. Leases reach the
        # region from the memfile (leases.py), so only warnings are logged, and HA state changes.
        "loggers": [{"name": "kea-dhcp4", "output_options": [{"output": "stdout", "pattern": _LOG_PATTERN}],
                     "severity": "WARN"},
                    {"name": "kea-dhcp4.ha-hooks", "output_options": [{"output": "stdout", "pattern": _LOG_PATTERN}],
                     "severity": "INFO"}],
        "user-context": {"generated-by": "metalplane.rack.dhcp", "instance": instance.name},
    }
    classes = _client_classes(state.boot, instance.vlans)
    if classes:                     # Kea 2.2's parser refuses an empty list here
        dhcp4["client-classes"] = classes
    if instance.role != "standalone":
        assert instance.peer is not None and instance.ha_listen and instance.ha_peer
        kea_role = "standby" if (instance.mode == "hot-standby" and instance.role == "secondary") else instance.role
        peer_role = {"primary": "secondary", "secondary": "primary"}[instance.role]
        if instance.mode == "hot-standby" and peer_role == "secondary":
            peer_role = "standby"
        me = {"name": state.server_name, "url": _url(instance.ha_listen), "role": kea_role,
              "auto-failover": True}
        other = {"name": instance.peer.name, "url": _url(instance.ha_peer), "role": peer_role,
                 "auto-failover": True}
        peers = [me, other] if instance.role == "primary" else [other, me]
        ha = {
            "this-server-name": state.server_name,
            "mode": instance.mode,
            **HA_TIMERS,
            "send-lease-updates": True,
            "sync-leases": True,
            "sync-timeout": 60000,
            "sync-page-limit": 10000,
            "wait-backup-ack": False,
            # more HTTP threads than cores: lease updates wait on the network, not the CPU
            # (bench/dhcp_bench.py, hot-standby on a loaded 2-core box: ~500-1,000 -> ~1,250 leases/s)
            "multi-threading": {"enable-multi-threading": True, "http-dedicated-listener": True,
                                "http-listener-threads": 4, "http-client-threads": 8},
            "peers": peers,
        }
        dhcp4["hooks-libraries"].append(
            {"library": f"{HOOKS_DIR}/libdhcp_ha.so", "parameters": {"high-availability": [ha]}})
    return {"Dhcp4": dhcp4}


def _url(addr: tuple[IP, int]) -> str:
    return f"http://{addr[0]}:{addr[1]}/"
