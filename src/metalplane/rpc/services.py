"""ServicesConfig: what a rack's resolver, chronyd and ARP listener follow (`GetServicesConfig`),
and what the rack's listener reports (`Observation`, in `ReportDiscoveries`).

The region decides from its model and settings; the rack renders (rack.dns,
ntp, rack.discovery). Decoding validates every field, so a rack never hands
its daemons a value they would refuse for its shape. On the wire::

    {
      "dns": {"zones": ["maas", "0.50.10.in-addr.arpa"],   # MAAS's zones: sent to the regions
              "regions": [{"address": "10.50.1.11", "port": 5247}],
              "upstream_dns": ["192.0.2.53"],               # everything else ([] = from the root)
              "dnssec_validation": "auto" | "yes" | "no",
              "listen": ["10.50.0.2"],                      # the rack's addresses on its VLANs
              "allow": ["10.50.0.0/24"]},                   # who may ask (besides the rack itself)
      "ntp": {"regions": [{"host": "10.50.1.11", "port": 123}],
              "ntp_servers": ["ntp.example.com", "192.0.2.123"],
              "external_only": false,                      # follow ntp_servers, not the regions
              "allow": ["10.50.0.0/24"],
              "shared": false},                            # a region on this host serves time here
      "discovery": {"enabled": true, "interfaces": {"eth1": 0, "eth1.20": 20}},
    }
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

from pydantic import Field, PlainValidator
from pydantic.dataclasses import dataclass

from metalplane.hostport import HOSTNAME_RE
from metalplane.rpc.fields import IFNAME_RE, matching, one_of, parsed

DNSSEC_MODES = ("auto", "yes", "no")
OBSERVATION_EVENTS = ("NEW", "REFRESHED", "MOVED")
ZONE_RE = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*$")
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def _host(value: Any) -> str:
    if isinstance(value, str):
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            if HOSTNAME_RE.match(value):
                return value
    raise ValueError(f"expected an IP address or a host name, got {value!r}")


Address = Annotated[IP, parsed((ipaddress.IPv4Address, ipaddress.IPv6Address), "an IP address", ipaddress.ip_address)]
Network = Annotated[
    Net, parsed((ipaddress.IPv4Network, ipaddress.IPv6Network), "a network like 10.0.0.0/24", ipaddress.ip_network)
]
Host = Annotated[str, PlainValidator(_host)]
ZoneName = Annotated[str, matching(ZONE_RE, "a zone name")]
IfName = Annotated[str, matching(IFNAME_RE, "an interface name")]
Port = Annotated[int, Field(ge=1, le=65535, strict=True)]
Vid = Annotated[int, Field(ge=0, le=4094, strict=True)]


@dataclass(frozen=True)
class RegionDnsServer:
    """One region's authoritative DNS: racks forward MAAS's zones to it (rack.dns)."""

    address: Address
    port: Port = 5247


@dataclass(frozen=True)
class ResolverSettings:
    """The rack's forwarding resolver (rack.dns): MAAS's `zones` go to the `regions`, every other name to
    `upstream_dns` (none: resolved from the root); it listens on `listen` and answers `allow` and itself."""

    zones: list[ZoneName] = Field(default_factory=list)
    regions: list[RegionDnsServer] = Field(default_factory=list)
    upstream_dns: list[Address] = Field(default_factory=list)
    dnssec_validation: Annotated[str, one_of(DNSSEC_MODES)] = "auto"
    listen: list[Address] = Field(default_factory=list)
    allow: list[Network] = Field(default_factory=list)


@dataclass(frozen=True)
class NtpServer:
    """A region's chronyd, for a rack to follow: its address or host name, and the port it serves
    time on (the `ntp_port` the region recorded when it registered)."""

    host: Host
    port: Port = 123


@dataclass(frozen=True)
class NtpSettings:
    """The rack's chronyd (ntp): it follows the `regions`, or `ntp_servers` directly when `external_only`,
    and serves time to `allow`."""

    regions: list[NtpServer] = Field(default_factory=list)
    ntp_servers: list[Host] = Field(default_factory=list)
    external_only: bool = False
    allow: list[Network] = Field(default_factory=list)
    shared: bool = False  # a region on this host runs the one chronyd, which serves this rack too


@dataclass(frozen=True)
class DiscoverySettings:
    """The rack's ARP listener (rack.discovery): the interfaces it listens on, each with its VLAN's VID if known."""

    enabled: bool = True
    interfaces: dict[IfName, Vid | None] = Field(default_factory=dict)


@dataclass(frozen=True)
class ServicesConfig:
    dns: ResolverSettings = Field(default_factory=ResolverSettings)
    ntp: NtpSettings = Field(default_factory=NtpSettings)
    discovery: DiscoverySettings = Field(default_factory=DiscoverySettings)


@dataclass(frozen=True)
class Observation:
    """One binding seen in ARP (rack.discovery.observations): new, moved or refreshed."""

    id: int  # increasing per rack: acknowledged up to the last
    ip: Address
    mac: Annotated[str, matching(_MAC_RE, "a MAC address like 52:54:00:12:34:56")]
    interface: IfName
    vid: Vid | None = None
    time: float = 0.0  # unix time it was seen
    event: Annotated[str, one_of(OBSERVATION_EVENTS)] = "NEW"
    previous_mac: str | None = None
