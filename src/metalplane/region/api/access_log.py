"""One log line per API request: client, method, path, status, duration (and its
sample in `maas_http_request_latency`, region.metrics).

The query string is left out (it may carry anything a client put there),
except MAAS's `op=`, which says what the request did; headers never appear,
so neither does the Authorization header. HAProxy's passing health checks
are logged at debug level only.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qs

from metalplane.region import metrics
from metalplane.region.api.routes import HEALTH_PATH

log = logging.getLogger("metalplane.region.access")


def request_target(path: str, query_string: bytes) -> str:
    """The path, plus `?op=NAME` when the request named an op."""
    ops = parse_qs(query_string.decode("latin-1"), keep_blank_values=True).get("op")
    if ops and ops[0].replace("-", "").replace("_", "").isalnum():
        return f"{path}?op={ops[0]}"
    return path


def access_line(client: str, method: str, target: str, status: int, seconds: float) -> str:
    return f"{client} {method} {target} {status} {seconds * 1000:.1f}ms"


def access_level(path: str, status: int) -> int:
    """A load balancer's passing health checks (every second) only at debug level."""
    return logging.DEBUG if path == HEALTH_PATH and status == 200 else logging.INFO


class AccessLog:
    """ASGI middleware around the region's app; anything that is not HTTP passes through."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500  # what the client sees if the app dies before answering

        async def send_and_note(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            seconds = time.perf_counter() - started
            metrics.observe_request(scope, status, seconds)
            client = scope.get("client")
            log.log(
                access_level(scope["path"], status),
                access_line(
                    client[0] if client else "-",
                    scope["method"],
                    request_target(scope["path"], scope.get("query_string", b"")),
                    status,
                    seconds,
                ),
            )
