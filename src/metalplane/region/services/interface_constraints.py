"""`allocate interfaces=`: MAAS's labeled constraint map over a machine's interfaces. Pure.

Syntax (provisioningserver/utils/constraints.py): `label:key=value[,key=value...][;label:...]`;
a key given twice is alternatives. A machine matches when every label matches at least
one of its interfaces; what matched is answered in `constraints_by_type.interfaces`
as {label: [interface ids]}.
"""

from __future__ import annotations

import re
from ipaddress import ip_address, ip_network
from typing import Any

LABEL = re.compile(r"[a-zA-Z0-9]+[a-zA-Z0-9_-]*$")
KEYS = (
    "id",
    "name",
    "type",
    "fabric",
    "fabric_class",
    "vlan",
    "vid",
    "subnet",
    "subnet_cidr",
    "space",
    "tag",
    "ip",
    "mode",
    "link_speed",
)
LabelMap = dict[str, dict[str, list[str]]]


def parse(value: str) -> LabelMap:
    """The label map, or ValueError with MAAS's words (400 on the `interfaces` field)."""
    result: LabelMap = {}
    if len(value) <= 1:
        return result
    for constraint in value.split(";"):
        label, sep, rest = constraint.partition(":")
        if not sep:
            raise ValueError(
                f"Malformed constraint: '{constraint}' (required format: "
                "'<label>:<key>=<value>[,<key2>=<value2>[,...]]')"
            )
        if not LABEL.match(label):
            raise ValueError(
                f"Invalid label name: '{label}' (Must begin with an alphanumeric character, and "
                "include only alphanumeric characters, dashes, and underscores.)"
            )
        if label in result:
            raise ValueError(f"Constraint label defined more than once: '{label}'")
        pairs: dict[str, list[str]] = {}
        for pair in rest.split(","):
            key, eq, item = pair.partition("=")
            if not eq:
                raise ValueError(f"Malformed key/value pair in constraint: '{pair}'")
            if key not in KEYS:
                raise ValueError(f"Unknown interface constraint key: '{key}' (known: {', '.join(KEYS)})")
            pairs.setdefault(key, []).append(item)
        result[label] = pairs
    return result


def _subnet_hit(spec: str, subnet: dict[str, Any]) -> bool:
    kind, _, value = (
        spec.partition(":") if ":" in spec and spec.split(":")[0] in ("id", "cidr", "name") else ("", "", spec)
    )
    if kind == "id" or (not kind and value.isdigit()):
        return str(subnet["id"]) == value
    if kind == "name":
        return subnet["name"] == value
    try:
        return ip_network(value, strict=False) == ip_network(subnet["cidr"])
    except ValueError:
        return not kind and subnet["name"] == value


def interface_matches(wanted: dict[str, list[str]], iface: dict[str, Any]) -> bool:
    """Whether one interface's facts pass every key of one label (values of a key OR-ed).

    `iface`: id, name, type, fabric, fabric_class, vlan_id, vid, space, tags, link_speed,
    subnets [{id, name, cidr}], ips [str]."""

    def one(key: str, value: str) -> bool:
        if key == "id":
            return str(iface["id"]) == value
        if key in ("name", "type", "fabric", "fabric_class", "space"):
            return iface.get(key) is not None and str(iface[key]) == value
        if key == "vlan":
            return str(iface.get("vlan_id")) == value
        if key == "vid":
            return str(iface.get("vid")) == value
        if key == "tag":
            return value in iface.get("tags", [])
        if key == "subnet":
            return any(_subnet_hit(value, s) for s in iface.get("subnets", []))
        if key == "subnet_cidr":
            return any(_subnet_hit(value, s) for s in iface.get("subnets", []))
        if key == "ip":
            try:
                return ip_address(value) in [ip_address(a) for a in iface.get("ips", [])]
            except ValueError:
                return False
        if key == "mode":
            return value == "unconfigured" and not iface.get("subnets")
        if key == "link_speed":
            return value.isdigit() and iface.get("link_speed", 0) >= int(value)
        return False

    return all(any(one(key, v) for v in values) for key, values in wanted.items())


def match(label_map: LabelMap, ifaces: list[dict[str, Any]]) -> dict[str, list[int]] | None:
    """{label: ids of the interfaces that match it}, or None when a label matches none."""
    found = {label: [i["id"] for i in ifaces if interface_matches(wanted, i)] for label, wanted in label_map.items()}
    return found if all(found.values()) else None
