"""TFTP wire format and option negotiation: pure functions, no I/O.

RFC 1350 (the protocol), RFC 2347 (option extension, OACK), RFC 2348 (blksize),
RFC 2349 (timeout, tsize) and RFC 7440 (windowsize).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

# Opcodes.
RRQ, WRQ, DATA, ACK, ERROR, OACK = 1, 2, 3, 4, 5, 6

# Error codes (RFC 1350, RFC 2347).
ERR_UNDEFINED = 0
ERR_NOT_FOUND = 1
ERR_ACCESS = 2
ERR_DISK_FULL = 3
ERR_ILLEGAL_OP = 4
ERR_UNKNOWN_TID = 5
ERR_EXISTS = 6
ERR_NO_USER = 7
ERR_OPTIONS = 8

MIN_BLKSIZE = 8
MAX_BLKSIZE = 65464  # RFC 2348
DEFAULT_BLKSIZE = 512
MIN_WINDOWSIZE = 1
MAX_WINDOWSIZE = 65535  # RFC 7440
MIN_TIMEOUT = 1
MAX_TIMEOUT = 255  # RFC 2349
NAME_MAX = 255  # bytes per path component (Linux filesystems)
PATH_MAX = 1024  # bytes in all; well under Linux's 4096 with the served root in front

MODES = ("octet", "netascii")

_HDR = struct.Struct("!HH")


class TftpError(Exception):
    """An error to answer with a TFTP ERROR packet (code, message)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class MalformedPacket(ValueError):
    pass


@dataclass(frozen=True)
class Request:
    opcode: int  # RRQ or WRQ
    filename: str
    mode: str  # lower case
    options: dict[str, str] = field(default_factory=dict)  # names lower case, first occurrence wins


def parse_request(packet: bytes) -> Request:
    """Parse an RRQ/WRQ: opcode, filename NUL mode NUL [option NUL value NUL]...

    Option names are case-insensitive (RFC 2347) and returned in lower case.
    Filenames are decoded as UTF-8, falling back to Latin-1 (netascii is 7-bit).
    """
    if len(packet) < 4:
        raise MalformedPacket("request too short")
    opcode = (packet[0] << 8) | packet[1]
    if opcode not in (RRQ, WRQ):
        raise MalformedPacket(f"not a request (opcode {opcode})")
    fields = packet[2:].split(b"\0")
    # A well formed request ends with NUL, so the split leaves an empty last field.
    if len(fields) < 3 or fields[-1] != b"":
        raise MalformedPacket("request fields not NUL terminated")
    fields.pop()
    raw_name, raw_mode, *rest = fields
    if not raw_name:
        raise MalformedPacket("empty filename")
    try:
        filename = raw_name.decode("utf-8")
    except UnicodeDecodeError:
        filename = raw_name.decode("latin-1")
    mode = raw_mode.decode("ascii", "replace").lower()
    options: dict[str, str] = {}
    # A trailing unpaired option name is ignored, as most servers do.
    for i in range(0, len(rest) - 1, 2):
        name = rest[i].decode("ascii", "replace").lower()
        if name and name not in options:
            options[name] = rest[i + 1].decode("ascii", "replace")
    return Request(opcode, filename, mode, options)


def build_request(opcode: int, filename: str, mode: str = "octet", options: dict[str, object] | None = None) -> bytes:
    parts = [struct.pack("!H", opcode), filename.encode("utf-8"), b"\0", mode.encode("ascii"), b"\0"]
    for name, value in (options or {}).items():
        parts += [name.encode("ascii"), b"\0", str(value).encode("ascii"), b"\0"]
    return b"".join(parts)


def build_error(code: int, message: str) -> bytes:
    return _HDR.pack(ERROR, code) + message.encode("utf-8", "replace") + b"\0"


def parse_error(packet: bytes) -> tuple[int, str]:
    code = (packet[2] << 8) | packet[3] if len(packet) >= 4 else ERR_UNDEFINED
    message = packet[4:].split(b"\0", 1)[0].decode("utf-8", "replace")
    return code, message


def build_ack(block: int) -> bytes:
    return _HDR.pack(ACK, block & 0xFFFF)


def build_oack(options: Mapping[str, object]) -> bytes:
    parts = [struct.pack("!H", OACK)]
    for name, value in options.items():
        parts += [name.encode("ascii"), b"\0", str(value).encode("ascii"), b"\0"]
    return b"".join(parts)


def parse_oack(packet: bytes) -> dict[str, str]:
    fields = packet[2:].split(b"\0")
    if fields and fields[-1] == b"":
        fields.pop()
    return {
        fields[i].decode("ascii", "replace").lower(): fields[i + 1].decode("ascii", "replace")
        for i in range(0, len(fields) - 1, 2)
    }


def netascii_encode(data: bytes) -> bytes:
    """Local (Unix) text to netascii: CR becomes CR NUL, LF becomes CR LF."""
    return data.replace(b"\r", b"\r\0").replace(b"\n", b"\r\n")


def netascii_decode(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\r\0", b"\r")


@dataclass(frozen=True)
class Limits:
    """What the server allows; the client can only ask for less."""

    max_blksize: int = 1468  # fits a 1500-byte Ethernet MTU without IP fragmentation
    max_windowsize: int = 64
    default_timeout: float = 1.0
    # The server's own retransmission interval, whatever `timeout` the client asked for:
    # RFC 2349 allows 255 s, which would let one unacknowledged request hold a socket and
    # a file for over 20 minutes.
    max_timeout: float = 5.0


@dataclass(frozen=True)
class Negotiated:
    blksize: int = DEFAULT_BLKSIZE
    windowsize: int = 1
    timeout: float = 1.0  # the server's retransmission interval (at most `Limits.max_timeout`)
    oack: dict[str, str] | None = None  # options to acknowledge; None when no OACK is due


def _int_option(options: dict[str, str], name: str) -> int | None:
    raw = options.get(name)
    if raw is None:
        return None
    raw = raw.strip()
    if not raw.isdigit():  # also refuses signs, blanks and non-ASCII digits
        raise TftpError(ERR_OPTIONS, f"Invalid {name} value {raw!r}")
    return int(raw)


def _ranged_option(options: dict[str, str], name: str, low: int, high: int) -> int | None:
    """An integer option the RFCs bound: outside low..high it is refused (error 8)."""
    value = _int_option(options, name)
    if value is not None and not low <= value <= high:
        raise TftpError(ERR_OPTIONS, f"{name} {value} outside {low}..{high}")
    return value


def negotiate(options: dict[str, str], size: int | None, limits: Limits) -> Negotiated:
    """Options a read request asked for -> what the transfer uses and what the OACK says.

    - blksize: values outside RFC 2348's 8..65464 are refused with error 8; valid values
      larger than `limits.max_blksize` are lowered to it (the OACK says so, RFC 2348).
    - windowsize: outside RFC 7440's 1..65535 refused with error 8; lowered to the limit.
    - timeout: outside RFC 2349's 1..255 refused with error 8; otherwise acknowledged as
      asked (RFC 2349 wants it echoed), but the server retransmits after at most
      `limits.max_timeout` seconds: resending early only costs the client a duplicate.
    - tsize: any non-negative integer; answered with the transfer size when known.
    - unknown options are ignored (left out of the OACK), as RFC 2347 says.
    """
    oack: dict[str, str] = {}
    blksize, windowsize, timeout = DEFAULT_BLKSIZE, 1, limits.default_timeout
    value = _ranged_option(options, "blksize", MIN_BLKSIZE, MAX_BLKSIZE)
    if value is not None:
        blksize = min(value, limits.max_blksize)
        oack["blksize"] = str(blksize)
    value = _ranged_option(options, "timeout", MIN_TIMEOUT, MAX_TIMEOUT)
    if value is not None:
        timeout = min(float(value), limits.max_timeout)
        oack["timeout"] = str(value)
    value = _int_option(options, "tsize")
    if value is not None and size is not None:
        oack["tsize"] = str(size)
    value = _ranged_option(options, "windowsize", MIN_WINDOWSIZE, MAX_WINDOWSIZE)
    if value is not None:
        windowsize = min(value, limits.max_windowsize)
        oack["windowsize"] = str(windowsize)
    return Negotiated(blksize, windowsize, timeout, oack or None)


def sanitize_path(filename: str) -> str:
    """A request's filename -> a relative path with no way out of the served root.

    Leading slashes are dropped (PXE ROMs often ask for "/pxelinux.0"), backslashes are
    treated as separators (some ROMs use them), empty and "." components are dropped.
    A ".." component, a NUL, or nothing left at all is refused with error 2; a component
    longer than NAME_MAX bytes or a path longer than PATH_MAX with error 1 (no such file
    can exist, and the filesystem's own error is better not provoked).
    """
    if "\0" in filename:
        raise TftpError(ERR_ACCESS, "Access violation")
    if len(filename) > PATH_MAX:  # characters: a cheap bound before splitting
        raise TftpError(ERR_NOT_FOUND, "File name too long")
    parts = []
    for part in filename.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise TftpError(ERR_ACCESS, "Access violation")
        if len(part.encode("utf-8", "surrogatepass")) > NAME_MAX:
            raise TftpError(ERR_NOT_FOUND, "File name too long")
        parts.append(part)
    if not parts:
        raise TftpError(ERR_ACCESS, "Access violation")
    path = "/".join(parts)
    if len(path.encode("utf-8", "surrogatepass")) > PATH_MAX:
        raise TftpError(ERR_NOT_FOUND, "File name too long")
    return path


def shown(filename: str, limit: int = 64) -> str:
    """A requested name as it goes into a log line: quoted, and cut when long."""
    if len(filename) <= limit:
        return repr(filename)
    return f"{filename[:limit]!r}... ({len(filename)} characters)"
