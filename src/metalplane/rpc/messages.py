"""The region-rack contract: one typed message per RPC call.

Each call is a class: its fields are the request (sent as the call's argument
map); its base says who calls whom and the reply type (``class
GetDhcpState(RackToRegion[DhcpState])``); ``added_in`` is the protocol version
that introduced it (rpc.versions). The caller sends an instance and gets the
decoded reply::

    state = await peer.call(GetDhcpState())          # -> DhcpState, validated

The catalogue goes by conversation (the connection, services, DHCP, power,
boot images; then region to region), each message after the types it carries
and saying what its reply means (a reply type of None: an empty success).
Each side answers the calls of its direction with handlers registered by
message class (rpc.dispatch). Fields are only ever added with a default, so
an older peer's message still decodes; unknown fields are ignored.

`python -m metalplane.rpc.messages` prints the contract as the table in
docs/architecture.md.
"""

from __future__ import annotations

import enum
import types
import typing
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import Field
from pydantic.dataclasses import dataclass

from metalplane.rpc.dhcp import DhcpState
from metalplane.rpc.endpoint import Endpoint
from metalplane.rpc.services import Observation, ServicesConfig

R = TypeVar("R")


class Direction(enum.Enum):
    RACK_TO_REGION = "rack → region"
    REGION_TO_RACK = "region → rack"
    REGION_TO_REGION = "region → region"


#: Every call, by name (the name is what travels).
MESSAGES: dict[str, type[Call[Any]]] = {}


class Call(Generic[R]):
    """Base of every message. A message is a pydantic dataclass deriving from its
    direction's base with its reply type: ``class Ping(RegionToRack[str])``."""

    name: ClassVar[str]
    direction: ClassVar[Direction]
    reply: ClassVar[Any]  # the reply type (None: nothing but success)
    added_in: ClassVar[int] = 1  # the protocol version that introduced it

    def __init_subclass__(cls, direction: Direction | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if direction is not None:  # a direction's base, not a message
            cls.direction = direction
            return
        for base in getattr(cls, "__orig_bases__", ()):
            origin = typing.get_origin(base)
            if isinstance(origin, type) and issubclass(origin, Call):
                (cls.reply,) = typing.get_args(base)
        if not hasattr(cls, "direction") or not hasattr(cls, "reply"):
            raise TypeError(f"{cls.__name__} must derive from a direction's base with its reply type")
        cls.name = cls.__name__
        if MESSAGES.setdefault(cls.name, cls) is not cls:
            raise TypeError(f"two messages are named {cls.name}")


class RackToRegion(Call[R], direction=Direction.RACK_TO_REGION):
    pass


class RegionToRack(Call[R], direction=Direction.REGION_TO_RACK):
    pass


class RegionToRegion(Call[R], direction=Direction.REGION_TO_REGION):
    pass


def messages_for(direction: Direction) -> set[type[Call[Any]]]:
    """The calls one side must answer: racks answer REGION_TO_RACK, and so on."""
    return {m for m in MESSAGES.values() if m.direction is direction}


# --------------------------------------------------------------------------- the connection: registration, links, stop


@dataclass(frozen=True)
class Interface:
    """One of the rack's network interfaces (`ip -j addr`, loopback left out)."""

    name: str
    mac: str | None = None
    type: str = "physical"  # physical | bridge | bond | vlan
    enabled: bool = True
    addresses: list[str] = Field(default_factory=list)  # "10.0.0.2/24", IPv4 and IPv6


@dataclass(frozen=True)
class Endpoints:
    """Every live region worker, and the ones this rack should be connected to (its targets)."""

    endpoints: list[Endpoint]
    targets: list[Endpoint] | None = None


@dataclass(frozen=True)
class Register(RackToRegion[Endpoints]):
    """First call on every connection: create or update the rack and its interfaces. The reply:
    the live region workers and this rack's targets, as GetEndpoints gives them."""

    hostname: str
    version: str
    interfaces: list[Interface] = Field(default_factory=list)
    # True only for a rack told to register (or brand new): only then may an unknown
    # system_id create a record; a deleted rack must not come back by itself.
    enrol: bool = False


@dataclass(frozen=True)
class GetEndpoints(RackToRegion[Endpoints]):
    """Refresh the list of live region workers and this rack's targets: the reply."""


@dataclass(frozen=True)
class SetTargets(RegionToRack[None]):
    """The region workers this rack should be connected to now (make before break). Answered
    once the rack has taken them; it connects afterwards."""

    targets: list[Endpoint]


@dataclass(frozen=True)
class LinkLost(RackToRegion[None]):
    """The rack lost its link to another worker: forget it before its heartbeat times out.
    Answered once the region has forgotten it."""

    region: str
    worker: int


@dataclass(frozen=True)
class ReportIsolation(RackToRegion[None]):
    """The rack ran without any region from `since` to `until` (unix times). Answered once recorded."""

    since: float
    until: float


@dataclass(frozen=True)
class Ping(RegionToRack[str]):
    """Is the rack there? The reply is "pong"."""


@dataclass(frozen=True)
class Stop(RegionToRack[None]):
    """The rack was deleted through the API: stop rackd. Answered at once; rackd stops afterwards."""

    reason: str = ""


# --------------------------------------------------------------------------- services: statuses, resolver, NTP, ARP


@dataclass(frozen=True)
class ServiceStatus:
    """One rack service's health as rackd sees it (the region combines it with its own judgement)."""

    name: str  # dhcpd, dhcpd6, tftp, http, ntp_rack, dns_rack (others are ignored)
    status: str  # running | degraded | dead | off | unknown
    status_info: str = ""


@dataclass(frozen=True)
class UpdateServices(RackToRegion[None]):
    """The rack's service statuses (every few seconds, and at once on change). Answered once stored."""

    services: list[ServiceStatus]


@dataclass(frozen=True)
class GetServicesConfig(RackToRegion[ServicesConfig]):
    """What this rack's resolver, chronyd and ARP listener follow: the reply, validated on both
    sides (rpc.services). Asked after each (re)connection and on ServicesChanged."""

    added_in: ClassVar[int] = 2


@dataclass(frozen=True)
class ServicesChanged(RegionToRack[None]):
    """Fetch the services configuration again (GetServicesConfig), and forget what the
    resolver cached under `flush` (zones a region has just changed). Answered at once; the
    fetch follows."""

    added_in: ClassVar[int] = 2
    flush: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class ReportDiscoveries(RackToRegion[int]):
    """A batch of ARP observations (at least once, in order); the reply: rows changed."""

    added_in: ClassVar[int] = 2
    observations: list[Observation]


# --------------------------------------------------------------------------- DHCP


@dataclass(frozen=True)
class GetDhcpState(RackToRegion[DhcpState]):
    """What this rack must serve over DHCP: the reply, validated on both sides (rpc.dhcp). Asked
    after each (re)connection and on DhcpChanged."""


@dataclass(frozen=True)
class DhcpChanged(RegionToRack[None]):
    """Fetch the DHCP state again (GetDhcpState). Answered at once; the fetch follows."""


@dataclass(frozen=True)
class LeaseEvent:
    """One lease change read from Kea's lease file (rack.dhcp.leases)."""

    id: int  # increasing per rack: the batch is acknowledged up to the last id
    key: str  # digest of the change, equal on both racks of an HA pair
    action: str  # commit | expiry | release | decline
    ip: str
    mac: str | None = None
    client_id: str | None = None
    hostname: str | None = None
    subnet_id: int | None = None
    lease_time: int = 0
    expires: int = 0  # unix time
    cltt: int = 0  # client's last transmission, unix time
    instance: str = ""  # the Kea instance that served it
    time: float = 0.0  # when the rack read it


@dataclass(frozen=True)
class ReportLeases(RackToRegion[int]):
    """A batch of lease events (at least once, in order); the reply: rows changed."""

    events: list[LeaseEvent]


# --------------------------------------------------------------------------- power


@dataclass(frozen=True)
class PollTarget:
    """A machine behind a BMC this rack owns, with its full power parameters."""

    system_id: str
    bmc_id: int
    power_type: str
    params: dict[str, Any]


@dataclass(frozen=True)
class PollSettings:
    """How the rack polls: each machine once every `poll_interval` seconds, with at most
    `max_concurrency` BMC calls in flight."""

    poll_interval: float
    max_concurrency: int


@dataclass(frozen=True)
class PowerTargets:
    """The machines this rack polls, and how."""

    targets: list[PollTarget]
    settings: PollSettings


@dataclass(frozen=True)
class GetPowerTargets(RackToRegion[PowerTargets]):
    """The machines behind the BMCs this rack owns, and the poll settings: the reply. Asked after
    each (re)connection and on PowerTargetsChanged."""


@dataclass(frozen=True)
class PowerTargetsChanged(RegionToRack[None]):
    """Fetch the power targets again (GetPowerTargets). Answered at once; the fetch follows."""


@dataclass(frozen=True)
class PowerReport:
    """One background poll's outcome."""

    system_id: str
    bmc_id: int
    state: str  # on | off | unknown
    error: str | None = None


@dataclass(frozen=True)
class ReportPowerStates(RackToRegion[None]):
    """Background poll results: machines' power states, and failing BMCs. Answered once stored."""

    results: list[PowerReport]


@dataclass(frozen=True)
class PowerResult:
    """What a power action left: the machine's power state, and a note (why nothing was done)."""

    state: str  # on | off | unknown
    note: str = ""


@dataclass(frozen=True)
class PowerAction(RegionToRack[PowerResult]):
    """Run a power action on a machine's BMC. After a failover (the previous owner died
    mid-action) the rack queries first and only acts if still needed. The reply: the state
    the machine is left in (a query's: as found); a BMC that fails is a `power-…` error."""

    action: str  # on | off | cycle | query
    power_type: str
    params: dict[str, Any]
    after_failover: bool = False


# --------------------------------------------------------------------------- boot images and boot configs


@dataclass(frozen=True)
class BootImages:
    """The image manifest. Each entry is checked by the rack's image cache on its own
    (rack.images.manifest): one bad image is skipped, not the whole manifest."""

    images: list[dict[str, Any]]


@dataclass(frozen=True)
class GetBootImages(RackToRegion[BootImages]):
    """The images racks cache and serve: the reply, their manifest. Asked after each
    (re)connection, on ImagesChanged and every minute."""


@dataclass(frozen=True)
class ImagesChanged(RegionToRack[None]):
    """Sync the image cache again (GetBootImages). Answered at once; the sync follows."""


@dataclass(frozen=True)
class BootConfig:
    """What one machine boots: enlist, commission, deploy (the installer) or local (from its disk)."""

    purpose: str
    kernel: str | None = None  # sha256 of the cached file
    initrd: str | None = None
    params: str | None = None  # kernel command line
    problem: str | None = None  # why a machine that could netboot boots locally


@dataclass(frozen=True)
class GetBootConfig(RackToRegion[BootConfig]):
    """What the machine with this MAC should boot: the reply. `client_ip`: the address the TFTP
    or HTTP request for the config came from (a commissioning machine's enrolment credential is
    bound to it); None from racks that do not send it."""

    mac: str
    architecture: str = "amd64"
    client_ip: str | None = None


# --------------------------------------------------------------------------- region → region


@dataclass(frozen=True)
class CallRack(RegionToRegion[Any]):
    """Make `method` with `args` on a rack held by the answering worker, and return its
    reply as it came (the original caller decodes it)."""

    system_id: str
    method: str
    args: dict[str, Any]
    rack_timeout: float


# --------------------------------------------------------------------------- the contract, for the docs


def _type_text(tp: Any) -> str:
    if tp is None or tp is type(None):
        return "—"
    if tp is Any:
        return "any"
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _type_text(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        text = " or ".join(_type_text(a) for a in args if a is not type(None))
        return text + " or null" if type(None) in args else text
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_text(a) for a in typing.get_args(tp))}]"
    return str(getattr(tp, "__name__", tp))


def _fields(tp: Any) -> dict[str, Any]:
    return dict(getattr(tp, "__pydantic_fields__", None) or {})


def _fields_text(tp: Any) -> str:
    parts = [
        f"`{name}`: {_type_text(info.annotation)}" + ("" if info.is_required() else " (optional)")
        for name, info in _fields(tp).items()
    ]
    return ", ".join(parts) or "—"


def _named_types(tp: Any, found: dict[str, Any]) -> None:
    """Every structured type `tp` refers to, depth first."""
    for inner in typing.get_args(tp):
        _named_types(inner, found)
    if _fields(tp) and tp.__name__ not in found:
        found[tp.__name__] = tp
        for info in _fields(tp).values():
            _named_types(info.annotation, found)


def contract_table() -> str:
    """Every message as a markdown table row, in the catalogue's order, then the structured
    types they use (what docs/architecture.md shows; a test keeps the two equal)."""
    lines = ["| message | direction | added in | request fields | reply |", "| --- | --- | ---: | --- | --- |"]
    used: dict[str, Any] = {}
    for m in MESSAGES.values():
        lines.append(f"| `{m.name}` | {m.direction.value} | {m.added_in} | {_fields_text(m)} | {_type_text(m.reply)} |")
        for info in _fields(m).values():
            _named_types(info.annotation, used)
        _named_types(m.reply, used)
    lines += ["", "| type | fields |", "| --- | --- |"]
    lines += [f"| `{name}` | {_fields_text(tp)} |" for name, tp in used.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(contract_table(), end="")
