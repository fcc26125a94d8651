"""The little BSON MAAS's `details` answers need: a document of byte strings and nulls."""

from __future__ import annotations

import struct
from collections.abc import Mapping

BINARY, NULL, STRING = 0x05, 0x0A, 0x02
GENERIC_SUBTYPE = 0x00


def _cstring(text: str) -> bytes:
    data = text.encode()
    if b"\x00" in data:
        raise ValueError("BSON keys cannot hold NUL")
    return data + b"\x00"


def encode(document: Mapping[str, bytes | str | None]) -> bytes:
    """{"lshw": b"<xml/>", "lldp": None} -> BSON (bytes as generic binary, str as string)."""
    body = bytearray()
    for key, value in document.items():
        if value is None:
            body += bytes([NULL]) + _cstring(key)
        elif isinstance(value, bytes):
            body += bytes([BINARY]) + _cstring(key) + struct.pack("<iB", len(value), GENERIC_SUBTYPE) + value
        else:
            data = value.encode() + b"\x00"
            body += bytes([STRING]) + _cstring(key) + struct.pack("<i", len(data)) + data
    return struct.pack("<i", len(body) + 5) + bytes(body) + b"\x00"


def decode(data: bytes) -> dict[str, bytes | str | None]:
    """The inverse of `encode` for the same three types (tests and clients)."""
    (length,) = struct.unpack_from("<i", data)
    if length != len(data) or data[-1] != 0:
        raise ValueError("not a BSON document")
    out: dict[str, bytes | str | None] = {}
    pos = 4
    while pos < length - 1:
        kind = data[pos]
        end = data.index(b"\x00", pos + 1)
        key = data[pos + 1 : end].decode()
        pos = end + 1
        if kind == NULL:
            out[key] = None
        elif kind == BINARY:
            size, _ = struct.unpack_from("<iB", data, pos)
            out[key] = data[pos + 5 : pos + 5 + size]
            pos += 5 + size
        elif kind == STRING:
            (size,) = struct.unpack_from("<i", data, pos)
            out[key] = data[pos + 4 : pos + 4 + size - 1].decode()
            pos += 4 + size
        else:
            raise ValueError(f"BSON type {kind:#x} not supported")
    return out
