"""Where TFTP content comes from: resolvers.

A resolver is `async def resolve(path, client) -> Source | None`:

- `path` is already sanitised (relative, no "..", see `protocol.sanitize_path`);
- `client` is the requester's (host, port);
- a `Source` is either the content itself (`bytes`, `bytearray`, `memoryview`) or a
  file to serve (`str` or `os.PathLike`), which the server reads block by block with
  `os.preadv` (never whole, so a 30 MB initrd costs no 30 MB per client);
- `None` means "not mine / not found" (error 1); raising `TftpError` answers with
  that error instead.

`StaticRoot` serves a directory, `chain` tries resolvers in order, and `Routes`
maps path patterns to dynamic generators with merging and a short cache (for
pxelinux.cfg/01-<mac>, grub.cfg-<mac>, iPXE scripts answered by the region).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Awaitable, Callable

from metalplane.rack.tftp.coalesce import RequestCoalescer
from metalplane.rack.tftp.protocol import ERR_ACCESS, TftpError

Source = bytes | bytearray | memoryview | str | os.PathLike
Client = tuple  # (host, port[, flowinfo, scope_id])
Resolver = Callable[[str, Client], Awaitable[Source | None]]


class StaticRoot:
    """Files under one directory. Symlinks are followed only while they stay inside it."""

    def __init__(self, root: str | os.PathLike):
        self.root = os.path.realpath(root)
        self._prefix = self.root.rstrip("/") + "/"

    def lookup(self, path: str) -> str | None:
        full = os.path.join(self.root, path)
        try:
            st = os.stat(full)
        except PermissionError:
            raise TftpError(ERR_ACCESS, "Access violation") from None
        except OSError as exc:  # not found, not a directory, name too long, symlink loop...
            if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOMEM):
                raise  # the server's trouble, not the request's
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        # A symlink may point out of the root: refuse those (tftpd-hpa --secure chroots).
        if not os.path.realpath(full).startswith(self._prefix):
            raise TftpError(ERR_ACCESS, "Access violation")
        return full

    async def __call__(self, path: str, client: Client) -> Source | None:
        return self.lookup(path)


def chain(*resolvers: Resolver) -> Resolver:
    """The first resolver that answers (not None) wins."""

    async def resolve(path: str, client: Client) -> Source | None:
        for resolver in resolvers:
            source = await resolver(path, client)
            if source is not None:
                return source
        return None

    return resolve


Generator = Callable[[re.Match, Client], Awaitable[Source | None]]


class Routes:
    """Dynamic content by path pattern, merged and cached per path.

    `routes.add(r"pxelinux\\.cfg/01-(?P<mac>[0-9a-f-]{17})", handler)`; `handler(match,
    client)` is called once for any number of concurrent requests of the same path and
    its answer (including None) is reused for `ttl` seconds. Patterns are matched in
    full against the lower-cased path when `ignore_case` (the default: MACs and UUIDs
    arrive in either case). With `per_client`, answers are merged and kept per path
    *and client address* (boot configs that depend on who asks: rack.boot.service).
    """

    def __init__(self, ttl: float = 5.0, ignore_case: bool = True, per_client: bool = False):
        self._routes: list[tuple[re.Pattern, Generator]] = []
        self.ignore_case = ignore_case
        self.per_client = per_client
        self.cache: RequestCoalescer[tuple[int, str, str], Source | None] = RequestCoalescer(ttl=ttl)

    def add(self, pattern: str, handler: Generator) -> None:
        self._routes.append((re.compile(pattern), handler))

    async def __call__(self, path: str, client: Client) -> Source | None:
        if self.ignore_case:
            path = path.lower()
        for index, (pattern, handler) in enumerate(self._routes):
            match = pattern.fullmatch(path)
            if match:
                # The first requester's call is the one made; merged requests of the same
                # path (and client, when per_client) get its answer.
                who = str(client[0]) if self.per_client else ""
                return await self.cache.get((index, path, who), lambda: handler(match, client))  # noqa: B023 - awaited here
        return None


_MAC = r"(?P<mac>[0-9a-f]{2}(?:[-:][0-9a-f]{2}){5})"
_UUID = r"(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"

# The per-machine config names PXE boot loaders ask for (lower-cased paths).
PXELINUX_MAC = r"(?:.*/)?pxelinux\.cfg/01-" + _MAC
PXELINUX_UUID = r"(?:.*/)?pxelinux\.cfg/" + _UUID
GRUB_MAC = r"(?:.*/)?grub\.cfg-" + _MAC
IPXE_MAC = r"(?:.*/)?ipxe/" + _MAC.replace("[-:]", "[-:]?") + r"\.ipxe"


def normalise_mac(text: str) -> str:
    digits = re.sub(r"[^0-9a-fA-F]", "", text).lower()
    if len(digits) != 12:
        raise ValueError(f"not a MAC address: {text!r}")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def machine_key(path: str) -> tuple[str, str] | None:
    """("mac", "aa:bb:..") or ("uuid", "...") for a per-machine boot config path, else None."""
    path = path.lower()
    for pattern in (PXELINUX_MAC, GRUB_MAC, IPXE_MAC):
        m = re.fullmatch(pattern, path)
        if m:
            return ("mac", normalise_mac(m.group("mac")))
    m = re.fullmatch(PXELINUX_UUID, path)
    if m:
        return ("uuid", m.group("uuid"))
    return None
