"""Talking to a MAAS 2.0 API the way maascli does: OAuth PLAINTEXT, base64 multipart.

Used by the `metalplane PROFILE ...` commands and by the tests, so both send
exactly what the real `maas` command sends.
"""

from __future__ import annotations

import email.policy
import io
import time
import uuid
from collections.abc import Iterable
from email.generator import BytesGenerator
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from typing import Any
from urllib.parse import urlencode

import httpx
from oauthlib.oauth1 import SIGNATURE_PLAINTEXT, Client

Fields = list[tuple[str, str | bytes]]


def api_root(url: str) -> str:
    """Normalise to .../MAAS/api/2.0/ as `maas login` does."""
    url = url.rstrip("/") + "/"
    if "/api/" not in url:
        url += "api/2.0/"
    return url


def split_key(api_key: str) -> tuple[str, str, str]:
    parts = api_key.strip().split(":")
    if len(parts) != 3 or not all(parts):
        raise ValueError("an API key looks like consumer_key:token_key:token_secret")
    return parts[0], parts[1], parts[2]


def oauth_header(api_key: str, url: str) -> str:
    consumer_key, token_key, token_secret = split_key(api_key)
    client = Client(
        consumer_key,
        client_secret="",
        resource_owner_key=token_key,
        resource_owner_secret=token_secret,
        signature_method=SIGNATURE_PLAINTEXT,
        nonce=uuid.uuid4().hex,
        timestamp=str(int(time.time())),
    )
    _, headers, _ = client.sign(url)
    return headers["Authorization"]


def encode_multipart(fields: Fields) -> tuple[str, bytes]:
    """Every part base64-encoded, as maascli and python-libmaas send them."""
    message = MIMEMultipart("form-data")
    for name, value in fields:
        if isinstance(value, bytes):
            part = MIMEApplication(value)
        else:
            part = MIMEApplication(value.encode("utf-8"), charset="utf-8")
            part.set_type("text/plain")
        part.add_header("Content-Disposition", "form-data", name=name)
        message.attach(part)
    out = io.BytesIO()
    generator: BytesGenerator[Any] = BytesGenerator(out, policy=email.policy.HTTP)  # any Message, not only EmailMessage
    generator.flatten(message)
    _, _, body = out.getvalue().partition(b"\r\n\r\n")
    return message["Content-Type"], body


def as_fields(data: dict[str, Any] | Iterable[tuple[str, Any]] | None) -> Fields:
    if data is None:
        return []
    items = data.items() if isinstance(data, dict) else data
    out: Fields = []
    for key, value in items:
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, bool):
                v = "true" if v else "false"
            out.append((key, v if isinstance(v, bytes) else str(v)))
    return out


class MaasHttp:
    """One API endpoint, one key. `path` is below .../api/2.0/ or an absolute URL."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 30.0, verify: bool = True):
        self.root = api_root(url)
        self.api_key = api_key
        self.http = httpx.Client(timeout=timeout, verify=verify)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> MaasHttp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        return path if "://" in path else self.root + path.lstrip("/")

    def request(
        self,
        method: str,
        path: str,
        op: str | None = None,
        data: dict[str, Any] | Iterable[tuple[str, Any]] | None = None,
    ) -> httpx.Response:
        method = method.upper()
        url = self.url(path)
        fields = as_fields(data)
        query: Fields = [("op", op)] if op else []
        headers = {"Accept": "application/json"}
        body = None
        if method in ("GET", "DELETE"):
            query += fields
        elif fields:
            headers["Content-Type"], body = encode_multipart(fields)
        if query:
            url += ("&" if "?" in url else "?") + urlencode(query)
        if self.api_key:
            headers["Authorization"] = oauth_header(self.api_key, url)
        return self.http.request(method, url, content=body, headers=headers)

    def get(self, path: str, op: str | None = None, **data: Any) -> httpx.Response:
        return self.request("GET", path, op, data)

    def post(self, path: str, op: str | None = None, **data: Any) -> httpx.Response:
        return self.request("POST", path, op, data)

    def put(self, path: str, **data: Any) -> httpx.Response:
        return self.request("PUT", path, None, data)

    def delete(self, path: str, **data: Any) -> httpx.Response:
        return self.request("DELETE", path, None, data)
