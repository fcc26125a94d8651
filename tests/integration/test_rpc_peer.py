"""Typed calls over a real RPC connection (TLS websocket on 127.0.0.1, the real handshake):
decoding on both ends, no-such-method, the protocol version rule, refusals."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from websockets.asyncio.server import serve

from metalplane import __version__
from metalplane.rpc import wire
from metalplane.rpc.client import Connection, open_connection
from metalplane.rpc.dhcp import DhcpState, InvalidDhcpState
from metalplane.rpc.dispatch import handler_table, handles
from metalplane.rpc.handshake import ClientHello, HandshakeRefused, server_handshake
from metalplane.rpc.messages import BootConfig, GetBootConfig, GetDhcpState, Ping, Stop
from metalplane.rpc.protocol import NoSuchMethod, RemoteError, RpcPeer
from metalplane.rpc.tls import fingerprint_pem, make_cluster_tls, server_context
from metalplane.rpc.versions import PROTOCOL, SUPPORTED, ProtocolRange

SECRET = "s3cret-for-the-test"
CLUSTER = str(uuid.uuid4())
TLS = make_cluster_tls(CLUSTER)
MAC = "52:54:00:aa:bb:01"


class RegionSide:
    """Answers two rack → region calls; the rest are unknown to it."""

    @handles(GetBootConfig)
    async def boot_config(self, message: GetBootConfig) -> BootConfig:
        return BootConfig("commission", "k" * 64, "i" * 64, f"mac={message.mac} arch={message.architecture}")

    @handles(GetDhcpState)
    async def dhcp_state(self, message: GetDhcpState) -> DhcpState:
        # A model no rack could serve: the region refuses to send it, with the reasons.
        return wire.decode(
            DhcpState,
            {
                "vlans": [
                    {
                        "vlan_id": 1,
                        "interface": "eth1",
                        "self_address": "10.9.0.2",
                        "subnets": [{"subnet_id": 1, "cidr": "10.8.0.0/24"}],
                    }
                ]
            },
        )


class RackSide:
    @handles(Ping)
    async def ping(self, message: Ping) -> str:
        return "pong"


@dataclass
class Link:
    rack: Connection  # the rack's end
    region: RpcPeer  # the region's end


@contextlib.asynccontextmanager
async def linked(region_range: ProtocolRange = SUPPORTED, rack_range: ProtocolRange = SUPPORTED) -> AsyncIterator[Link]:
    ends: asyncio.Queue[RpcPeer] = asyncio.Queue()

    async def accept(ws) -> None:
        try:
            hello, protocol = await server_handshake(
                ws, SECRET, fingerprint_pem(TLS["cert"]), "region1", CLUSTER, __version__, TLS["ca_cert"], region_range
            )
        except HandshakeRefused:
            return
        peer = RpcPeer(ws, handler_table(RegionSide()), f"rack {hello.hostname}", protocol)
        ends.put_nowait(peer)
        await peer.serve()

    async with serve(accept, "127.0.0.1", 0, ssl=server_context(TLS["cert"], TLS["key"])) as server:
        port = server.sockets[0].getsockname()[1]
        me = ClientHello("rack", "abc123", "rack1", __version__, None, rack_range)
        connection = await open_connection("127.0.0.1", port, SECRET, me, None, handler_table(RackSide()))
        serving = asyncio.ensure_future(connection.peer.serve())
        try:
            yield Link(connection, await asyncio.wait_for(ends.get(), 10))
        finally:
            await connection.ws.close()
            await serving


async def test_calls_are_typed_both_ways():
    async with linked() as link:
        answer = await link.rack.peer.call(GetBootConfig(MAC), timeout=5)
        assert answer == BootConfig("commission", "k" * 64, "i" * 64, f"mac={MAC} arch=amd64")
        assert await link.region.call(Ping(), timeout=5) == "pong"
        assert link.rack.welcome.protocol == link.region.protocol == link.rack.peer.protocol == PROTOCOL


async def test_a_call_the_peer_does_not_know_is_no_such_method_and_the_link_lives_on():
    async with linked() as link:
        with pytest.raises(NoSuchMethod):
            await link.region.call(Stop("test"), timeout=5)  # this rack side has no Stop handler
        with pytest.raises(NoSuchMethod, match="unknown method 'GetSomethingNew'"):
            await link.rack.peer.call_raw("GetSomethingNew", {}, timeout=5)
        assert await link.region.call(Ping(), timeout=5) == "pong"


async def test_arguments_that_do_not_decode_are_refused_with_every_field_named():
    async with linked() as link:
        with pytest.raises(RemoteError) as caught:
            await link.rack.peer.call_raw("GetBootConfig", {"mac": 5, "architecture": ["amd64"]}, timeout=5)
        assert caught.value.code == "invalid-message"
        assert [e.split(":")[0] for e in caught.value.errors] == ["mac", "architecture"]


async def test_a_dhcp_state_the_region_refuses_to_send_reaches_the_rack_as_invalid_dhcp_state():
    async with linked() as link:
        with pytest.raises(InvalidDhcpState) as caught:
            await link.rack.peer.call(GetDhcpState(), timeout=5)
        assert caught.value.errors == ["vlans[0].self_address: 10.9.0.2 is in none of the VLAN's subnets (10.8.0.0/24)"]


async def test_a_message_newer_than_the_agreed_version_is_not_sent(monkeypatch):
    monkeypatch.setattr(Ping, "added_in", 2)
    async with linked(region_range=ProtocolRange(1, 1), rack_range=ProtocolRange(1, 2)) as link:
        assert link.rack.peer.protocol == link.region.protocol == 1
        with pytest.raises(NoSuchMethod, match="Ping needs RPC protocol 2"):
            await link.region.call(Ping(), timeout=5)
    async with linked(region_range=ProtocolRange(1, 2), rack_range=ProtocolRange(1, 2)) as link:
        assert link.region.protocol == 2 and await link.region.call(Ping(), timeout=5) == "pong"


@pytest.mark.parametrize(
    "region_range, rack_range, advice",
    [
        (ProtocolRange(2, 3), ProtocolRange(1, 1), "upgrade the rack"),
        (ProtocolRange(1, 2), ProtocolRange(3, 3), "upgrade the regions first"),
    ],
)
async def test_racks_outside_the_regions_protocol_range_are_refused(region_range, rack_range, advice):
    with pytest.raises(HandshakeRefused) as caught:
        async with linked(region_range, rack_range):
            pass
    assert caught.value.reason == "version" and caught.value.message.endswith(advice)
