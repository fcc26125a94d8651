"""Which peers talk: the product version rule, and the RPC protocol version rule.

Product: rack and region run the same major.minor version (the seeds' rule).

Protocol: an integer, raised whenever the contract (rpc.messages) changes. A
build speaks every version in [MIN_PROTOCOL, PROTOCOL]. Both sides send their
range in the handshake; the connection speaks the highest version both know.
If the ranges do not meet, the region refuses the connection (reason
"version", recorded on the rack like a product mismatch) and says which side
to upgrade. Within a connection:

- a message is only sent if the agreed version has it (`Call.added_in`);
  otherwise the caller gets `NoSuchMethod` at once, as it would from a peer
  that does not know the message ("no-such-method"), and carries on without it;
- a field is only ever added with a default, and unknown fields are ignored,
  so either side may be the newer one;
- removing a message or field, or changing its meaning, raises MIN_PROTOCOL
  (older peers are then refused, with the advice to upgrade them).

A peer that sends no range (a build from before protocol versions) counts as
speaking version 1 only.
"""

from __future__ import annotations

from dataclasses import dataclass

PROTOCOL = 2  # the newest protocol version this build speaks (2: services config, discoveries)
MIN_PROTOCOL = 1  # the oldest it still speaks


@dataclass(frozen=True)
class ProtocolRange:
    lowest: int = MIN_PROTOCOL
    highest: int = PROTOCOL

    @classmethod
    def from_wire(cls, lowest: object, highest: object) -> ProtocolRange:
        """The range a peer sent; a peer that sent none speaks version 1 only."""
        high = highest if isinstance(highest, int) and not isinstance(highest, bool) else 1
        low = lowest if isinstance(lowest, int) and not isinstance(lowest, bool) else min(1, high)
        return cls(low, high)


SUPPORTED = ProtocolRange()


class ProtocolMismatch(Exception):
    pass


def negotiate(region: ProtocolRange, client: ProtocolRange, client_role: str = "rack") -> int:
    """The protocol version a connection speaks; raises ProtocolMismatch saying who must upgrade."""
    agreed = min(region.highest, client.highest)
    if agreed >= max(region.lowest, client.lowest):
        return agreed
    if client.highest < region.lowest:
        raise ProtocolMismatch(
            f"the {client_role} speaks RPC protocol versions {client.lowest}-{client.highest}, but this region "
            f"needs {region.lowest}-{region.highest}: upgrade the {client_role}"
        )
    raise ProtocolMismatch(
        f"the {client_role} needs RPC protocol versions {client.lowest}-{client.highest}, but this region speaks "
        f"{region.lowest}-{region.highest}: upgrade the regions first"
    )


def major_minor(version: str) -> tuple[str, str]:
    parts = (version.split("+")[0].split("-")[0].split(".") + ["0", "0"])[:2]
    return parts[0], parts[1]


def compatible(rack_version: str, region_version: str) -> bool:
    return major_minor(rack_version) == major_minor(region_version)


def mismatch_message(rack_version: str, region_version: str) -> str:
    return (
        f"rack version {rack_version} does not match region version {region_version}: "
        f"rack controllers must run the same major.minor version as the region"
    )
