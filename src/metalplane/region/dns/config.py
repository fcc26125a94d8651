"""Pure: named.conf of the region's authoritative DNS.

Authoritative only (``recursion no``): the racks' resolvers forward the MAAS
zones here and send every other name to `upstream_dns` themselves, so a
region is never an open resolver. Listens on `AUTHORITATIVE_PORT` (not 53),
so a host that is region and rack at once runs this next to the rack's
resolver on port 53 without a clash (docs/architecture.md, "DNS").
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from metalplane.dns.conf import Layout, address_list, listen_lists, quote, render_named_conf

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The port the region's authoritative named answers on (every rack forwards to it).
AUTHORITATIVE_PORT = 5247
#: Its rndc control channel, on 127.0.0.1.
CONTROL_PORT = 5245


@dataclass(frozen=True)
class AuthoritativeOptions:
    listen: tuple[IP, ...] = ()  #: () = every address of the host
    port: int = AUTHORITATIVE_PORT
    allow_query: tuple[Network, ...] = ()  #: () = anyone (MAAS: allow-query { any; })


def render(layout: Layout, zone_names: Iterable[str], options: AuthoritativeOptions) -> str:
    """named.conf for an authoritative server of `zone_names` (files at layout.zone_file)."""
    if options.listen:
        listen = listen_lists(options.listen, options.port)
    else:
        listen = [f"listen-on port {options.port} {{ any; }};", f"listen-on-v6 port {options.port} {{ any; }};"]
    opts = [
        *listen,
        "recursion no;",
        f"allow-query {address_list(options.allow_query, empty='any')};",
        "allow-transfer { none; };",
        "notify no;",
        "empty-zones-enable no;",
        "dnssec-validation no;",
    ]
    body = [f"zone {quote(z)} {{ type primary; file {quote(str(layout.zone_file(z)))}; }};" for z in sorted(zone_names)]
    return render_named_conf(layout, opts, body)
