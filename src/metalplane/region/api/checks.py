"""What MAAS checks before an action runs, in MAAS's words (numeric ids in URIs,
mandatory parameters, resources only administrators may use at all), and a
file part's bytes as the client sent them."""

from __future__ import annotations

import email.parser
import email.policy
import re

from metalplane.region.api.context import Ctx
from metalplane.region.api.params import Params
from metalplane.region.errors import NotFound, PermissionDenied, Refused

PG_INT_MAX = 2**31 - 1  # an id beyond this names nothing (PostgreSQL integer)


def as_id(text: str | None) -> int | None:
    """A database id, or None for anything that cannot be one."""
    if text is None or not re.fullmatch(r"[0-9]{1,10}", text.strip()):
        return None
    value = int(text)
    return value if value <= PG_INT_MAX else None


def path_id(ctx: Ctx, name: str, kind: str) -> int:
    """The integer URI part `name`; MAAS's 404 for `kind` when it cannot name a row."""
    value = as_id(ctx.path.get(name))
    if value is None:
        raise NotFound(kind)
    return value


def mandatory(params: Params, name: str) -> str:
    """MAAS's get_mandatory_param: absent -> 400 "No provided NAME!"."""
    value = params.str(name)
    if value is None:
        raise Refused(f"No provided {name}!")
    return value


def admins_only(ctx: Ctx) -> None:
    """MAAS's AdminRestrictedResource (boot sources, license keys): every action, even
    a read, is refused to other users with this text."""
    if ctx.user is None or not ctx.user.is_superuser:
        raise PermissionDenied("User is not allowed access to this API.")


def multipart_bytes(content_type: str, body: bytes, name: str) -> bytes | None:
    """The raw bytes of part `name` (parts without a filename reach the params as text)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        return None
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == name:
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else b""
    return None


async def part_bytes(ctx: Ctx, name: str) -> bytes | None:
    """Parameter `name` as the bytes the client sent: maascli's `name@=FILE` and
    python-libmaas send a file as a part without a filename, which the params hold as text."""
    value = ctx.params.raw(name)
    if value is None or isinstance(value, bytes):
        return value
    content_type = ctx.request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/"):
        raw = multipart_bytes(content_type, await ctx.request.body(), name)
        if raw is not None:
            return raw
    return value.encode()
