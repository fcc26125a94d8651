"""HTTP plumbing shared by the Redfish and webhook drivers (httpx, async).

One pooled client per TLS-verification mode, with a short keep-alive and few
kept connections: BMC web servers are small, so a connection is reused for the
back-to-back requests of one action (query then reset) but not held open for
long. The pool stays small on purpose: httpx's pool costs CPU per request in
proportion to the connections it holds -- measured against 500 emulated BMCs,
a query cost ~20 ms of client CPU with 256 kept connections and ~1.5 ms with 16.
Redirects are not followed (a BMC has no business sending our credentials elsewhere).
Transport errors become PowerErrors that name the BMC and never carry the credentials.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import httpx

from metalplane.rack.power.base import PowerDriver
from metalplane.rack.power.errors import (
    PowerAuthError,
    PowerBMCError,
    PowerConnectionError,
    PowerError,
    PowerTimeoutError,
)


class HttpClients:
    """Lazily made httpx clients, one per (event loop, verify) pair."""

    def __init__(self, *, keepalive_expiry: float = 5.0, max_keepalive: int = 16):
        self._clients: dict[tuple[int, bool], httpx.AsyncClient] = {}
        # No cap on connections (the runner caps concurrency); few kept alive.
        self._limits = httpx.Limits(
            max_connections=None, max_keepalive_connections=max_keepalive, keepalive_expiry=keepalive_expiry
        )

    def get(self, verify: bool) -> httpx.AsyncClient:
        key = (id(asyncio.get_running_loop()), verify)
        client = self._clients.get(key)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(
                verify=verify, limits=self._limits, follow_redirects=False, headers={"User-Agent": "metalplane-rack"}
            )
            self._clients[key] = client
        return client

    async def aclose(self) -> None:
        loop = id(asyncio.get_running_loop())
        for key, client in list(self._clients.items()):
            if key[0] == loop:
                await client.aclose()
                del self._clients[key]


async def send(
    clients: HttpClients,
    bmc: str,
    method: str,
    url: str,
    *,
    verify: bool,
    timeout: float,
    auth: httpx.Auth | None = None,
    headers: dict[str, str] | None = None,
    json_body: Any = None,
) -> httpx.Response:
    """One request; transport failures raised as PowerErrors naming `bmc`."""
    client = clients.get(verify)
    try:
        return await client.request(
            method, url, auth=auth, headers=headers, json=json_body, timeout=httpx.Timeout(timeout)
        )
    except httpx.TimeoutException:
        raise PowerTimeoutError(bmc, f"no HTTP answer within {timeout:g} s") from None
    except httpx.ConnectError as exc:
        raise PowerConnectionError(bmc, _reason(exc), answer_from="HTTP") from None
    except httpx.TransportError as exc:
        raise PowerConnectionError(bmc, _reason(exc), answer_from="HTTP") from None


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    seen = 0
    while cause is not None and seen < 5:  # httpx hides "[Errno 111] Connection refused"
        if isinstance(cause, OSError) and (cause.errno or cause.strerror):
            text = f"{text} ({os.strerror(cause.errno) if cause.errno else cause.strerror})"
            break
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "TLS certificate verification failed (set power_verify_ssl=n for self-signed BMC certificates)"
    # "[Errno 111] Connect call failed ('10.0.0.5', 443)" -> keep it; no credentials in it.
    return text[:300]


def error_text(response: httpx.Response) -> str:
    """The most useful message in an error response: Redfish's extended info, else the body's start."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        body = None
    messages: list[str] = []
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        for info in err.get("@Message.ExtendedInfo") or []:
            if isinstance(info, dict) and info.get("Message"):
                messages.append(str(info["Message"]))
        if not messages and err.get("message"):
            messages.append(str(err["message"]))
    if not messages:
        text = response.text.strip().replace("\n", " ")
        if text:
            messages.append(text[:200])
    status = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    return "; ".join([status, *messages])


def raise_for_status(response: httpx.Response, bmc: str, what: str) -> None:
    """PowerAuthError for 401/403, PowerBMCError for other failures, quoting the answer."""
    if response.is_success:
        return
    answer = error_text(response)
    if response.status_code in (401, 403):
        raise PowerAuthError(
            bmc,
            "wrong user name or password" if response.status_code == 401 else "the user may not do this",
            answer=answer,
        )
    raise PowerBMCError(bmc, f"{what} failed", answer=answer)


def json_of(response: httpx.Response, bmc: str, what: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise PowerBMCError(bmc, f"{what}: the answer is not JSON", answer=response.text.strip()[:120]) from None
    if not isinstance(data, dict):
        raise PowerBMCError(bmc, f"{what}: the answer is not a JSON object")
    return data


class HttpDriver(PowerDriver):
    """A driver that speaks HTTP to its BMCs, through one set of clients."""

    def __init__(self, clients: HttpClients | None = None):
        self.clients = clients or HttpClients()

    async def aclose(self) -> None:
        await self.clients.aclose()


__all__ = ["HttpClients", "HttpDriver", "PowerError", "error_text", "json_of", "raise_for_status", "send"]
