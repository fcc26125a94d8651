"""A reproducible initramfs: the cpio "newc" format the kernel unpacks, gzip-compressed (pure).

Written here rather than with `cpio`/`busybox cpio` so that the archive needs no
root (device nodes, root ownership) and the same inputs give the same bytes,
so the same sha256 (the region then stores a rebuilt, unchanged initrd once).
"""

from __future__ import annotations

import gzip
import io
import stat
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    path: str  # without a leading "/"
    mode: int  # including the file type bits
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def directory(path: str, perm: int = 0o755) -> Entry:
    return Entry(path, stat.S_IFDIR | perm)


def file(path: str, data: bytes, perm: int = 0o644) -> Entry:
    return Entry(path, stat.S_IFREG | perm, data)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, stat.S_IFLNK | 0o777, target.encode())


def char_device(path: str, major: int, minor: int, perm: int = 0o600) -> Entry:
    return Entry(path, stat.S_IFCHR | perm, b"", (major, minor))


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 4)


def newc(entries: list[Entry], mtime: int = 0) -> bytes:
    """The archive: parents before children (sorted by path), uid/gid 0, one mtime."""
    out = io.BytesIO()
    seen: set[str] = set()
    ordered = sorted(entries, key=lambda e: e.path.strip("/").split("/"))
    for ino, entry in enumerate([*ordered, Entry("TRAILER!!!", 0)], start=1):
        name = entry.path.strip("/")
        if name in seen:
            raise ValueError(f"{name} is in the archive twice")
        seen.add(name)
        encoded = name.encode() + b"\0"
        is_trailer = name == "TRAILER!!!"
        fields = [
            0 if is_trailer else ino,
            entry.mode,
            0,
            0,
            2 if stat.S_ISDIR(entry.mode) else 1 if not is_trailer else 0,
            0 if is_trailer else mtime,
            len(entry.data),
            0,
            0,
            entry.rdev[0],
            entry.rdev[1],
            len(encoded),
            0,
        ]
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        out.write(header + encoded + _pad(len(header) + len(encoded)))
        out.write(entry.data + _pad(len(entry.data)))
    return out.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    """gzip with no name and a zero mtime in the header: reproducible."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0) as f:
        f.write(data)
    return buffer.getvalue()
