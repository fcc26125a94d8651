"""Who the client is and how it reached the region, when proxies stand in between.

`X-Forwarded-For`, `-Host` and `-Proto` are believed only when the connection
comes from a configured proxy (regiond.conf `trusted_proxies`, loopback by
default): anyone else could write them, and the region echoes the site in
`describe/` and binds metadata enrolment to the client's address. Pure.
"""

from __future__ import annotations

from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network

from starlette.requests import Request

from metalplane.config.region import DEFAULT_TRUSTED_PROXIES
from metalplane.hostport import peer_ip

Networks = tuple[IPv4Network | IPv6Network, ...]


@lru_cache(maxsize=16)
def networks(entries: tuple[str, ...]) -> Networks:
    """The configured entries as networks (validated by the config model already)."""
    return tuple(ip_network(e, strict=False) for e in entries)


def is_trusted(address: str | None, trusted: Networks) -> bool:
    ip = peer_ip(address)
    return ip is not None and any(ip in net for net in trusted)


def client_address(peer: str | None, forwarded_for: str | None, trusted: Networks) -> str | None:
    """The client's address: the peer, or, when the peer is a trusted proxy, the nearest
    address in X-Forwarded-For that is not itself a trusted proxy (proxies append, so
    the list is read from the right; what the client wrote itself sits on the left)."""
    if not is_trusted(peer, trusted) or not forwarded_for:
        return peer
    hops = [h.strip() for h in forwarded_for.split(",")]
    for hop in reversed(hops):
        if peer_ip(hop) is None:
            return peer  # a malformed list: believe only the proxy's own address
        if not is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def trusted_networks(request: Request) -> Networks:
    config = getattr(request.app.state, "config", None)
    entries = tuple(config.trusted_proxies) if config is not None else DEFAULT_TRUSTED_PROXIES
    return networks(entries)


def _peer(request: Request) -> str | None:
    return request.client.host if request.client else None


def request_client(request: Request) -> str | None:
    """The address the request came from, through trusted proxies."""
    return client_address(_peer(request), request.headers.get("x-forwarded-for"), trusted_networks(request))


def site_of(request: Request) -> str:
    """scheme://host[:port] as the client reached the region (describe/ and links show it)."""
    scheme, host = request.url.scheme, request.headers.get("host") or request.url.netloc
    if is_trusted(_peer(request), trusted_networks(request)):
        forwarded = _first(request.headers.get("x-forwarded-proto"))
        scheme = forwarded if forwarded in ("http", "https") else scheme
        host = _first(request.headers.get("x-forwarded-host")) or host
    return f"{scheme}://{host}"


def _first(value: str | None) -> str | None:
    """A proxy chain may list several values: the first is what the client used."""
    return value.split(",", 1)[0].strip() or None if value else None
