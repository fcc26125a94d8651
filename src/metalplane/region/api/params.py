"""Request arguments: query strings and MAAS's multipart bodies, typed on access."""

from __future__ import annotations

import email.parser
import email.policy
import ipaddress
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from metalplane.region.errors import Invalid, Refused

TRUE_WORDS = {"true", "1", "yes", "on"}
FALSE_WORDS = {"false", "0", "no", "off", ""}  # Django: an empty value is False


def parse_multipart(content_type: str, body: bytes) -> list[tuple[str, str | bytes]]:
    """Decode form-data parts, honouring Content-Transfer-Encoding (maascli sends base64).

    The stdlib email parser handles transfer encodings; python-multipart chokes
    on the newline that email-built base64 parts end with.
    """
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise Refused("Malformed multipart body")
    fields: list[tuple[str, str | bytes]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        if part.get_filename() is None:
            charset = part.get_content_charset() or "utf-8"
            fields.append((str(name), payload.decode(charset, errors="replace")))
        else:
            fields.append((str(name), payload))
    return fields


def parse_body(content_type: str, body: bytes) -> list[tuple[str, str | bytes]]:
    kind = content_type.split(";")[0].strip().lower()
    if not body:
        return []
    if kind == "multipart/form-data":
        return parse_multipart(content_type, body)
    if kind in ("application/x-www-form-urlencoded", ""):
        return parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    if kind == "application/json":
        data = json.loads(body)
        if not isinstance(data, dict):
            raise Refused("JSON body must be an object")
        out: list[tuple[str, str | bytes]] = []
        for key, value in data.items():
            values = value if isinstance(value, list) else [value]
            out.extend((key, v if isinstance(v, str) else json.dumps(v)) for v in values)
        return out
    raise Refused(f"Unsupported content type: {kind}")


class Params:
    """Arguments of one request. Every accessor raises a 400 that names the field."""

    def __init__(self, pairs: Iterable[tuple[str, Any]]):
        self._values: dict[str, list[Any]] = {}
        for key, value in pairs:
            self._values.setdefault(key, []).append(value)

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def names(self) -> set[str]:
        return set(self._values)

    def raw(self, name: str) -> Any | None:
        values = self._values.get(name)
        return values[-1] if values else None

    def get_list(self, name: str) -> list[str]:
        return [self._text(name, v) for v in self._values.get(name, [])]

    def _text(self, name: str, value: Any) -> str:
        if isinstance(value, bytes):
            try:
                return value.decode()
            except UnicodeDecodeError:
                raise Invalid.field(name, "Expected text, got binary data.") from None
        return str(value)

    def str(self, name: str, default: str | None = None, required: bool = False) -> str | None:
        value = self.raw(name)
        if value is None:
            if required:
                raise Invalid.field(name, "This field is required.")
            return default
        text = self._text(name, value)
        if required and not text.strip():
            raise Invalid.field(name, "This field is required.")
        return text

    def int(self, name: str, default: int | None = None, required: bool = False,
            min_value: int | None = None, max_value: int | None = None) -> int | None:
        text = self.str(name, required=required)
        if text is None or text == "":
            if required:
                raise Invalid.field(name, "This field is required.")
            return default
        try:
            value = int(text)
        except ValueError:
            raise Invalid.field(name, "Enter a whole number.") from None
        if min_value is not None and value < min_value:
            raise Invalid.field(name, f"Ensure this value is greater than or equal to {min_value}.")
        if max_value is not None and value > max_value:
            raise Invalid.field(name, f"Ensure this value is less than or equal to {max_value}.")
        return value

    def bool(self, name: str, default: bool | None = None) -> bool | None:
        text = self.str(name)
        if text is None:
            return default
        word = text.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise Invalid.field(name, f"'{text}' value must be either True or False.")

    def ip(self, name: str, required: bool = False) -> str | None:
        text = self.str(name, required=required)
        if text is None or text == "":
            return None
        try:
            return str(ipaddress.ip_address(text.strip()))
        except ValueError:
            raise Invalid.field(name, "Enter a valid IPv4 or IPv6 address.") from None

    def given(self, spec: dict[str, str]) -> dict[str, Any]:
        """Typed values of just the fields this request carries (PUT is a partial update)."""
        readers = {"str": self.str, "int": self.int, "bool": self.bool, "list": self.get_list}
        return {name: readers[kind](name) for name, kind in spec.items() if name in self}
