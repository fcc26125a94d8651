"""Opening an authenticated RPC connection to a region worker."""

from __future__ import annotations

from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from metalplane.rpc.dispatch import Handlers
from metalplane.rpc.handshake import ClientHello, Welcome, client_handshake
from metalplane.rpc.protocol import CLOSE_TIMEOUT, PRE_AUTH_FRAME, RpcPeer
from metalplane.rpc.tls import client_context

CONNECT_TIMEOUT = 5.0
RACK_PATH = "/rpc"
PEER_PATH = "/rpc/peer"  # region workers forwarding calls: never turned away by admission control


class RegionBusy(Exception):
    """The worker turned this connection away for now (admission control, ha.admission):
    come back after `retry_after` seconds."""

    def __init__(self, retry_after: float):
        super().__init__(f"region worker busy; retry after {retry_after:g} s")
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float:
    try:
        return min(max(float(value or 1), 0.1), 60.0)
    except ValueError:
        return 1.0


@dataclass
class Connection:
    ws: ClientConnection
    peer: RpcPeer
    welcome: Welcome


async def open_connection(
    host: str,
    port: int,
    secret: str,
    me: ClientHello,
    ca_pem: str | None,
    handlers: Handlers,
    name: str | None = None,
    path: str = RACK_PATH,
) -> Connection:
    """TLS + handshake. Raises HandshakeRefused, RegionBusy, OSError, TimeoutError or
    websockets' InvalidHandshake; the caller starts `peer.serve()`."""
    try:
        ws = await _connect(host, port, path, ca_pem)
    except InvalidStatus as exc:
        if exc.response.status_code == 503:
            raise RegionBusy(_retry_after(exc.response.headers.get("Retry-After"))) from None
        raise
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


async def _connect(host: str, port: int, path: str, ca_pem: str | None) -> ClientConnection:
    return await connect(
        f"wss://{host}:{port}{path}",
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
