"""Request arguments: the body read under a limit, query strings and MAAS's bodies, typed on access.

Every value is checked by `region.validation` when a handler reads it: text
without NUL and under a length cap, integers within PostgreSQL's range,
addresses PostgreSQL's inet accepts. A bad value answers 400 naming the field;
a body that cannot be parsed answers 400, and one over the route's limit 413,
both before authentication (nothing about a body needs the database).
"""

from __future__ import annotations

import binascii
import builtins
import codecs
import email.message
import email.parser
import email.policy
import email.utils
import json
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from metalplane.region import validation as v
from metalplane.region.errors import Invalid, Refused, TooLarge

TRUE_WORDS = {"true", "1", "yes", "on"}
FALSE_WORDS = {"false", "0", "no", "off", ""}  # Django: an empty value is False
MAX_FIELDS = 1_500  # parameters in one request (a list may have MAX_LIST values, plus the others)


def too_large(limit: int) -> TooLarge:
    return TooLarge(f"The request body is larger than this endpoint accepts ({limit} bytes).")


async def read_body(chunks: AsyncIterator[bytes], content_length: str | None, limit: int) -> bytes:
    """The body, refused (413) once it passes `limit` bytes: a declared length over the
    limit is refused before a byte is read, a streamed one as soon as it passes."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise Refused("Malformed Content-Length header.") from None
        if declared > limit:
            raise too_large(limit)
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise too_large(limit)
    return bytes(body)


def _charset_of(part: Any, name: str) -> str:
    charset = part.get_content_charset() or "utf-8"
    try:
        codecs.lookup(charset)
    except (LookupError, ValueError):
        raise Invalid.field(name, f"Unknown charset: {v.shown(repr(charset))}.") from None
    return charset


def _boundary(content_type: str) -> bytes | None:
    head = email.parser.HeaderParser(policy=email.policy.compat32).parsestr(f"Content-Type: {content_type}\r\n\r\n")
    boundary = head.get_boundary()
    return boundary.encode("latin-1", "replace") if boundary else None


def parse_multipart(content_type: str, body: bytes) -> list[tuple[str, str | bytes]]:
    """Decode form-data parts, honouring Content-Transfer-Encoding (maascli sends base64).

    The stdlib email parser handles transfer encodings; python-multipart chokes
    on the newline that email-built base64 parts end with. Its compat32 policy
    is used: the modern one costs ~15 times more per part, which an anonymous
    body of many small parts would turn into seconds of CPU. The parts are
    counted before parsing for the same reason. A part that is not text in its
    charset is kept as bytes: reading it as text is then a 400 naming it, while
    a file-like parameter takes the bytes.
    """
    boundary = _boundary(content_type)
    if boundary is not None and body.count(b"--" + boundary) > MAX_FIELDS + 1:
        raise Refused(f"Too many parameters in the request body (at most {MAX_FIELDS}).")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("utf-8", "replace")
    try:
        message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(head + body)
        payload = message.get_payload() if message.is_multipart() else None
        parts = [p for p in payload if isinstance(p, email.message.Message)] if isinstance(payload, list) else None
    except (ValueError, LookupError, TypeError, IndexError, binascii.Error) as exc:
        raise Refused(f"Malformed multipart request body: {exc}") from None
    if parts is None:
        raise Refused("Malformed multipart request body (no boundary, or not multipart).")
    fields: list[tuple[str, str | bytes]] = []
    for part in parts:
        try:
            name = email.utils.collapse_rfc2231_value(part.get_param("name", header="content-disposition") or "")
            payload = part.get_payload(decode=True) or b""
            filename = part.get_filename()
        except (ValueError, LookupError, TypeError, IndexError, binascii.Error) as exc:
            raise Refused(f"Malformed multipart request body: {exc}") from None
        if not name or not isinstance(name, str):
            continue
        if not isinstance(payload, bytes):
            raise Refused("Malformed multipart request body: a part holds another multipart body.")
        if filename is None:
            charset = _charset_of(part, name)
            try:
                fields.append((name, payload.decode(charset)))
            except UnicodeDecodeError:
                fields.append((name, payload))
        else:
            fields.append((name, payload))
    return fields


def _json_pairs(body: bytes) -> list[tuple[str, str | bytes]]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise Refused(f"Malformed JSON request body: {exc}") from None
    if not isinstance(data, dict):
        raise Refused("The JSON request body must be an object.")
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise Refused("The JSON request body holds text that is not UTF-8 (a lone surrogate escape).") from None
    out: list[tuple[str, str | bytes]] = []
    for key, value in data.items():
        values = value if isinstance(value, list) else [value]
        out.extend((key, item if isinstance(item, str) else json.dumps(item)) for item in values)
    return out


def parse_body(content_type: str, body: bytes) -> list[tuple[str, str | bytes]]:
    """The parameters a body carries: multipart (maascli, libmaas), form-urlencoded or JSON."""
    kind = content_type.split(";")[0].strip().lower()
    if not body:
        return []
    if kind == "multipart/form-data":
        pairs = parse_multipart(content_type, body)
    elif kind in ("application/x-www-form-urlencoded", ""):
        try:
            pairs = list(
                parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)
            )
        except UnicodeDecodeError:
            raise Refused("The form-urlencoded request body is not UTF-8.") from None
        except ValueError as exc:
            raise Refused(f"Malformed form-urlencoded request body: {exc}") from None
    elif kind == "application/json":
        pairs = _json_pairs(body)
    else:
        raise Refused(f"Unsupported content type of the request body: {v.shown(kind)}")
    if len(pairs) > MAX_FIELDS:
        raise Refused(f"Too many parameters in the request body (at most {MAX_FIELDS}).")
    return pairs


class Params:
    """Arguments of one request. Every accessor raises a 400 that names the field.

    Accessors: `str`, `int`, `bool`, `ip`, `cidr`, `mac`, `macs`, `hostname`,
    `name` (a model's name rule), `email`, `choice`, `get_list`, `raw` (bytes of
    file parts), `given` (typed values of the fields present: a partial update).
    """

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

    def get_list(self, name: str, max_items: int = v.MAX_LIST, max_length: int | None = None) -> list[str]:
        values = self._values.get(name, [])
        v.check_list(values, name, max_items)
        return [self._text(name, value, max_length) for value in values]

    def _text(self, name: str, value: Any, max_length: int | None = None) -> str:
        if isinstance(value, bytes):
            try:
                value = value.decode()
            except UnicodeDecodeError:
                raise Invalid.field(name, "Expected text, got binary data.") from None
        text = str(value)
        return v.check_text(text, name, v.default_max_length(name) if max_length is None else max_length)

    def ip(self, name: str, required: bool = False, version: int | None = None) -> str | None:
        """An address PostgreSQL's inet takes (no IPv6 zone id); None when blank."""
        text = self.str(name, required=required, max_length=256)
        if text is None or text.strip() == "":
            return None
        return v.check_ip(text, name, version)

    def cidr(self, name: str, required: bool = False) -> str | None:
        text = self.str(name, required=required, max_length=256)
        if text is None or text.strip() == "":
            return None
        return str(v.check_cidr(text, name))

    def mac(self, name: str, required: bool = False) -> str | None:
        text = self.str(name, required=required, max_length=256)
        if text is None or text.strip() == "":
            return None
        return v.check_mac(text, name)

    def macs(self, name: str) -> list[str]:
        """Every MAC given (repeated, or comma-separated), normalised."""
        items = [item for value in self.get_list(name, max_length=4096) for item in value.split(",")]
        return v.check_macs(items, name)

    def hostname(self, name: str = "hostname", required: bool = False) -> str | None:
        text = self.str(name, required=required, max_length=256)
        if text is None or text == "":
            return None
        return v.check_hostname(text.strip(), name)

    def name(self, name: str, kind: str, required: bool = False) -> str | None:
        """A name under MAAS's rule for `kind` (see validation.NAME_RULES)."""
        text = self.str(name, required=required, max_length=1024)
        if text is None or text == "":
            return None
        return v.check_name(kind, text, name)

    def email(self, name: str = "email", required: bool = False) -> str | None:
        text = self.str(name, required=required, max_length=1024)
        if text is None:
            return None
        return v.check_email(text.strip(), name, required)

    def choice(
        self, name: str, choices: Iterable[str], default: str | None = None, required: bool = False
    ) -> str | None:
        text = self.str(name, required=required, max_length=1024)
        if text is None:
            return default
        return v.check_choice(text, name, choices)

    def given(self, spec: dict[str, str]) -> dict[str, Any]:
        """Typed values of just the fields this request carries (PUT is a partial update).
        Kinds: str, int, bool, list, ip, cidr, mac."""
        readers: dict[str, Callable[[str], Any]] = {
            "str": self.str,
            "int": self.int,
            "bool": self.bool,
            "list": self.get_list,
            "ip": self.ip,
            "cidr": self.cidr,
            "mac": self.mac,
        }
        return {name: readers[kind](name) for name, kind in spec.items() if name in self}

    # The typed readers are named after the types they read: they come last in the class (so
    # annotations above still mean the builtins) and name the builtins explicitly.
    def str(
        self,
        name: builtins.str,
        default: builtins.str | None = None,
        *,
        max_length: builtins.int | None = None,
        required: builtins.bool = False,
    ) -> builtins.str | None:
        value = self.raw(name)
        if value is None:
            if required:
                raise Invalid.field(name, v.REQUIRED)
            return default
        text = self._text(name, value, max_length)
        if required and not text.strip():
            raise Invalid.field(name, v.REQUIRED)
        return text

    def int(
        self,
        name: builtins.str,
        default: builtins.int | None = None,
        *,
        required: builtins.bool = False,
        min_value: builtins.int | None = None,
        max_value: builtins.int | None = None,
    ) -> builtins.int | None:
        """A whole number; always within PostgreSQL's integer range."""
        text = self.str(name, required=required, max_length=64)
        if text is None or text == "":
            if required:
                raise Invalid.field(name, v.REQUIRED)
            return default
        return v.check_int(text, name, min_value, max_value)

    def bool(self, name: builtins.str, default: builtins.bool | None = None) -> builtins.bool | None:
        text = self.str(name, max_length=64)
        if text is None:
            return default
        word = text.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise Invalid.field(name, f"'{v.shown(text)}' value must be either True or False.")
