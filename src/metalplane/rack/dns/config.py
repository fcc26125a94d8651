"""Pure: named.conf of the rack's resolver.

BIND 9 as a forwarder, as MAAS racks run it: the MAAS domains and reverse
zones go to every region's authoritative named (``forward only``: never to
the internet), every other name to `upstream_dns`, or is resolved from the
root when none is set. Answers only the rack's networks (the ``trusted``
ACL: the subnets of its VLANs, the host's own networks and itself).

DNSSEC: `dnssec_validation` (MAAS: ``auto`` | ``yes`` | ``no``) applies to
names from upstream; the MAAS zones are unsigned and absent from the public
DNS, so they are listed in ``validate-except`` (a validating resolver would
otherwise find ``maas.`` proven absent by the root and answer SERVFAIL).

Degraded mode: with every region (or the upstream) unreachable, the resolver
keeps answering what it has asked before from its expired cache (BIND's
serve-stale, RFC 8767) instead of SERVFAIL, so machines keep resolving their
peers' MAAS names while the racks serve alone. A changed zone is flushed by the
region's announcement, stale copies included, so staleness is only ever served
when no region can be asked.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from metalplane.dns.conf import FieldErrors, Layout, address_list, listen_lists, quote, render_named_conf
from metalplane.dns.conf import parse_upstream_dns as parse_upstream_dns  # MAAS's setting, shared with the region
from metalplane.rpc.services import DNSSEC_MODES, ZONE_RE, RegionDnsServer

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The port machines query (DHCP hands out the rack's address on their VLAN).
RESOLVER_PORT = 53
#: The resolver's rndc control channel, on 127.0.0.1.
CONTROL_PORT = 5246
#: How long an expired answer stays servable with its source unreachable (BIND's default, 12 h).
MAX_STALE_TTL = 43_200
#: How long a client waits before an unreachable source's stale answer is served, in ms:
#: below dig's and a stub resolver's usual first retry (1-2 s).
STALE_ANSWER_CLIENT_TIMEOUT_MS = 800
#: Once a refresh failed, the stale answer is served this long without asking again (s).
STALE_REFRESH_TIME = 30


class InvalidResolverConfig(FieldErrors):
    what = "resolver configuration"


@dataclass(frozen=True)
class ResolverConfig:
    zones: tuple[str, ...]  #: MAAS domains and reverse zones: sent to the regions
    regions: tuple[RegionDnsServer, ...]  #: every region's authoritative DNS, as the rack reaches it
    upstream_dns: tuple[IP, ...] = ()  #: everything else; () = resolve from the root
    dnssec_validation: str = "auto"
    listen: tuple[IP, ...] = ()  #: the rack's addresses on its VLANs (127.0.0.1 always)
    allow: tuple[Network, ...] = ()  #: who may ask besides localhost/localnets: the VLANs' subnets
    port: int = RESOLVER_PORT


def validate(cfg: ResolverConfig) -> None:
    errs = []
    for i, zone in enumerate(cfg.zones):
        if not ZONE_RE.match(zone.rstrip(".")):
            errs.append(f"zones[{i}]: {zone!r} is not a zone name")
    if cfg.zones and not cfg.regions:
        errs.append("regions: MAAS zones need at least one region to forward to")
    if cfg.dnssec_validation not in DNSSEC_MODES:
        errs.append(f"dnssec_validation: {cfg.dnssec_validation!r} is not one of {', '.join(DNSSEC_MODES)}")
    if not 0 < cfg.port < 65536:
        errs.append(f"port: {cfg.port} is not a port")
    if errs:
        raise InvalidResolverConfig(errs)


def render(layout: Layout, cfg: ResolverConfig) -> str:
    """named.conf of the rack's resolver (raises InvalidResolverConfig)."""
    validate(cfg)
    loopback = ipaddress.ip_address("127.0.0.1")
    listen = (loopback, *[a for a in cfg.listen if a != loopback])
    zones = sorted({z.lower().rstrip(".") for z in cfg.zones})
    opts = [
        *listen_lists(listen, cfg.port),
        "recursion yes;",
        'allow-query { "trusted"; };',
        'allow-recursion { "trusted"; };',
        'allow-query-cache { "trusted"; };',
        "allow-transfer { none; };",
        "notify no;",
        "empty-zones-enable no;",
        f"dnssec-validation {cfg.dnssec_validation};",
        "stale-cache-enable yes;",
        "stale-answer-enable yes;",
        f"max-stale-ttl {MAX_STALE_TTL};",
        f"stale-answer-client-timeout {STALE_ANSWER_CLIENT_TIMEOUT_MS};",
        f"stale-refresh-time {STALE_REFRESH_TIME};",
    ]
    if cfg.upstream_dns:
        opts += [f"forwarders {address_list(cfg.upstream_dns)};", "forward only;"]
    if zones and cfg.dnssec_validation != "no":
        opts.append(f"validate-except {{ {' '.join(quote(z) + ';' for z in zones)} }};")
    regions = " ".join(f"{r.address} port {r.port};" for r in cfg.regions)
    body = [f'acl "trusted" {{ {" ".join(f"{n};" for n in cfg.allow)} localhost; localnets; }};']
    body += [f"zone {quote(z)} {{ type forward; forward only; forwarders {{ {regions} }}; }};" for z in zones]
    return render_named_conf(layout, opts, body)
