"""Opening an authenticated RPC connection to a region worker."""

from __future__ import annotations

from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection, connect

from metalplane.rpc.dispatch import Handlers
from metalplane.rpc.handshake import ClientHello, Welcome, client_handshake
from metalplane.rpc.protocol import CLOSE_TIMEOUT, PRE_AUTH_FRAME, RpcPeer
from metalplane.rpc.tls import client_context

CONNECT_TIMEOUT = 5.0


@dataclass
class Connection:
    ws: ClientConnection
    peer: RpcPeer
    welcome: Welcome


async def open_connection(
    host: str, port: int, secret: str, me: ClientHello, ca_pem: str | None, handlers: Handlers, name: str | None = None
) -> Connection:
    """TLS + handshake. Raises HandshakeRefused, OSError or TimeoutError; the caller
    starts `peer.serve()`."""
    ws = await connect(
        f"wss://{host}:{port}/rpc",
        ssl=client_context(ca_pem),
        open_timeout=CONNECT_TIMEOUT,
        ping_interval=None,  # RpcPeer's keepalive, which tolerates this side's lag
        close_timeout=CLOSE_TIMEOUT,
        max_size=PRE_AUTH_FRAME,
        compression=None,
        server_hostname="metalplane-region",
        # Straight to the worker: no proxy from the environment (looking one up for
        # every connection scanned os.environ, 7% of a simulated-rack process's CPU).
        proxy=None,
    )
    try:
        welcome = await client_handshake(ws, secret, me)
    except BaseException:
        await ws.close()
        raise
    return Connection(
        ws,
        RpcPeer(ws, handlers, name or f"region {welcome.region}/{host}:{port}", welcome.protocol, keepalive=True),
        welcome,
    )
