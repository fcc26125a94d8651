"""Host and port pairs as operators write them: "host", "host:port", "v6", "[v6]:port".

One parser for every place that takes an address: BMC power addresses,
regiond.conf's database_host, HAProxy's region servers.
"""

from __future__ import annotations

import ipaddress
import re

HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)


def split_host_port(value: str, default_port: int) -> tuple[str, int]:
    """("host", port) from "host", "host:port", "v6addr", "[v6addr]" or "[v6addr]:port".

    Raises ValueError with a reason. The host is an IP address or a host name.
    """
    value = value.strip()
    if not value:
        raise ValueError("empty address")
    port = default_port
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            raise ValueError("unclosed '[' in address")
        host, rest = value[1:end], value[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError("unexpected text after ']'")
            port = port_number(rest[1:])
        ipaddress.IPv6Address(host.split("%")[0])  # raises ValueError
        return host, port
    if value.count(":") > 1:  # bare IPv6
        ipaddress.IPv6Address(value.split("%")[0])
        return value, port
    host, sep, port_text = value.partition(":")
    if sep:
        port = port_number(port_text)
    if not is_ip(host) and not HOSTNAME_RE.match(host):
        raise ValueError(f"{host!r} is neither an IP address nor a host name")
    return host, port


def port_number(text: str) -> int:
    """1..65535 from its digits, or ValueError."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"bad port {text!r}")
    return int(text)


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def peer_ip(value: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A peer's address as compared everywhere: zone id dropped, an IPv4-mapped IPv6
    address (a dual-stack socket's view of an IPv4 peer) as IPv4; None if not an address."""
    if value is None:
        return None
    try:
        address = ipaddress.ip_address(str(value).split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def format_host_port(host: str, port: int, default_port: int | None = None) -> str:
    """ "host", "host:port" or "[v6]:port" (the port left out when it is the default)."""
    shown = f"[{host}]" if ":" in host else host
    return shown if port == default_port else f"{shown}:{port}"
