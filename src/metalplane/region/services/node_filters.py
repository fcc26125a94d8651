"""MAAS's `machines read` filters (ReadNodesForm), as pure functions.

`parse` checks a request's filter values against what exists (zones, pools,
tags, owners, architectures) and answers MAAS's per-field errors; `matches`
decides whether one node passes. Values of one parameter are OR-ed (`tags`:
AND-ed), different parameters AND-ed, `not_*` exclude.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import ip_address, ip_network
from typing import Any

from metalplane.region import validation
from metalplane.region.errors import Invalid, Refused

# NODE_STATUS filter names, by number (maas_lifecycle.json).
STATUS_FILTER_NAMES = {
    "new": 0,
    "commissioning": 1,
    "failed_commissioning": 2,
    "missing": 3,
    "ready": 4,
    "reserved": 5,
    "deployed": 6,
    "retired": 7,
    "broken": 8,
    "deploying": 9,
    "allocated": 10,
    "failed_deployment": 11,
    "releasing": 12,
    "failed_releasing": 13,
    "disk_erasing": 14,
    "failed_disk_erasing": 15,
    "rescue_mode": 16,
    "entering_rescue_mode": 17,
    "failed_entering_rescue_mode": 18,
    "exiting_rescue_mode": 19,
    "failed_exiting_rescue_mode": 20,
    "testing": 21,
    "failed_testing": 22,
}
SIMPLE_STATUSES: dict[str, set[int]] = {
    "new": {0},
    "commissioning": {1},
    "failed": {2, 11, 13, 15, 18, 20, 22},
    "ready": {4},
    "deployed": {6},
    "broken": {8},
    "deploying": {9},
    "allocated": {10},
    "releasing": {12, 14},
    "rescue_mode": {16, 17, 19},
    "testing": {21},
    "other": {3, 5, 7},
}
POWER_STATES = ("on", "off", "unknown", "error")
DEPLOYMENT_TARGETS = ("memory", "disk")

LIST_FILTERS = (
    "id",
    "not_id",
    "hostname",
    "not_hostname",
    "mac_address",
    "domain",
    "not_domain",
    "zone",
    "not_in_zone",
    "pool",
    "not_in_pool",
    "status",
    "not_status",
    "simple_status",
    "not_simple_status",
    "arch",
    "not_arch",
    "tags",
    "not_tags",
    "agent_name",
    "not_agent_name",
    "owner",
    "not_owner",
    "fabrics",
    "not_fabrics",
    "fabric_classes",
    "not_fabric_classes",
    "vlans",
    "not_vlans",
    "subnets",
    "not_subnets",
    "pod",
    "not_pod",
    "pod_type",
    "not_pod_type",
    "power_state",
    "not_power_state",
    "deployment_target",
    "not_deployment_target",
)
NUMBER_FILTERS = {
    "cpu_count": "Invalid CPU count: number required.",
    "mem": "Invalid memory: number of MiB required.",
    "cpu_speed": "Invalid CPU speed: number required.",
    "link_speed": "Invalid link speed: number required.",
}
# Label constraints (allocate syntax) that metalplane does not evaluate: refused, never ignored.
UNSUPPORTED = ("storage", "interfaces", "devices")
IGNORED = ("op", "comment", "bridge_all", "bridge_type", "bridge_stp", "bridge_fd", "dry_run", "verbose")
# What the generic nodes/, devices/ and controllers' collections honour (filtered_nodes_list_from_request).
NODE_LIST_FILTERS = ("id", "hostname", "mac_address", "domain", "zone", "pool", "agent_name")


@dataclass(frozen=True)
class Known:
    """What filter values may name."""

    zones: frozenset[str] = frozenset()
    pools: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    owners: frozenset[str] = frozenset()
    architectures: frozenset[str] = frozenset()
    subnets: tuple[dict[str, Any], ...] = ()  # {id, cidr, name}
    vlans: tuple[dict[str, Any], ...] = ()  # {id, vid, name, fabric_id, fabric_name}


@dataclass(frozen=True)
class Constraints:
    values: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    numbers: dict[str, float] = field(default_factory=dict)

    def get(self, name: str) -> tuple[Any, ...]:
        return self.values.get(name, ())


def _split_tags(values: Iterable[str]) -> list[str]:
    return [t for v in values for t in re.split(r"[,\s]+", v) if t]


def _arch_matches(pattern: str, arch: str | None) -> bool:
    if arch is None:
        return False
    return arch == pattern if "/" in pattern else arch.split("/")[0] == pattern


def _specified_subnets(spec: str, known: Known) -> set[int]:
    kind, _, value = (
        spec.partition(":") if ":" in spec and spec.split(":")[0] in ("id", "cidr", "name", "ip") else ("", "", spec)
    )
    found = set()
    for s in known.subnets:
        if kind == "id" or (not kind and value.isdigit()):
            hit = str(s["id"]) == value
        elif kind == "name":
            hit = s["name"] == value
        elif kind == "ip":
            try:
                hit = ip_address(value) in ip_network(s["cidr"])
            except ValueError:
                hit = False
        else:
            try:
                hit = ip_network(value, strict=False) == ip_network(s["cidr"])
            except ValueError:
                hit = not kind and s["name"] == value
        if hit:
            found.add(s["id"])
    return found


def _specified_vlans(spec: str, known: Known) -> set[int]:
    kind, _, value = spec.partition(":") if ":" in spec else ("id", "", spec)
    found = set()
    for v in known.vlans:
        hit = {
            "id": str(v["id"]) == value,
            "vid": str(v["vid"]) == value,
            "name": (v["name"] or "untagged") == value,
            "fabric": value in (v["fabric_name"], str(v["fabric_id"])),
        }.get(kind, False)
        if hit:
            found.add(v["id"])
    return found


def parse(given: dict[str, list[str]], known: Known) -> Constraints:
    """The request's filters, checked; Invalid with MAAS's messages per field."""
    errors: dict[str, list[str]] = {}
    values: dict[str, tuple[Any, ...]] = {}
    numbers: dict[str, float] = {}
    for name, raw in given.items():
        if name in IGNORED:
            continue
        if any("\x00" in v for v in raw):
            errors[name] = ["Null characters are not allowed."]
            continue
        if name in UNSUPPORTED:
            raise Refused(f"The '{name}' constraint is not supported by this MAAS.")
        if name in NUMBER_FILTERS:
            try:
                numbers[name] = float(raw[-1])
            except ValueError:
                errors[name] = [NUMBER_FILTERS[name]]
            continue
        if name not in LIST_FILTERS:
            errors[name] = ["No such constraint."]
            continue
        items = [v.strip() for v in raw if v.strip()]
        if name in ("tags", "not_tags"):
            items = _split_tags(items)
        error = _check(name, items, known)
        if error:
            errors[name] = [error]
            continue
        if name in ("status", "not_status"):
            values[name] = tuple(STATUS_FILTER_NAMES[s.lstrip("=")] for s in items)
        elif name in ("simple_status", "not_simple_status"):
            values[name] = tuple(x for s in items for x in SIMPLE_STATUSES[s])
        elif name in ("mac_address",):
            values[name] = tuple(m.lower().replace("-", ":") for m in items)
        elif name in ("subnets", "not_subnets"):
            values[name] = tuple(frozenset(_specified_subnets(s, known)) for s in items)
        elif name in ("vlans", "not_vlans"):
            values[name] = tuple(frozenset(_specified_vlans(s, known)) for s in items)
        else:
            values[name] = tuple(items)
    if errors:
        raise Invalid(errors)
    return Constraints(values, numbers)


def _check(name: str, items: list[str], known: Known) -> str | None:
    if name == "mac_address" and any(validation.normalise_mac(m) is None for m in items):
        return "Invalid parameter: invalid MAC address format"
    if name in ("zone", "not_in_zone"):
        missing = [z for z in items if z not in known.zones]
        return f"No such zone(s): {', '.join(missing)}." if missing else None
    if name in ("pool", "not_in_pool"):
        missing = [p for p in items if p not in known.pools]
        return f"No such pool(s): {', '.join(missing)}." if missing else None
    if name == "tags":
        missing = [t for t in items if t not in known.tags]
        return f"No such tag(s): {', '.join(repr(t) for t in missing)}." if missing else None
    if name == "owner":
        missing = [o for o in items if o not in known.owners]
        return f"No such owner: {missing[0]!r}." if missing else None
    if name in ("status", "not_status"):
        bad = [s for s in items if s.lstrip("=") not in STATUS_FILTER_NAMES]
        return f"Select a valid choice. {bad[0]} is not one of the available choices." if bad else None
    if name in ("simple_status", "not_simple_status"):
        bad = [s for s in items if s not in SIMPLE_STATUSES]
        return f"Select a valid choice. {bad[0]} is not one of the available choices." if bad else None
    if name in ("power_state", "not_power_state"):
        bad = [s for s in items if s not in POWER_STATES]
        return f"Select a valid choice. {bad[0]} is not one of the available choices." if bad else None
    if name in ("deployment_target", "not_deployment_target"):
        bad = [s for s in items if s not in DEPLOYMENT_TARGETS]
        return f"Select a valid choice. {bad[0]} is not one of the available choices." if bad else None
    if name in ("arch", "not_arch"):
        bad = [a for a in items if not any(_arch_matches(a, k) for k in known.architectures)]
        return "Architecture not recognised." if bad else None
    if name in ("subnets", "not_subnets") and any(not _specified_subnets(s, known) for s in items):
        return "No matching subnets found."
    if name in ("vlans", "not_vlans") and any(not _specified_vlans(s, known) for s in items):
        return "No matching VLANs found."
    return None


def matches(c: Constraints, n: dict[str, Any]) -> bool:
    """Whether node facts `n` pass: keys system_id, hostname, domain, zone, pool, status,
    architecture, tags, agent_name, owner, cpu_count, memory, cpu_speed, power_state,
    macs, fabrics, fabric_classes, vlans (ids), subnets (ids), link_speeds, pod, pod_type."""

    def any_of(name: str, value: Any) -> bool:
        wanted = c.get(name)
        return not wanted or value in wanted

    def none_of(name: str, value: Any) -> bool:
        return value not in c.get(name)

    checks = [
        any_of("id", n["system_id"]),
        none_of("not_id", n["system_id"]),
        any_of("hostname", n["hostname"]),
        none_of("not_hostname", n["hostname"]),
        any_of("domain", n["domain"]),
        none_of("not_domain", n["domain"]),
        any_of("zone", n["zone"]),
        none_of("not_in_zone", n["zone"]),
        any_of("pool", n["pool"]),
        none_of("not_in_pool", n["pool"]),
        any_of("status", n["status"]),
        none_of("not_status", n["status"]),
        any_of("simple_status", n["status"]),
        none_of("not_simple_status", n["status"]),
        any_of("agent_name", n["agent_name"]),
        none_of("not_agent_name", n["agent_name"]),
        any_of("owner", n["owner"]),
        none_of("not_owner", n["owner"]),
        any_of("power_state", n["power_state"]),
        none_of("not_power_state", n["power_state"]),
        any_of("deployment_target", "disk"),
        none_of("not_deployment_target", "disk"),
        any_of("pod", n.get("pod")),
        none_of("not_pod", n.get("pod")),
        any_of("pod_type", n.get("pod_type")),
        none_of("not_pod_type", n.get("pod_type")),
        not c.get("mac_address") or bool(set(c.get("mac_address")) & set(n["macs"])),
        not c.get("arch") or any(_arch_matches(a, n["architecture"]) for a in c.get("arch")),
        not any(_arch_matches(a, n["architecture"]) for a in c.get("not_arch")),
        set(c.get("tags")) <= set(n["tags"]),
        not set(c.get("not_tags")) & set(n["tags"]),
        not c.get("fabrics") or bool(set(c.get("fabrics")) & set(n["fabrics"])),
        not set(c.get("not_fabrics")) & set(n["fabrics"]),
        not c.get("fabric_classes") or bool(set(c.get("fabric_classes")) & set(n["fabric_classes"])),
        not set(c.get("not_fabric_classes")) & set(n["fabric_classes"]),
        not c.get("vlans") or any(ids & set(n["vlans"]) for ids in c.get("vlans")),
        not any(ids & set(n["vlans"]) for ids in c.get("not_vlans")),
        all(ids & set(n["subnets"]) for ids in c.get("subnets")),
        not any(ids & set(n["subnets"]) for ids in c.get("not_subnets")),
        n["cpu_count"] >= c.numbers.get("cpu_count", 0),
        n["memory"] >= c.numbers.get("mem", 0),
        n["cpu_speed"] >= c.numbers.get("cpu_speed", 0),
        max(n["link_speeds"], default=0) >= c.numbers.get("link_speed", 0),
    ]
    return all(checks)
