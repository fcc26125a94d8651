"""The rack's TFTP service: an asyncio server for PXE boot loaders and per-machine configs.

    server = TftpServer(chain(routes, StaticRoot("/var/lib/metalplane/boot")))
    await server.start("0.0.0.0", 69)

Standalone: `python -m metalplane.rack.tftp --root DIR --listen 127.0.0.1:6969 [--workers N]`.

Behaviour (RFC 1350, 2347, 2348, 2349, 7440):

- Read requests only. A write request is answered with error 4 ("Write requests are not
  supported"); other opcodes sent to the listening port and malformed requests also get
  error 4, as does a mode other than octet or netascii. ERROR packets are never answered.
- blksize: RFC 2348's 8..65464; values outside are refused with error 8. A valid value
  above the server's `max_blksize` (default 1468, `--max-blksize`) is lowered to it and
  the OACK says so: 1468 bytes of data make a 1500-byte Ethernet frame, so no IP
  fragmentation on the usual path MTU. Raise it (up to 65464) on jumbo-frame networks or
  for loopback tests; a client asking for less always gets what it asked for.
- windowsize: 1..65535 (else error 8), lowered to `max_windowsize` (default 64).
- timeout: 1..255 seconds (else error 8); acknowledged as asked, but the server
  retransmits after at most `Limits.max_timeout` (5 s). Without it,
  `Limits.default_timeout` (1 s). After `max_retries` (5) resends of the same window, or
  `max_idle` (15 s) without an ACK, the transfer is abandoned.
- Limits (sized from RLIMIT_NOFILE, see `rack.limits`): transfers per client address
  (past it, that address's packets are dropped) and in all (past it, unacknowledged
  transfers are abandoned to make room, else error 0 "Server busy"). Names longer than
  NAME_MAX per component or 1024 bytes in all: error 1 "File name too long".
- tsize: answered with the size of what will be sent (after netascii conversion).
- Unknown options are ignored; with no known option there is no OACK. Non-numeric
  values of known options get error 8.
- Missing file: error 1 "File not found"; a path with a ".." component, a NUL, or a
  symlink leading out of the root: error 2 "Access violation". Leading "/" is dropped and
  "\\" is a separator ("/pxelinux.0" and "\\boot\\x" are served from the root).
- Each transfer uses its own port (TID), bound to the address the request was sent to.
- Duplicate ACKs are ignored (no sorcerer's apprentice); lost packets are resent by timer.
  Block numbers roll over from 65535 to 0, so files of any size can be sent.
- A client's retransmitted request is ignored while its first copy is still being resolved.
- `--workers N`: N processes, each with its own socket on the port (SO_REUSEPORT); the
  kernel spreads clients over them. Merging and caching of dynamic answers is per process.

See `server` for the design and its performance choices, `protocol` for negotiation,
`sources` for resolvers and `coalesce` for request merging.
"""

from metalplane.rack.tftp.coalesce import RequestCoalescer
from metalplane.rack.tftp.protocol import Limits, TftpError
from metalplane.rack.tftp.server import Stats, TftpServer
from metalplane.rack.tftp.sources import Resolver, Routes, Source, StaticRoot, chain, machine_key

__all__ = [
    "Limits",
    "RequestCoalescer",
    "Resolver",
    "Routes",
    "Source",
    "StaticRoot",
    "Stats",
    "TftpError",
    "TftpServer",
    "chain",
    "machine_key",
]
