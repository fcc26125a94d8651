"""The rack's recursive DNS resolver (BIND 9 as a forwarder): `config` (pure
named.conf) and `service` (RackResolver: supervision, flush, status)."""

from metalplane.rack.dns.config import (
    CONTROL_PORT,
    DNSSEC_MODES,
    RESOLVER_PORT,
    InvalidResolverConfig,
    RegionDnsServer,
    ResolverConfig,
    parse_upstream_dns,
)
from metalplane.rack.dns.service import RackResolver

__all__ = [
    "CONTROL_PORT",
    "DNSSEC_MODES",
    "RESOLVER_PORT",
    "InvalidResolverConfig",
    "RackResolver",
    "RegionDnsServer",
    "ResolverConfig",
    "parse_upstream_dns",
]
