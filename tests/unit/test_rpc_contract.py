"""The region-rack contract (rpc.messages): every call typed, each side answering
exactly its direction, values surviving the wire, the version rule, and the doc."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import msgpack
import pytest

from metalplane.rack.daemon import RackDaemon
from metalplane.rack.region_links import RegionLinks
from metalplane.region.rpc_server import RackSession, RegionRpcServer
from metalplane.rpc import wire
from metalplane.rpc.dhcp import DhcpState, InvalidDhcpState
from metalplane.rpc.dispatch import handled_by, handler_table, handles, unanswered, unexpected
from metalplane.rpc.endpoint import Endpoint
from metalplane.rpc.messages import (
    MESSAGES,
    BootConfig,
    BootImages,
    CallRack,
    DhcpChanged,
    Direction,
    Endpoints,
    GetBootConfig,
    GetBootImages,
    GetDhcpState,
    GetEndpoints,
    GetPowerTargets,
    GetServicesConfig,
    ImagesChanged,
    Interface,
    LeaseEvent,
    LinkLost,
    Ping,
    PollSettings,
    PollTarget,
    PowerAction,
    PowerReport,
    PowerResult,
    PowerTargets,
    PowerTargetsChanged,
    Register,
    ReportDiscoveries,
    ReportIsolation,
    ReportLeases,
    ReportPowerStates,
    ServicesChanged,
    ServiceStatus,
    SetTargets,
    Stop,
    UpdateServices,
    contract_table,
    messages_for,
)
from metalplane.rpc.services import Observation, ServicesConfig
from metalplane.rpc.versions import ProtocolMismatch, ProtocolRange, negotiate
from metalplane.rpc.wire import InvalidMessage

DOCS = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
E1, E2 = Endpoint("r1", 0, "10.0.0.1", 5250), Endpoint("r2", 1, "10.0.0.2", 5251)
STATE = {
    "server_name": "rack1",
    "vlans": [
        {
            "vlan_id": 5001,
            "interface": "eth1",
            "self_address": "10.50.0.2",
            "role": "primary",
            "mode": None,
            "peer": {"name": "rack2", "address": "10.50.0.3"},
            "subnets": [
                {
                    "subnet_id": 1,
                    "cidr": "10.50.0.0/24",
                    "gateway_ip": "10.50.0.1",
                    "dns_servers": ["10.50.0.2"],
                    "pools": [["10.50.0.100", "10.50.0.199"]],
                    "reserved": [["10.50.0.150", "10.50.0.160"]],
                }
            ],
        }
    ],
    "hosts": [{"mac": "52-54-00-AA-BB-01", "hostname": "node1", "ip": None}],
    "problems": ["no address on VLAN 7"],
}

# One request and one reply of every call: a new message needs its sample here.
SAMPLES: dict[type, tuple[Any, Any]] = {
    Register: (
        Register("rack1", "0.1.0", [Interface("eth0", "52:54:00:00:00:01", "physical", True, ["10.0.0.5/24"])]),
        Endpoints([E1, E2], [E2]),
    ),
    UpdateServices: (UpdateServices([ServiceStatus("dhcpd", "running", "2 VLANs")]), None),
    GetEndpoints: (GetEndpoints(), Endpoints([E1], None)),
    ReportIsolation: (ReportIsolation(1000.5, 1060.25), None),
    LinkLost: (LinkLost("r1", 3), None),
    GetDhcpState: (GetDhcpState(), wire.decode(DhcpState, STATE)),
    ReportLeases: (
        ReportLeases(
            [
                LeaseEvent(
                    7,
                    "abc",
                    "commit",
                    "10.50.0.120",
                    "52:54:00:aa:bb:01",
                    None,
                    "node1",
                    1,
                    600,
                    1600,
                    1000,
                    "standalone",
                    1000.125,
                )
            ]
        ),
        1,
    ),
    GetPowerTargets: (
        GetPowerTargets(),
        PowerTargets([PollTarget("m1", 3, "ipmi", {"power_address": "10.0.0.9"})], PollSettings(300.0, 16)),
    ),
    GetBootImages: (GetBootImages(), BootImages([{"name": "ephemeral/bookworm", "files": {}}])),
    GetBootConfig: (GetBootConfig("52:54:00:aa:bb:01"), BootConfig("commission", "a" * 64, "b" * 64, "ro quiet")),
    ReportPowerStates: (
        ReportPowerStates([PowerReport("m1", 3, "on"), PowerReport("m2", 3, "unknown", "timeout")]),
        None,
    ),
    SetTargets: (SetTargets([E1, E2]), None),
    Ping: (Ping(), "pong"),
    Stop: (Stop("deleted from the region"), None),
    DhcpChanged: (DhcpChanged(), None),
    PowerTargetsChanged: (PowerTargetsChanged(), None),
    ImagesChanged: (ImagesChanged(), None),
    PowerAction: (PowerAction("cycle", "ipmi", {"power_address": "10.0.0.9"}, True), PowerResult("on", "done")),
    CallRack: (CallRack("rack1", "Ping", {}, 2.0), "pong"),
    GetServicesConfig: (
        GetServicesConfig(),
        wire.decode(
            ServicesConfig,
            {
                "dns": {
                    "zones": ["maas", "0.50.10.in-addr.arpa"],
                    "regions": [{"address": "10.50.1.11", "port": 5247}],
                    "upstream_dns": ["192.0.2.53", "2001:db8::53"],
                    "dnssec_validation": "no",
                    "listen": ["10.50.0.2"],
                    "allow": ["10.50.0.0/24"],
                },
                "ntp": {
                    "regions": [{"host": "10.50.1.11"}],
                    "ntp_servers": ["ntp.example.com"],
                    "allow": ["10.50.0.0/24"],
                },
                "discovery": {"enabled": True, "interfaces": {"eth1": 0, "eth1.20": 20}},
            },
        ),
    ),
    ReportDiscoveries: (
        ReportDiscoveries(
            [
                Observation(
                    4,
                    ipaddress.ip_address("10.50.0.77"),
                    "52:54:00:aa:bb:02",
                    "eth1",
                    20,
                    1000.5,
                    "MOVED",
                    "52:54:00:aa:bb:01",
                )
            ]
        ),
        1,
    ),
    ServicesChanged: (ServicesChanged(["maas"]), None),
}


def through_the_wire(value: Any, tp: Any) -> Any:
    return wire.decode(tp, msgpack.unpackb(msgpack.packb(wire.encode(value, tp), use_bin_type=True), raw=False))


def test_every_message_has_a_name_a_direction_and_a_reply_type():
    assert set(SAMPLES) == set(MESSAGES.values())
    for name, message in MESSAGES.items():
        assert message.name == name == message.__name__
        assert isinstance(message.direction, Direction) and message.added_in >= 1
        assert hasattr(message, "reply")


@pytest.mark.parametrize("message", sorted(MESSAGES.values(), key=lambda m: m.name), ids=lambda m: m.name)
def test_requests_and_replies_come_through_the_wire_unchanged(message):
    request, reply = SAMPLES[message]
    assert through_the_wire(request, message) == request
    assert through_the_wire(reply, message.reply) == reply


def test_each_side_answers_exactly_the_calls_of_its_direction():
    sides = {
        Direction.REGION_TO_RACK: (RackDaemon, RegionLinks),
        Direction.RACK_TO_REGION: (RackSession,),
        Direction.REGION_TO_REGION: (RegionRpcServer,),
    }
    for direction, classes in sides.items():
        handled = handled_by(*classes)
        assert unanswered(direction, handled) == set(), direction
        assert unexpected(direction, handled) == set(), direction
    assert set().union(*(messages_for(d) for d in Direction)) == set(MESSAGES.values())


def test_a_handler_table_is_keyed_by_message_class_and_refuses_a_message_twice():
    class One:
        @handles(Ping)
        async def ping(self, message: Ping) -> str:
            return "pong"

    class Other:
        @handles(Ping)
        async def also(self, message: Ping) -> str:
            return "pong"

    one = One()
    assert handler_table(one) == {Ping: one.ping}
    with pytest.raises(TypeError, match="Ping is handled twice"):
        handler_table(one, Other())


def test_a_newer_peers_extra_fields_are_ignored_and_an_older_peers_missing_ones_default():
    newer = {"mac": "52:54:00:aa:bb:01", "architecture": "arm64", "firmware": "uefi"}
    assert wire.decode(GetBootConfig, newer) == GetBootConfig("52:54:00:aa:bb:01", "arm64")
    assert wire.decode(GetBootConfig, {"mac": "52:54:00:aa:bb:01"}).architecture == "amd64"
    assert wire.decode(Stop, {}) == Stop("")
    assert wire.decode(PowerResult, {"state": "off"}) == PowerResult("off", "")


def test_a_request_that_does_not_decode_names_every_faulty_field():
    with pytest.raises(InvalidMessage) as caught:
        wire.decode(LinkLost, {"region": 5, "worker": "two"})
    assert caught.value.code == "invalid-message" and str(caught.value).startswith("invalid LinkLost:\n")
    assert caught.value.errors == [
        "region: input should be a valid string, got 5",
        "worker: input should be a valid integer, unable to parse string as an integer, got 'two'",
    ]
    with pytest.raises(InvalidMessage, match=r"targets\[0\].port: input should be less than or equal to 65535"):
        wire.decode(SetTargets, {"targets": [{"region": "r", "worker": 0, "host": "h", "port": 70000}]})
    with pytest.raises(InvalidMessage, match="invalid ReportLeases:\n  events: required"):
        wire.decode(ReportLeases, {})


def test_the_dhcp_state_decodes_typed_and_normalised_and_refuses_with_its_own_error():
    state = wire.decode(DhcpState, STATE)
    vlan = state.vlans[0]
    assert vlan.mode == "hot-standby" and vlan.peer is not None
    assert vlan.peer.address == ipaddress.IPv4Address("10.50.0.3")
    assert state.hosts[0].mac == "52:54:00:aa:bb:01" and state.problems == ["no address on VLAN 7"]
    assert [(str(a), str(b)) for a, b in vlan.subnets[0].dynamic] == [
        ("10.50.0.100", "10.50.0.149"),
        ("10.50.0.161", "10.50.0.199"),
    ]
    bad = {**STATE, "vlans": [{**STATE["vlans"][0], "self_address": "10.99.0.2"}]}
    with pytest.raises(InvalidDhcpState) as caught:
        wire.decode(DhcpState, bad)
    assert caught.value.code == "invalid-dhcp-state"
    assert "vlans[0].self_address: 10.99.0.2 is in none of the VLAN's subnets (10.50.0.0/24)" in caught.value.errors
    with pytest.raises(InvalidDhcpState, match="state: unknown field 'boot'"):
        wire.decode(DhcpState, {**STATE, "boot": {}})  # the boot part is the rack's own


def test_endpoints_are_one_type_hashable_and_validated():
    assert {E1, Endpoint("r1", 0, "10.0.0.1", 5250)} == {E1} and E1.key == ("10.0.0.1", 5250)
    assert Endpoint.from_wire(E1.wire()) == E1
    with pytest.raises(ValueError):  # discovery skips such an entry
        Endpoint.from_wire({"region": "r1", "worker": 0, "host": "", "port": 5250})


def test_protocol_versions_agree_on_the_highest_both_speak():
    assert negotiate(ProtocolRange(1, 3), ProtocolRange(2, 5)) == 3
    assert negotiate(ProtocolRange(1, 1), ProtocolRange(1, 1)) == 1
    assert negotiate(ProtocolRange(2, 4), ProtocolRange(1, 2)) == 2  # an older rack the region still speaks


def test_protocol_ranges_that_do_not_meet_say_who_must_upgrade():
    with pytest.raises(ProtocolMismatch, match=r"upgrade the rack$"):
        negotiate(ProtocolRange(3, 4), ProtocolRange(1, 2))
    with pytest.raises(ProtocolMismatch, match=r"upgrade the regions first$"):
        negotiate(ProtocolRange(1, 2), ProtocolRange(3, 3), "region")


def test_a_peer_that_sends_no_range_speaks_version_1():
    assert ProtocolRange.from_wire(None, None) == ProtocolRange(1, 1)
    assert ProtocolRange.from_wire(2, 3) == ProtocolRange(2, 3)
    assert ProtocolRange.from_wire(True, "2") == ProtocolRange(1, 1)


def test_the_architecture_doc_lists_the_contract_as_the_registry_has_it():
    """docs/architecture.md carries `python -m metalplane.rpc.messages` verbatim."""
    assert contract_table() in DOCS.read_text()
    for name, message in MESSAGES.items():
        assert f"| `{name}` | {message.direction.value} |" in contract_table()
