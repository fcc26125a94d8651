"""Field validators the RPC payloads share (rpc.dhcp, rpc.services): each refuses a value
with a message naming what was expected and what came."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import PlainValidator

#: A Linux interface name (IFNAMSIZ - 1 characters), VLAN and alias forms included.
IFNAME_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")


def matching(pattern: re.Pattern[str], what: str) -> PlainValidator:
    """A string `pattern` matches ("expected WHAT, got ...")."""

    def check(value: Any) -> str:
        if not (isinstance(value, str) and pattern.match(value)):
            raise ValueError(f"expected {what}, got {value!r}")
        return value

    return PlainValidator(check)


def parsed(kind: type | tuple[type, ...], what: str, parse: Callable[[str], Any] | None = None) -> PlainValidator:
    """A value of `kind` as it is, or a string `parse` (default: `kind`) reads: an address,
    a network...; nothing else, as the wire carries them as strings."""
    read = parse or kind
    assert callable(read)

    def check(value: Any) -> Any:
        if isinstance(value, kind):
            return value
        if isinstance(value, str):
            try:
                return read(value)
            except ValueError:
                pass
        raise ValueError(f"expected {what}, got {value!r}")

    return PlainValidator(check)


def one_of(options: tuple[str, ...]) -> PlainValidator:
    """One of `options`, exactly."""

    def check(value: Any) -> str:
        if value not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {value!r}")
        return value  # type: ignore[no-any-return]

    return PlainValidator(check)
