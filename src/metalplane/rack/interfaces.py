"""The rack's network interfaces as the region wants them: name, MAC, addresses.

A rack models what an operator would put machines behind: physical NICs,
bonds, bridges and VLANs. Other kinds of virtual device (ifb, dummy, veth,
tun, macvlan, ...) are modelled only while they are up and carry an address
that is not link-local; otherwise each would become a fabric of its own (a
stock Debian host has two disabled `ifb` devices).
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from typing import Any

SKIP_LINK_TYPES = {"loopback"}
# `ip -d` names the kind of every virtual device; a physical NIC has none.
MODELLED_KINDS = {"bridge", "bond", "vlan"}


def _routable(addresses: list[str]) -> bool:
    return any(not ipaddress.ip_interface(a).ip.is_link_local for a in addresses)


def should_model(kind: str | None, up: bool, addresses: list[str]) -> bool:
    """Physical, bond, bridge, vlan always; any other virtual kind only when up with a routable address."""
    if kind is None or kind in MODELLED_KINDS:
        return True
    return up and _routable(addresses)


def parse_ip_addr(output: str) -> list[dict[str, Any]]:
    """`ip -j -d addr` output -> [{name, mac, type, enabled, addresses: ["a.b.c.d/nn"]}]."""
    interfaces = []
    for link in json.loads(output or "[]"):
        if link.get("link_type") in SKIP_LINK_TYPES or not link.get("address"):
            continue
        info = link.get("linkinfo", {}).get("info_kind")
        addresses = [
            f"{a['local']}/{a['prefixlen']}"
            for a in link.get("addr_info", [])
            if a.get("family") in ("inet", "inet6") and a.get("scope") != "host"
        ]
        up = "UP" in link.get("flags", [])
        if not should_model(info, up, addresses):
            continue
        interfaces.append(
            {
                "name": link["ifname"],
                "mac": link["address"],
                "type": info if info in MODELLED_KINDS else "physical",
                "enabled": up,
                "addresses": addresses,
            }
        )
    return interfaces


def local_interfaces() -> list[dict[str, Any]]:
    proc = subprocess.run(["ip", "-j", "-d", "addr"], capture_output=True, text=True, check=True)
    return parse_ip_addr(proc.stdout)
