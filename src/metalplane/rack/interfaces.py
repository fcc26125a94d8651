"""The rack's network interfaces as the region wants them: name, MAC, addresses."""

from __future__ import annotations

import json
import subprocess
from typing import Any

SKIP_KINDS = {"loopback"}


def parse_ip_addr(output: str) -> list[dict[str, Any]]:
    """`ip -j addr` output -> [{name, mac, type, enabled, addresses: ["a.b.c.d/nn"]}]."""
    interfaces = []
    for link in json.loads(output or "[]"):
        if link.get("link_type") in SKIP_KINDS or not link.get("address"):
            continue
        kind = "physical"
        info = link.get("linkinfo", {}).get("info_kind")
        if info in ("bridge", "bond", "vlan"):
            kind = info
        addresses = [f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])
                     if a.get("family") in ("inet", "inet6") and a.get("scope") != "host"]
        interfaces.append({
            "name": link["ifname"],
            "mac": link["address"],
            "type": kind,
            "enabled": "UP" in link.get("flags", []),
            "addresses": addresses,
        })
    return interfaces


def local_interfaces() -> list[dict[str, Any]]:
    proc = subprocess.run(["ip", "-j", "-d", "addr"], capture_output=True, text=True, check=True)
    return parse_ip_addr(proc.stdout)
