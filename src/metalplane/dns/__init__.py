"""BIND 9 (`named`) as region and rack run it: shared by `region.dns` and `rack.dns`.

    server = NamedServer("dns", state_dir / "named", control_port=5245, wrap=...)
    conf = <role's pure renderer>(server.layout, ...)        # named.conf text
    await server.apply(conf, {"maas": ZoneFile(text, serial), ...})
    server.status()      # ("running" | "degraded" | "dead" | "off", text)

`conf` holds what both roles share (`render_named_conf`: private directory,
rndc key and control channel); each role adds its options and zones. See
`named` for the checks, reloads and supervision.
"""

from metalplane.dns.conf import Layout, address_list, parse_upstream_dns, quote, render_named_conf
from metalplane.dns.named import NamedConfigError, NamedError, NamedServer, ZoneFile

__all__ = [
    "Layout",
    "NamedConfigError",
    "NamedError",
    "NamedServer",
    "ZoneFile",
    "address_list",
    "parse_upstream_dns",
    "quote",
    "render_named_conf",
]
