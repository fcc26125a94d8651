"""The region's RPC port before authentication (issue 12): small frames until the peer
has proven the secret, a bounded handshake, and full frames after it. Real region
processes; the attacker is tests.support.floods.py."""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid

import pytest
from websockets.asyncio.server import serve

from metalplane import __version__
from metalplane.rack.registration import refusal_advice
from metalplane.region.bootstrap import run_db
from metalplane.region.services import cluster
from metalplane.rpc.client import open_connection
from metalplane.rpc.endpoint import Endpoint
from metalplane.rpc.handshake import HANDSHAKE_TIMEOUT, ClientHello, HandshakeRefused
from metalplane.rpc.messages import GetBootConfig
from metalplane.rpc.protocol import RemoteError, pack, unpack
from metalplane.rpc.tls import make_cluster_tls, server_context
from tests.support.floods import flood, open_upgraded, worker_endpoints

MiB = 1024 * 1024


def test_a_large_frame_before_the_handshake_is_refused_at_its_header(shared_region):
    endpoint = worker_endpoints(shared_region.url)[0]
    (result,) = asyncio.run(flood(endpoint.host, endpoint.port, 64 * MiB, connections=1))
    assert result.closed
    # What the kernel's socket buffers took before the region's close arrived, not 64 MiB.
    assert result.sent < 16 * MiB, result


def test_a_peer_that_says_nothing_is_dropped_after_the_handshake_timeout(shared_region):
    endpoint = worker_endpoints(shared_region.url)[0]

    async def silent_peers() -> tuple[float, float]:
        started = time.monotonic()
        # One that completes TLS and the upgrade, then never authenticates...
        reader, writer = await open_upgraded(endpoint.host, endpoint.port)
        # ...and one that opens TCP and never even starts TLS.
        raw_reader, raw_writer = await asyncio.open_connection(endpoint.host, endpoint.port)

        async def hung_up(r: asyncio.StreamReader) -> float:
            try:
                while await r.read(65536):
                    pass
            except (ConnectionError, ssl.SSLError):
                pass
            return time.monotonic() - started

        upgraded, raw = await asyncio.wait_for(
            asyncio.gather(hung_up(reader), hung_up(raw_reader)), HANDSHAKE_TIMEOUT + 10
        )
        writer.close()
        raw_writer.close()
        return upgraded, raw

    upgraded, raw = asyncio.run(silent_peers())
    assert HANDSHAKE_TIMEOUT - 1 <= upgraded <= HANDSHAKE_TIMEOUT + 5
    assert HANDSHAKE_TIMEOUT - 1 <= raw <= HANDSHAKE_TIMEOUT + 5


def test_after_the_handshake_frames_may_be_large(shared_region):
    secret = run_db(shared_region.config, cluster.shared_secret)
    endpoint = worker_endpoints(shared_region.url)[0]

    async def big_call() -> RemoteError:
        me = ClientHello("rack", f"limits-{uuid.uuid4().hex[:6]}", "limits-rack", __version__, None)
        connection = await open_connection(endpoint.host, endpoint.port, secret, me, None, {})
        serving = asyncio.ensure_future(connection.peer.serve())
        try:
            with pytest.raises(RemoteError) as refused:  # answered (unregistered), not cut off
                await connection.peer.call(GetBootConfig("x" * (2 * MiB)), timeout=30)
            return refused.value
        finally:
            await connection.ws.close()
            serving.cancel()

    assert asyncio.run(big_call()).code == "not-registered"


def test_a_region_that_cannot_prove_the_secret_is_blamed_not_the_racks_secret(workdir):
    """A fake region: it takes any proof and answers with a wrong one of its own."""
    tls = make_cluster_tls(str(uuid.uuid4()))

    async def impostor(ws) -> None:
        await ws.send(
            pack(
                {
                    "t": "hello",
                    "region": "fake",
                    "cluster": "c",
                    "version": __version__,
                    "nonce": "00" * 16,
                    "protocol": [1, 1],
                }
            )
        )
        unpack(await ws.recv())
        await ws.send(pack({"t": "welcome", "proof": "00" * 32, "ca": tls["ca_cert"], "cluster": "c", "protocol": 1}))
        await asyncio.sleep(1)

    async def register() -> HandshakeRefused:
        async with serve(impostor, "127.0.0.1", 0, ssl=server_context(tls["cert"], tls["key"])) as server:
            port = server.sockets[0].getsockname()[1]
            me = ClientHello("rack", "blame-rack", "blame-rack", __version__, None)
            with pytest.raises(HandshakeRefused) as refused:
                await open_connection("127.0.0.1", port, "the-racks-secret", me, None, {})
            return refused.value

    refused = asyncio.run(register())
    assert refused.reason == "region-secret"
    advice = refusal_advice(refused, Endpoint("fake", 0, "127.0.0.1", 5250))
    assert "could not prove" in advice and "was not refused" in advice and "127.0.0.1:5250" in advice
    assert "refused this rack" not in advice
    wrong = refusal_advice(
        HandshakeRefused("secret", "the shared secret does not match this cluster's secret"),
        Endpoint("r", 0, "10.0.0.1", 5250),
    )
    assert "refused this rack's shared secret" in wrong and "DATA_DIR/secret" in wrong
