"""Pure: what chrony follows and whom it serves, for a region or a rack, as chrony.conf.

MAAS's rules (maasserver/ntp.py, provisioningserver/ntp/config.py):

* a region follows `ntp_servers` (a string of addresses or hostnames
  separated by spaces or commas) and peers with the other regions;
* a rack follows every region, or `ntp_servers` directly when
  `ntp_external_only` is set;
* an address is a ``server``, a hostname a ``pool``; both ``iburst``;
* ``local stratum N orphan``, N = 8 for a region and 9 for a rack: when nothing
  upstream answers, a rack keeps serving its machines from its own clock, and
  regions that peer agree on one of them (chrony's orphan mode).

Each serves the networks it is given (one ``allow`` per subnet: the subnets
of its VLANs). chronyd never touches the host's clock (``-x``, see
`service`); its command socket is in a private (0700) directory and its UDP
command port is closed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from metalplane.file_layout import Under
from metalplane.hostport import HOSTNAME_RE, is_ip

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: ``local stratum`` of a region; a rack's is one more (MAAS's offsets 0 and 1).
REGION_STRATUM = 8
RACK_STRATUM = REGION_STRATUM + 1
#: (minpoll, maxpoll) towards the regions: a LAN source polled every 2..8 s, so a rack
#: notices within a few polls that no region answers.
REGION_POLL = (1, 3)


NTP_PORT = 123


@dataclass(frozen=True)
class Source:
    host: str  #: an address or a hostname
    kind: str = "server"  #: "server" | "pool" | "peer"
    poll: tuple[int, int] | None = None  #: (minpoll, maxpoll) as log2 seconds; None: chrony's
    port: int = NTP_PORT

    def line(self) -> str:
        port = f" port {self.port}" if self.port != NTP_PORT else ""
        if self.kind == "peer":
            return f"peer {self.host}{port} xleave"
        poll = f" minpoll {self.poll[0]} maxpoll {self.poll[1]}" if self.poll else ""
        return f"{self.kind} {self.host}{port} iburst{poll}"


@dataclass(frozen=True)
class ChronyConfig:
    sources: tuple[Source, ...]
    stratum: int  #: local stratum in orphan mode
    allow: tuple[Network, ...] = ()  #: the networks it serves
    port: int = NTP_PORT  #: where it serves them


@dataclass(frozen=True)
class ChronyPaths:
    """Where one chronyd keeps its socket and pid file: `run_dir` must be 0700."""

    directory: Path

    conf = Under("chrony.conf")
    run_dir = Under("run")
    socket = Under("chronyd.sock", base="run_dir")
    pid_file = Under("chronyd.pid", base="run_dir")


def parse_ntp_servers(text: str) -> tuple[str, ...]:
    """MAAS's `ntp_servers`: addresses or hostnames separated by spaces or commas.
    ValueError naming the first entry that is neither."""
    out = []
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        try:
            ip = ipaddress.ip_address(part)
        except ValueError:
            if not HOSTNAME_RE.match(part) or part.replace(".", "").isdigit():
                raise ValueError(f"{part!r} is neither an IP address nor a hostname") from None
            out.append(part.rstrip(".").lower())
            continue
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:  # chrony prefers the plain IPv4
            ip = ip.ipv4_mapped
        out.append(str(ip))
    return tuple(out)


def external_sources(ntp_servers: Iterable[str]) -> tuple[Source, ...]:
    """An address is a server, a hostname a pool (MAAS)."""
    return tuple(Source(h, "server" if is_ip(h) else "pool") for h in ntp_servers)


def _host_port(entry: str | tuple[str, int]) -> tuple[str, int]:
    return (entry, NTP_PORT) if isinstance(entry, str) else entry


def region_config(
    ntp_servers: Iterable[str],
    other_regions: Iterable[str | tuple[str, int]] = (),
    allow: Iterable[Network] = (),
    port: int = NTP_PORT,
) -> ChronyConfig:
    """A region: follows `ntp_servers`, peers with the other regions (address or (address, port))."""
    peers = tuple(Source(h, "peer", port=p) for h, p in sorted({_host_port(r) for r in other_regions}))
    return ChronyConfig(external_sources(ntp_servers) + peers, REGION_STRATUM, tuple(allow), port)


def rack_config(
    regions: Iterable[str | tuple[str, int]],
    ntp_servers: Iterable[str] = (),
    ntp_external_only: bool = False,
    allow: Iterable[Network] = (),
    region_poll: tuple[int, int] | None = REGION_POLL,
    port: int = NTP_PORT,
) -> ChronyConfig:
    """A rack: follows every region, address or (address, port) (or `ntp_servers` when
    `ntp_external_only`)."""
    if ntp_external_only:
        sources = external_sources(ntp_servers)
    else:
        sources = tuple(Source(h, "server", region_poll, p) for h, p in sorted({_host_port(r) for r in regions}))
    return ChronyConfig(sources, RACK_STRATUM, tuple(allow), port)


def render(cfg: ChronyConfig, paths: ChronyPaths) -> str:
    lines = [
        "# Generated by metalplane; rewritten on every change.",
        *(s.line() for s in cfg.sources),
        f"local stratum {cfg.stratum} orphan",
        *([f"port {cfg.port}"] if cfg.port != NTP_PORT else []),
        *(f"allow {net}" for net in cfg.allow),
        "cmdport 0",
        f"bindcmdaddress {paths.socket}",
        f"pidfile {paths.pid_file}",
    ]
    return "\n".join(lines) + "\n"
