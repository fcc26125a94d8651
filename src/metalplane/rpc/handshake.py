"""The first three frames of every RPC connection: hello, auth, welcome/refused.

    region -> client  hello    {region, cluster, version, nonce, protocol: [lowest, highest]}
    client -> region  auth     {role, nonce, proof, system_id, hostname, version, cluster,
                                protocol: [lowest, highest]}
    region -> client  welcome  {proof, ca, cluster, protocol}   or   refused {reason, message}

The client is a rack (or another region worker forwarding a call). Both sides
prove the shared secret (rpc.auth); the secret itself never crosses the wire.
Until then frames are limited to PRE_AUTH_FRAME (rpc.protocol) and the whole
exchange to HANDSHAKE_TIMEOUT; each side lifts the frame limit once the other
has proven the secret.
`protocol` carries each side's range of RPC protocol versions and, in the
welcome, the one the connection speaks (rpc.versions).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, NoReturn

from metalplane.rpc import auth, versions
from metalplane.rpc.protocol import allow_full_frames, pack, unpack
from metalplane.rpc.tls import fingerprint_der
from metalplane.rpc.versions import SUPPORTED, ProtocolRange

HANDSHAKE_TIMEOUT = 10.0


@dataclass(frozen=True)
class ClientHello:
    role: str
    system_id: str
    hostname: str
    version: str
    cluster: str | None
    protocol: ProtocolRange = SUPPORTED


class HandshakeRefused(Exception):
    """`reason` is one of: secret (the region refused the client's proof), region-secret
    (the client refused the region's: it is not a region of this cluster), version,
    cluster, protocol."""

    def __init__(self, reason: str, message: str, client: ClientHello | None = None):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.client = client  # who was refused, when the server knows


@dataclass(frozen=True)
class Welcome:
    region: str
    cluster: str
    version: str
    ca_cert: str
    protocol: int  # the version this connection speaks


def _range(message: dict[str, Any]) -> ProtocolRange:
    sent = message.get("protocol")
    if isinstance(sent, list) and len(sent) == 2:
        return ProtocolRange.from_wire(sent[0], sent[1])
    return ProtocolRange.from_wire(None, None)


async def _recv(ws: Any) -> dict[str, Any]:
    return unpack(await ws.recv())


def server_fingerprint(ws: Any) -> str:
    ssl_object = ws.transport.get_extra_info("ssl_object")
    if ssl_object is None:
        raise HandshakeRefused("protocol", "RPC connections must use TLS")
    return fingerprint_der(ssl_object.getpeercert(binary_form=True))


async def client_handshake(ws: Any, secret: str, me: ClientHello) -> Welcome:
    """The region's welcome; raises HandshakeRefused, or TimeoutError after HANDSHAKE_TIMEOUT."""
    async with asyncio.timeout(HANDSHAKE_TIMEOUT):
        return await _client_handshake(ws, secret, me)


async def _client_handshake(ws: Any, secret: str, me: ClientHello) -> Welcome:
    hello = await _recv(ws)
    if hello.get("t") != "hello":
        raise HandshakeRefused("protocol", f"expected hello, got {hello.get('t')!r}")
    if me.cluster and hello.get("cluster") != me.cluster:
        raise HandshakeRefused(
            "cluster",
            f"this rack is registered to cluster {me.cluster}, but the region belongs to cluster "
            f"{hello.get('cluster')}; moving a rack between clusters risks data loss — run "
            f"`metalplane rack reset` first if you really mean to move it",
        )
    fingerprint = server_fingerprint(ws)
    nonce = auth.new_nonce()
    await ws.send(
        pack(
            {
                "t": "auth",
                "role": me.role,
                "nonce": nonce,
                "proof": auth.proof(secret, me.role, str(hello.get("nonce")), nonce, fingerprint),
                "system_id": me.system_id,
                "hostname": me.hostname,
                "version": me.version,
                "cluster": me.cluster,
                "protocol": [me.protocol.lowest, me.protocol.highest],
            }
        )
    )
    reply = await _recv(ws)
    if reply.get("t") == "refused":
        raise HandshakeRefused(reply.get("reason", "protocol"), reply.get("message", ""))
    if reply.get("t") != "welcome":
        raise HandshakeRefused("protocol", f"expected welcome, got {reply.get('t')!r}")
    if not auth.verify(secret, "region", nonce, str(hello.get("nonce")), fingerprint, str(reply.get("proof", ""))):
        raise HandshakeRefused(
            "region-secret",
            "the region accepted this side's proof but could not prove that it knows the shared secret itself: "
            "it is not a region of this cluster, or something between them answers in its place; "
            "this side's secret was not refused",
        )
    try:
        agreed = versions.negotiate(_range(hello), me.protocol, me.role)
    except versions.ProtocolMismatch as exc:
        raise HandshakeRefused("version", str(exc)) from None
    allow_full_frames(ws)
    return Welcome(hello["region"], reply["cluster"], hello["version"], reply["ca"], agreed)


async def server_handshake(
    ws: Any,
    secret: str,
    own_fingerprint: str,
    region: str,
    cluster: str,
    version: str,
    ca_cert: str,
    protocol: ProtocolRange = SUPPORTED,
) -> tuple[ClientHello, int]:
    """The client's hello and the protocol version the connection speaks; raises
    HandshakeRefused, or TimeoutError after HANDSHAKE_TIMEOUT (a peer that connects
    and says nothing holds a connection for no longer than that)."""
    async with asyncio.timeout(HANDSHAKE_TIMEOUT):
        nonce = auth.new_nonce()
        await ws.send(
            pack(
                {
                    "t": "hello",
                    "region": region,
                    "cluster": cluster,
                    "version": version,
                    "nonce": nonce,
                    "protocol": [protocol.lowest, protocol.highest],
                }
            )
        )
        msg = await _recv(ws)
        if msg.get("t") != "auth":
            raise HandshakeRefused("protocol", f"expected auth, got {msg.get('t')!r}")
        hello = ClientHello(
            str(msg.get("role")),
            str(msg.get("system_id") or ""),
            str(msg.get("hostname") or ""),
            str(msg.get("version") or ""),
            msg.get("cluster"),
            _range(msg),
        )

        async def refuse(reason: str, message: str) -> NoReturn:
            await ws.send(pack({"t": "refused", "reason": reason, "message": message}))
            raise HandshakeRefused(reason, message, hello)

        if hello.role not in ("rack", "region"):
            await refuse("protocol", f"unknown role {hello.role!r}")
        if not auth.verify(secret, hello.role, nonce, str(msg.get("nonce")), own_fingerprint, str(msg.get("proof"))):
            await refuse("secret", "the shared secret does not match this cluster's secret")
        if not versions.compatible(hello.version, version):
            await refuse("version", versions.mismatch_message(hello.version, version))
        try:
            agreed = versions.negotiate(protocol, hello.protocol, hello.role)
        except versions.ProtocolMismatch as exc:
            await refuse("version", str(exc))
        if hello.cluster and hello.cluster != cluster:
            await refuse("cluster", f"rack belongs to cluster {hello.cluster}, this is cluster {cluster}")
        allow_full_frames(ws)  # before the welcome: the client's next frame may be large
        await ws.send(
            pack(
                {
                    "t": "welcome",
                    "proof": auth.proof(secret, "region", str(msg["nonce"]), nonce, own_fingerprint),
                    "ca": ca_cert,
                    "cluster": cluster,
                    "protocol": agreed,
                }
            )
        )
        return hello, agreed
