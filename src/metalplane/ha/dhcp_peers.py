"""DHCP failover pairs: which role a rack plays on a VLAN, who its peer is, who could be.

A VLAN with DHCP on has a primary rack and optionally a secondary; the two run
Kea's HA protocol as peers. The region decides from its model; the rack applies
what it is told (metalplane.rack.dhcp).
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable
from typing import TypeVar

R = TypeVar("R")  # a rack's id

#: Kea HA states in which a server answers clients alone (its partner is gone or being synced).
HA_ALONE = frozenset({"partner-down", "partner-in-maintenance"})
#: Kea HA states of a pair that works as configured.
HA_PAIRED = frozenset({"hot-standby", "load-balancing", "backup", "passive-backup"})
#: Kea HA states in which a server answers no client.
HA_NOT_SERVING = frozenset({"waiting", "syncing", "terminated", "unavailable", "in-maintenance"})


def role_on_vlan(rack_id: R, primary: R | None, secondary: R | None) -> str | None:
    """standalone, primary or secondary — or None when this rack has no part."""
    if rack_id == primary:
        return "primary" if secondary is not None else "standalone"
    if rack_id == secondary and primary is not None:
        return "secondary"
    return None


def kea_instance_name(role: str, peer_name: str | None, mode: str | None) -> str:
    """The name of the Kea process a rack serves a VLAN with: one per HA relationship
    ("ha-primary-rack2-hot-standby"), all its VLANs without a partner in "standalone".
    Filesystem-safe: the rack names the process's directory after it."""
    if role == "standalone" or peer_name is None:
        return "standalone"
    return f"ha-{role}-{re.sub(r'[^A-Za-z0-9_-]', '_', peer_name)}-{mode}"


def kea_ha_state(dhcpd_report: str, instance: str) -> str | None:
    """The Kea HA state (hot-standby, partner-down, ...) of `instance` as the rack's
    dhcpd service reports it ("NAME: pid N, HA STATE, restarts R; ..."); "not running"
    when its process is down; None when the report does not mention the instance or
    Kea has not said its state yet."""
    for part in dhcpd_report.split("; "):
        if not part.startswith(f"{instance}: "):
            continue
        rest = part.removeprefix(f"{instance}: ")
        if not rest.startswith("pid "):
            return "not running"
        found = re.search(r", HA ([^,;]+),", rest)
        return found.group(1) if found else None
    return None


def ha_state_status(state: str | None) -> str:
    """A Kea HA state as a service status word: running (paired), degraded (alone or
    not serving), dead (its process is down), unknown (anything else: not reported
    yet, or a text Kea answered instead of a state)."""
    if state == "not running":
        return "dead"
    if state in HA_PAIRED:
        return "running"
    return "degraded" if state in HA_ALONE or state in HA_NOT_SERVING else "unknown"


def pairing(role: str, primary: R | None, secondary: R | None, addressed: Container[R]) -> tuple[str, R | None]:
    """(the role the rack serves in, its peer) given its configured `role`.

    The peer is the other rack of the pair. A peer without an IPv4 address on the
    VLAN (not in `addressed`) cannot take part in failover, so the rack serves alone.
    """
    peer = secondary if role == "primary" else primary if role == "secondary" else None
    if role != "standalone" and (peer is None or peer not in addressed):
        return "standalone", None
    return role, peer


def pick_candidate(
    racks_on_vlan: Iterable[str], primary: str | None, secondary: str | None, alive: Container[str]
) -> str | None:
    """The rack the seeds say you will see in the 'Secondary controller' field: the
    first live rack on the VLAN, other than the primary, when there is no secondary."""
    if primary is None or secondary is not None:
        return None
    for system_id in sorted(racks_on_vlan):
        if system_id != primary and system_id in alive:
            return system_id
    return None
