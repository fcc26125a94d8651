"""Pure functions: a DHCP state (the region's `DhcpState` plus this rack's boot
settings) -> one kea-dhcp4 configuration per Kea instance.

Nothing here touches the disk, the network or a process; `kea.py` runs what
this renders. Validation is the contract's: `metalplane.rpc.dhcp.DhcpState`
refuses, on decoding, a state that cannot be served; `Boot` below does the same
for the rack's own part.

Instances: Kea 2.2 supports one HA relationship per server, so VLANs are
grouped into one kea-dhcp4 process per distinct (role, peer, mode), plus one
standalone process for every VLAN this rack serves alone.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, cast

from pydantic import BeforeValidator, ConfigDict, Field, PlainValidator, field_validator
from pydantic.dataclasses import dataclass

from metalplane.ha.dhcp_peers import kea_instance_name
from metalplane.rpc import wire
from metalplane.rpc.dhcp import DEFAULT_HA_PORT as DEFAULT_HA_PORT  # re-exported: the contract's, used here
from metalplane.rpc.dhcp import IP, DhcpState, Host, InvalidDhcpState, Peer, Subnet, Subnet6, Vlan, Vlan6
from metalplane.rpc.dhcp import subtract as subtract
from metalplane.rpc.wire import Problems

HOOKS_DIR = "/usr/lib/x86_64-linux-gnu/kea/hooks"

#: HA timers (milliseconds) that fail over in ~3.3 s (FIELD-NOTES: Kea HA).
HA_TIMERS = {
    "heartbeat-delay": 1000,
    "max-response-delay": 3000,
    "max-ack-delay": 1000,
    "max-unacked-clients": 0,
}

#: The HA hook's HTTP threads: more than the cores (Kea's default is one per CPU). One per
#: core was faster in some runs on 2 CPUs and slower in others, and left leases on the
#: primary that the standby lacked after overload, which these threads never did
#: (docs/benchmarks.md, "DHCP (Kea) HA: config variants").
HA_HTTP_THREADS = {"http-listener-threads": 4, "http-client-threads": 8}

#: PXE client architectures (option 93, RFC 4578 / IANA) -> loader key in boot.loaders.
ARCHES: dict[str, tuple[int, ...]] = {
    "bios": (0x0000,),
    "uefi-x64": (0x0007, 0x0009),
    "uefi-arm64": (0x000B,),
}

_LOADER_RE = re.compile(r"^[^\s'\"]{1,127}$")


# --------------------------------------------------------------------------- this rack's part


def _tcp_port(value: Any) -> int | None:
    if value is None:
        return None
    if not (isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536):
        raise ValueError(f"expected a TCP port (1-65535), got {value!r}")
    return value


def _empty_if_none(value: Any) -> Any:
    return {} if value is None else value


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class Boot:
    """What PXE and iPXE clients are sent to. Each VLAN's clients go to this rack's own
    address on that VLAN: TFTP there (next-server), iPXE to http://ADDRESS:http_port/ipxe.cfg."""

    http_port: Annotated[int | None, PlainValidator(_tcp_port)] = None  #: None: no iPXE script URL
    loaders: Annotated[dict[str, str], BeforeValidator(_empty_if_none)] = Field(default_factory=dict)  #: {arch: file}

    @field_validator("loaders")
    @classmethod
    def _loaders(cls, value: dict[str, str]) -> dict[str, str]:
        found: list[tuple[tuple[str | int, ...], str]] = [
            ((), f"unknown architecture {arch!r} (known: {', '.join(ARCHES)})") for arch in value if arch not in ARCHES
        ]
        found += [
            ((arch,), f"expected a file name up to 127 characters, got {name!r}")
            for arch, name in value.items()
            if arch in ARCHES and not _LOADER_RE.match(name)
        ]
        if found:
            raise Problems(found)
        return value

    @property
    def ordered_loaders(self) -> tuple[tuple[str, str], ...]:
        """(arch key, file), in ARCHES order."""
        return tuple((arch, self.loaders[arch]) for arch in ARCHES if arch in self.loaders)

    @property
    def serves(self) -> bool:
        return self.http_port is not None or bool(self.loaders)


IPXE_PATH = "/ipxe.cfg"


def ipxe_url(address: IP, http_port: int) -> str:
    return f"http://{address}:{http_port}{IPXE_PATH}"


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class State(DhcpState):
    """The region's DhcpState with this rack's boot settings: everything Kea is configured from."""

    boot: Annotated[Boot, BeforeValidator(_empty_if_none)] = Field(default_factory=Boot)

    @classmethod
    def of(cls, dhcp: DhcpState, boot: Mapping[str, Any]) -> State:
        """The region's state with this rack's boot part; raises InvalidDhcpState."""
        return wire.decode(
            cls, {**{f.name: getattr(dhcp, f.name) for f in dataclasses.fields(DhcpState)}, "boot": boot}
        )


@dataclasses.dataclass(frozen=True)
class Instance:
    """One kea-dhcp4 (or kea-dhcp6) process: its VLANs and (for HA) its one relationship."""

    name: str  #: stable, filesystem-safe: "standalone", "ha-primary-rack2-hot-standby"
    role: str  #: "standalone" | "primary" | "secondary"
    mode: str | None
    peer: Peer | None
    vlans: tuple[Vlan, ...] | tuple[Vlan6, ...]
    ha_listen: tuple[IP, int] | None = None  #: this server's HA URL (address, port)
    ha_peer: tuple[IP, int] | None = None  #: the partner's HA URL
    family: int = 4  #: 4: kea-dhcp4, 6: kea-dhcp6 ("v6-" names)

    @property
    def subnets(self) -> tuple[Subnet | Subnet6, ...]:
        return tuple(s for v in self.vlans for s in v.subnets)


@dataclasses.dataclass(frozen=True)
class Paths:
    """Where an instance's files live (decided by kea.py)."""

    lease_file: str
    control_socket: str


def parse_state(raw: Mapping[str, Any] | None) -> State:
    """The wire dict (DhcpState fields and "boot") as a State; raises InvalidDhcpState listing every problem."""
    return wire.decode(State, {} if raw is None else raw)


# --------------------------------------------------------------------------- instances


def instances(state: State) -> list[Instance]:
    """Group the VLANs into Kea instances (one HA relationship each), kea-dhcp4's then
    kea-dhcp6's; raises InvalidDhcpState when two HA instances would listen on the same address."""
    return _group(state.vlans, state.ha_port, 4) + _group(state.vlans6, state.ha_port6, 6)


def _group(vlans_in: list[Vlan] | list[Vlan6], ha_port: int, family: int) -> list[Instance]:
    groups: dict[tuple[str, str | None, str | None], list[Vlan | Vlan6]] = {}
    for v in vlans_in:
        key = ("standalone", None, None) if v.role == "standalone" or v.peer is None else (v.role, v.peer.name, v.mode)
        groups.setdefault(key, []).append(v)
    prefix = "" if family == 4 else "v6-"
    out: list[Instance] = []
    listens: dict[tuple[IP, int], str] = {}
    errors: list[str] = []
    for (role, peer_name, mode), vlans in sorted(groups.items(), key=lambda item: tuple(p or "" for p in item[0])):
        vlans.sort(key=lambda v: v.vlan_id)
        members = cast(tuple[Vlan, ...] | tuple[Vlan6, ...], tuple(vlans))  # one family per call
        if role == "standalone":
            out.append(Instance(f"{prefix}standalone", "standalone", None, None, members, family=family))
            continue
        first = vlans[0]  # both racks see the same VLANs of the pair, so they pick the same one
        peer = cast(Peer, first.peer)  # an HA group's VLANs all have their partner
        listen = (cast(IP, first.self_address), ha_port)
        inst = Instance(
            prefix + kea_instance_name(role, peer_name, mode),
            role,
            mode,
            peer,
            members,
            listen,
            (peer.address, ha_port),
            family=family,
        )
        if listen in listens:
            errors.append(f"{inst.name}: its HA listener {listen[0]}:{listen[1]} is also {listens[listen]}'s")
        listens[listen] = inst.name
        out.append(inst)
    if errors:
        raise InvalidDhcpState(errors)
    return out


def plan(raw: State | Mapping[str, Any] | None) -> tuple[State, list[Instance]]:
    """parse_state (unless given a State) + instances: everything that can refuse a state, in one call."""
    state = raw if isinstance(raw, State) else parse_state(raw)
    return state, instances(state)


# --------------------------------------------------------------------------- rendering


def _client_classes(boot: Boot, vlans: tuple[Vlan, ...]) -> list[dict[str, Any]]:
    """Global classes pick the loader by architecture; the iPXE script URL differs per VLAN
    (the rack's address there), so it comes from a class each VLAN's subnets require."""
    classes: list[dict[str, Any]] = []
    if boot.http_port is not None:
        classes.append({"name": "ipxe", "test": "substring(option[77].hex,0,4) == 'iPXE'"})
        classes += [
            {
                "name": _ipxe_class(v),
                "test": "member('ipxe')",
                "only-if-required": True,
                "boot-file-name": ipxe_url(v.self_address, boot.http_port),
            }
            for v in vlans
        ]
    not_ipxe = " and not member('ipxe')" if boot.http_port is not None else ""
    for arch, loader in boot.ordered_loaders:
        codes = ARCHES[arch]
        test = " or ".join(f"option[93].hex == 0x{c:04x}" for c in codes)
        if len(codes) > 1:
            test = f"({test})"
        classes.append({"name": f"pxe-{arch}", "test": test + not_ipxe, "boot-file-name": loader})
    return classes


def _ipxe_class(vlan: Vlan) -> str:
    return f"ipxe-vlan{vlan.vlan_id}"


def _option_data(*options: tuple[str, Any]) -> list[dict[str, Any]]:
    """Kea's option-data for the (name, value) pairs that have a value; a list's items
    are comma separated."""
    out: list[dict[str, Any]] = []
    for name, value in options:
        if value is None or value == "" or (isinstance(value, (list, tuple)) and not value):
            continue
        data = ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        out.append({"name": name, "data": data})
    return out


def _subnet(s: Subnet, vlan: Vlan, hosts: Sequence[Host], boot: Boot) -> dict[str, Any]:
    options = _option_data(
        ("routers", s.gateway_ip),
        ("domain-name-servers", s.dns_servers),
        ("ntp-servers", s.ntp_servers),
        ("domain-name", s.domain_name),
        ("domain-search", s.searched),
        ("interface-mtu", vlan.mtu if vlan.mtu != 1500 else None),
    )
    reservations = []
    for h in hosts:
        if h.ip is not None and h.ip not in s.cidr:
            continue  # reserved in another subnet
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
        "pools": [{"pool": f"{a}-{b}"} for a, b in s.dynamic],
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


def _expired_leases(reclaim_interval: int) -> dict[str, int]:
    """How kea-dhcp4 and kea-dhcp6 reclaim expired leases (the same for both)."""
    return {
        "reclaim-timer-wait-time": reclaim_interval,
        "flush-reclaimed-timer-wait-time": 25,
        "hold-reclaimed-time": 3600,
        "max-reclaim-leases": 100,
        "max-reclaim-time": 250,
        "unwarned-reclaim-cycles": 5,
    }


def _loggers(daemon: str) -> list[dict[str, Any]]:
    """The daemon's loggers: warnings only, and HA state changes (INFO) from its HA hook."""
    return [
        {"name": name, "output_options": [{"output": "stdout", "pattern": _LOG_PATTERN}], "severity": severity}
        for name, severity in ((daemon, "WARN"), (f"{daemon}.ha-hooks", "INFO"))
    ]


def render(
    instance: Instance, state: State, paths: Paths, *, threads: int = 0, reclaim_interval: int = 5
) -> dict[str, Any]:
    """The complete kea-dhcp4 configuration ({"Dhcp4": ...}) for one instance.

    threads: Kea worker threads (0 = one per CPU). reclaim_interval: seconds
    between expired-lease reclamation runs (expiry events come this late at most).
    """
    vlans = cast(tuple[Vlan, ...], instance.vlans)  # a kea-dhcp4 instance holds IPv4 VLANs only
    ifaces = [v.interface for v in vlans]
    dhcp4: dict[str, Any] = {
        "interfaces-config": {
            "interfaces": ifaces,
            "dhcp-socket-type": "raw",
            "service-sockets-max-retries": 5,
            "service-sockets-retry-wait-time": 2000,
        },
        "control-socket": {"socket-type": "unix", "socket-name": paths.control_socket},
        "lease-database": {
            "type": "memfile",
            "persist": True,
            "name": paths.lease_file,
            # LFC compacts the file hourly; leases.py follows the rotation.
            "lfc-interval": 3600,
        },
        "expired-leases-processing": _expired_leases(reclaim_interval),
        "multi-threading": {"enable-multi-threading": True, "thread-pool-size": threads, "packet-queue-size": 64},
        "calculate-tee-times": True,
        "authoritative": True,
        "match-client-id": False,  # MAAS matches on MAC: PXE ROM, iPXE and the OS share one lease
        "host-reservation-identifiers": ["hw-address"],
        "server-tag": instance.name,
        "subnet4": [_subnet(s, v, state.hosts, state.boot) for v in vlans for s in v.subnets],
        # lease_cmds everywhere: lease4-get & co. for the rack and for HA lease updates
        "hooks-libraries": [{"library": f"{HOOKS_DIR}/libdhcp_lease_cmds.so"}],
        # INFO logs two lines per lease and one per HA lease update. Leases reach the
        # region from the memfile (leases.py), so only warnings are logged, and HA state changes.
        "loggers": _loggers("kea-dhcp4"),
        "user-context": {"generated-by": "metalplane.rack.dhcp", "instance": instance.name},
    }
    classes = _client_classes(state.boot, vlans)
    if classes:  # Kea 2.2's parser refuses an empty list here
        dhcp4["client-classes"] = classes
    if instance.role != "standalone":
        dhcp4["hooks-libraries"].append(_ha_library(instance, state.server_name))
    return {"Dhcp4": dhcp4}


def _ha_library(instance: Instance, server_name: str | None) -> dict[str, Any]:
    """The HA hook of an HA instance (the same for kea-dhcp4 and kea-dhcp6)."""
    assert instance.peer is not None and instance.ha_listen and instance.ha_peer
    kea_role = "standby" if (instance.mode == "hot-standby" and instance.role == "secondary") else instance.role
    peer_role = {"primary": "secondary", "secondary": "primary"}[instance.role]
    if instance.mode == "hot-standby" and peer_role == "secondary":
        peer_role = "standby"
    me = {"name": server_name, "url": _url(instance.ha_listen), "role": kea_role, "auto-failover": True}
    other = {"name": instance.peer.name, "url": _url(instance.ha_peer), "role": peer_role, "auto-failover": True}
    peers = [me, other] if instance.role == "primary" else [other, me]
    ha = {
        "this-server-name": server_name,
        "mode": instance.mode,
        **HA_TIMERS,
        "send-lease-updates": True,
        "sync-leases": True,
        "sync-timeout": 60000,
        "sync-page-limit": 10000,
        "wait-backup-ack": False,
        "multi-threading": {
            "enable-multi-threading": True,
            "http-dedicated-listener": True,
            **HA_HTTP_THREADS,
        },
        "peers": peers,
    }
    return {"library": f"{HOOKS_DIR}/libdhcp_ha.so", "parameters": {"high-availability": [ha]}}


def render6(
    instance: Instance, state: State, paths: Paths, *, threads: int = 0, reclaim_interval: int = 5
) -> dict[str, Any]:
    """The complete kea-dhcp6 configuration ({"Dhcp6": ...}) for one v6 instance: addresses
    (IA_NA) from the dynamic ranges, the racks as DNS (23) and SNTP (31) servers, host
    reservations by hardware address (Kea learns it from the DUID or the link layer)."""
    ifaces = [v.interface for v in instance.vlans]
    subnets = []
    for v in instance.vlans:
        for sub in v.subnets:
            assert isinstance(sub, Subnet6)
            options = _option_data(
                ("dns-servers", sub.dns_servers),
                ("sntp-servers", sub.ntp_servers),
                ("domain-search", sub.searched),
            )
            subnets.append(
                {
                    "id": sub.subnet_id,
                    "subnet": str(sub.cidr),
                    "interface": v.interface,
                    "preferred-lifetime": sub.lease_time // 2 or 1,
                    "valid-lifetime": sub.lease_time,
                    "min-valid-lifetime": sub.lease_time,
                    "max-valid-lifetime": sub.lease_time,
                    "pools": [{"pool": f"{a} - {b}"} for a, b in sub.dynamic],
                    "option-data": options,
                    # every host's name (a host's address is IPv4, no concern of DHCPv6)
                    "reservations": [
                        {"hw-address": h.mac, **({"hostname": h.hostname} if h.hostname else {})} for h in state.hosts
                    ],
                    "user-context": {"vlan_id": v.vlan_id, "vid": v.vid},
                }
            )
    dhcp6: dict[str, Any] = {
        "interfaces-config": {
            "interfaces": ifaces,
            "service-sockets-max-retries": 5,
            "service-sockets-retry-wait-time": 2000,
        },
        "control-socket": {"socket-type": "unix", "socket-name": paths.control_socket},
        "lease-database": {"type": "memfile", "persist": True, "name": paths.lease_file, "lfc-interval": 3600},
        # the server's DUID file lives with its leases, not in /var/lib/kea
        "data-directory": str(Path(paths.lease_file).parent),
        "expired-leases-processing": _expired_leases(reclaim_interval),
        "multi-threading": {"enable-multi-threading": True, "thread-pool-size": threads, "packet-queue-size": 64},
        "host-reservation-identifiers": ["hw-address", "duid"],
        "mac-sources": ["any"],
        "server-tag": instance.name,
        # Preference 255: a client takes the first Advertise at once instead of collecting them
        # for a second (RFC 8415 18.2.1); only one server of a pair answers anyway.
        "option-data": [{"name": "preference", "data": "255"}],
        "subnet6": subnets,
        "hooks-libraries": [{"library": f"{HOOKS_DIR}/libdhcp_lease_cmds.so"}],
        "loggers": _loggers("kea-dhcp6"),
        "user-context": {"generated-by": "metalplane.rack.dhcp", "instance": instance.name},
    }
    if instance.role != "standalone":
        dhcp6["hooks-libraries"].append(_ha_library(instance, state.server_name))
    return {"Dhcp6": dhcp6}


def _url(addr: tuple[IP, int]) -> str:
    return f"http://{addr[0]}:{addr[1]}/"
