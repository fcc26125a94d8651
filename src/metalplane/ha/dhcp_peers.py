"""DHCP failover pairs: which role a rack plays on a VLAN, who its peer is, who could be.

A VLAN with DHCP on has a primary rack and optionally a secondary; the two run
Kea's HA protocol as peers. The region decides from its model; the rack applies
what it is told (metalplane.rack.dhcp).
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from typing import TypeVar

R = TypeVar("R")  # a rack's id


def role_on_vlan(rack_id: R, primary: R | None, secondary: R | None) -> str | None:
    """standalone, primary or secondary — or None when this rack has no part."""
    if rack_id == primary:
        return "primary" if secondary is not None else "standalone"
    if rack_id == secondary and primary is not None:
        return "secondary"
    return None


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
