"""The rack HTTP server's pure pieces: request heads, ranges, conditionals, URL layout."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metalplane.rack.http.protocol import (
    UNSATISFIABLE,
    BadRequest,
    etag_in,
    if_range_allows,
    parse_range,
    parse_request_head,
    route_image_path,
)

SHA = hashlib.sha256(b"x").hexdigest()


@pytest.mark.parametrize(
    "value, size, expected",
    [
        (None, 100, None),
        ("bytes=0-99", 100, (0, 99)),
        ("bytes=0-0", 100, (0, 0)),
        ("bytes=10-", 100, (10, 99)),
        ("bytes=90-200", 100, (90, 99)),
        ("bytes=-10", 100, (90, 99)),
        ("bytes=-1000", 100, (0, 99)),
        ("BYTES = 5-6", 100, (5, 6)),
        ("bytes=100-", 100, UNSATISFIABLE),
        ("bytes=100-200", 100, UNSATISFIABLE),
        ("bytes=-0", 100, UNSATISFIABLE),
        ("bytes=0-", 0, UNSATISFIABLE),
        ("bytes=-5", 0, UNSATISFIABLE),
        ("bytes=5-4", 100, None),  # invalid: ignored, whole file
        ("bytes=0-1,5-6", 100, None),  # several ranges: whole file
        ("items=0-1", 100, None),
        ("bytes=a-b", 100, None),
        ("bytes=-", 100, None),
        ("bytes=1", 100, None),
    ],
)
def test_parse_range(value, size, expected):
    assert parse_range(value, size) == expected


@given(st.integers(0, 1000), st.integers(0, 1000), st.integers(0, 1000))
def test_parse_range_is_always_inside_the_file(first, last, size):
    got = parse_range(f"bytes={first}-{last}", size)
    if isinstance(got, tuple):
        assert 0 <= got[0] <= got[1] < size
    elif got == UNSATISFIABLE:
        assert first >= size
    else:
        assert last < first


def test_etag_and_if_range():
    etag = f'"{SHA}"'
    assert etag_in(etag, etag)
    assert etag_in(f'"other", W/{etag}', etag)
    assert etag_in("*", etag)
    assert not etag_in('"other"', etag)
    assert not etag_in(None, etag)
    assert if_range_allows(None, etag, "d")
    assert if_range_allows(etag, etag, "d")
    assert not if_range_allows('"other"', etag, "d")
    assert not if_range_allows(f"W/{etag}", etag, "d")  # If-Range needs a strong match
    assert if_range_allows("Mon, 23 Nov 2026 10:00:00 GMT", etag, "Mon, 23 Nov 2026 10:00:00 GMT")
    assert not if_range_allows("Mon, 23 Nov 2026 10:00:01 GMT", etag, "Mon, 23 Nov 2026 10:00:00 GMT")


def test_parse_request_head():
    req = parse_request_head(b"GET /images/a%20b?x=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nConnection: close")
    assert (req.method, req.path, req.query) == ("GET", "/images/a b", "x=1")
    assert req.headers["x-a"] == "1, 2"
    assert not req.keep_alive
    assert parse_request_head(b"GET / HTTP/1.1\r\nHost: h").keep_alive
    assert not parse_request_head(b"GET / HTTP/1.0").keep_alive
    assert parse_request_head(b"GET / HTTP/1.0\r\nConnection: Keep-Alive").keep_alive
    assert parse_request_head(b"GET http://h:1/images/x HTTP/1.1\r\nHost: h").path == "/images/x"


@pytest.mark.parametrize(
    "head, status",
    [
        (b"GET /", 400),
        (b"GET / HTTP/2.0\r\nHost: h", 505),
        (b"GET / HTTP/1.1", 400),  # no Host
        (b"GET x HTTP/1.1\r\nHost: h", 400),
        (b"GET / HTTP/1.1\r\nHost: h\r\nbad header", 400),
        (b"GET /%00 HTTP/1.1\r\nHost: h", 400),
        (b"GET /%ff HTTP/1.1\r\nHost: h", 400),
    ],
)
def test_bad_request_heads(head, status):
    with pytest.raises(BadRequest) as err:
        parse_request_head(head)
    assert err.value.status == status


def test_image_routes():
    r = route_image_path("/images/ephemeral/bookworm/amd64/generic/20261123/boot-kernel")
    assert r.ident == ("ephemeral/bookworm", "amd64", "generic", "20261123", "boot-kernel")
    assert route_image_path("/images/ubuntu/amd64/ga-24.04/latest/boot-initrd").ident[3] == "latest"
    assert route_image_path(f"/images/by-sha256/{SHA.upper()}").sha256 == SHA
    assert route_image_path("/images/index.json").index
    for bad in (
        "/images/by-sha256/xyz",
        "/images/a/b/c/d",
        "/images/../x/a/b/c/d",
        "/images/a/../b/c/d/e",
        "/other/a/b/c/d/e",
        "/images/by-sha256/x/a/b/c/d",
    ):
        assert route_image_path(bad) is None, bad
