"""The one place where the region's errors become HTTP: a status per kind and MAAS's bodies.

MAAS answers form errors as JSON ({"field": ["reason"]}) and everything else as
plain text; a 401 names the OAuth realm, a 503 may say when to come back.
"""

from __future__ import annotations

import json

from starlette.responses import Response

from metalplane.region import errors
from metalplane.region.errors import RegionError, Unauthenticated, Unavailable

JSON = "application/json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"

STATUS: dict[type[RegionError], int] = {
    errors.Invalid: 400,
    errors.Refused: 400,
    errors.TooLarge: 413,
    errors.Unauthenticated: 401,
    errors.PermissionDenied: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Unavailable: 503,
}


def status_of(exc: RegionError) -> int:
    """The status of the nearest kind `exc` is (a service may subclass a kind)."""
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    raise TypeError(f"{type(exc).__name__} has no HTTP status; add its kind to STATUS")


def error_response(exc: RegionError) -> Response:
    if isinstance(exc.detail, dict):
        body, content_type = json.dumps(exc.detail).encode(), JSON
    else:
        body, content_type = exc.detail.encode(), TEXT
    headers = {}
    if isinstance(exc, Unavailable) and exc.retry_after:
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'OAuth realm="OAuth"'
    return Response(body, status_code=status_of(exc), media_type=content_type, headers=headers)


def plain_text(exc: RegionError) -> str:
    """The detail as one line of text, for front ends that answer in plain text only."""
    return exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
