"""HTTP/1.1 pieces of the rack's boot asset server, as pure functions (unit tested).

- `parse_request_head`: request line and headers.
- `parse_range`: one `Range: bytes=...` against a size (RFC 9110 section 14).
- `etag_in` / `if_range_allows`: conditional requests.
- `route_image_path`: the URL layout under /images/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from metalplane.rack.images.manifest import SHA256_RE, valid_name, valid_segment

MAX_HEAD = 16384  # bytes of request line + headers
UNSATISFIABLE = "unsatisfiable"

REASONS = {
    200: "OK",
    206: "Partial Content",
    304: "Not Modified",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    416: "Range Not Satisfiable",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class RequestHead:
    method: str
    target: str  # as sent
    path: str  # percent-decoded, no query
    query: str
    version: str  # "HTTP/1.1"
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if self.version == "HTTP/1.1":
            return "close" not in tokens
        return "keep-alive" in tokens


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def parse_request_head(head: bytes) -> RequestHead:
    """Parse everything before the blank line (which is not included)."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # latin-1 decodes anything; kept for clarity
        raise BadRequest(400, "undecodable request") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]):
        raise BadRequest(400, "malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        if version.startswith("HTTP/"):
            raise BadRequest(505, "HTTP version not supported")
        raise BadRequest(400, "malformed request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.fullmatch(name):
            raise BadRequest(400, "malformed header line")
        name = name.lower()
        value = value.strip(" \t")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    if version == "HTTP/1.1" and "host" not in headers:
        raise BadRequest(400, "HTTP/1.1 request without Host")
    if target.startswith(("http://", "https://")):  # absolute-form
        rest = target.split("://", 1)[1]
        target_path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    else:
        target_path = target
    if not target_path.startswith("/"):
        raise BadRequest(400, "request target must be a path")
    raw_path, _, query = target_path.partition("?")
    try:
        path = unquote(raw_path, errors="strict") if "%" in raw_path else raw_path
    except UnicodeDecodeError:
        raise BadRequest(400, "path is not UTF-8") from None
    if "\x00" in path:
        raise BadRequest(400, "NUL in path")
    return RequestHead(method, target, path, query, version, headers)


def parse_range(value: str | None, size: int) -> tuple[int, int] | str | None:
    """The one byte range `value` asks of a representation of `size` bytes.

    Returns (first, last) inclusive; `UNSATISFIABLE` (answer 416); or None: no range,
    or one this server ignores (serve the whole file with 200, as RFC 9110 allows):
    another unit, a syntax error, or several ranges."""
    if not value:
        return None
    unit, sep, spec = value.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    spec = spec.strip()
    if "," in spec:
        return None
    first, dash, last = spec.partition("-")
    first, last = first.strip(), last.strip()
    if not dash or (first and not first.isdigit()) or (last and not last.isdigit()):
        return None
    if not first:  # suffix: the last N bytes
        if not last:
            return None
        n = int(last)
        if n == 0 or size == 0:
            return UNSATISFIABLE
        return (max(0, size - n), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # invalid: ignored
    if start >= size:
        return UNSATISFIABLE
    return (start, min(end, size - 1))


def _tags(value: str) -> list[str]:
    return [t.strip() for t in value.split(",") if t.strip()]


def etag_in(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match matches `etag` (weak comparison; "*" matches any)."""
    if not if_none_match:
        return False
    plain = etag.removeprefix("W/")
    for tag in _tags(if_none_match):
        if tag == "*" or tag.removeprefix("W/") == plain:
            return True
    return False


def if_range_allows(if_range: str | None, etag: str | None, last_modified: str | None) -> bool:
    """Whether a Range may be honoured under If-Range (strong ETag or exact date match)."""
    if not if_range:
        return True
    value = if_range.strip()
    if value.startswith(('"', "W/")):
        return etag is not None and not value.startswith("W/") and value == etag
    return last_modified is not None and value == last_modified


@dataclass(frozen=True)
class ImageRoute:
    sha256: str | None = None  # /images/by-sha256/<sha>
    ident: tuple[str, str, str, str, str] | None = None  # (name, arch, subarch, version, filetype)
    index: bool = False  # /images/index.json


def route_image_path(path: str) -> ImageRoute | None:
    """/images/by-sha256/<sha256>, /images/<name...>/<arch>/<subarch>/<version>/<filetype>
    (the name may hold "/"; `version` may be "latest"), /images/index.json; else None."""
    if not path.startswith("/images/"):
        return None
    rest = path[len("/images/") :]
    if rest == "index.json":
        return ImageRoute(index=True)
    parts = rest.split("/")
    if len(parts) == 2 and parts[0] == "by-sha256":
        sha = parts[1].lower()
        return ImageRoute(sha256=sha) if SHA256_RE.fullmatch(sha) else None
    if len(parts) < 5:
        return None
    name = "/".join(parts[:-4])
    arch, subarch, version, filetype = parts[-4:]
    if not valid_name(name) or not all(valid_segment(p) for p in (arch, subarch, version, filetype)):
        return None
    return ImageRoute(ident=(name, arch, subarch, version, filetype))
