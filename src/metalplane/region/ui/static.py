"""The UI's few static files, served by every region from the package, cached for good.

Their URLs carry a hash of their content (`?v=...`), so a browser may keep
them for a year and still fetches a new version the moment it exists.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PREFIX = "/MAAS/r/static/"
TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
YEAR = 365 * 24 * 3600


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    digest: str


@cache
def assets() -> dict[str, Asset]:
    found = {}
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file() and path.suffix in TYPES:
            body = path.read_bytes()
            found[path.name] = Asset(body, TYPES[path.suffix], hashlib.sha256(body).hexdigest()[:12])
    return found


def asset_url(name: str) -> str:
    return f"{STATIC_PREFIX}{name}?v={assets()[name].digest}"


async def serve_static(request: Request) -> Response:
    asset = assets().get(request.path_params["name"])
    if asset is None:
        return PlainTextResponse("Not found\n", status_code=404)
    etag = f'"{asset.digest}"'
    headers = {"Cache-Control": f"public, max-age={YEAR}, immutable", "ETag": etag, "X-Content-Type-Options": "nosniff"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def static_route() -> Route:
    return Route(STATIC_PREFIX + "{name}", serve_static, methods=["GET", "HEAD"])
