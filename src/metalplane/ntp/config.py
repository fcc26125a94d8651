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

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: ``local stratum`` of a region; a rack's is one more (MAAS's offsets 0 and 1).
REGION_STRATUM = 8
RACK_STRATUM = REGION_STRATUM + 1
#: (minpoll, maxpoll) towards the regions: a LAN source polled every 4..16 s, so a rack
#: notices within a few polls that no region answers.
REGION_POLL = (2, 4)

_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOSTNAME_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*\.?$")


@dataclass(frozen=True)
class Source:
    host: str                              #: an address or a hostname
    kind: str = "server"                   #: "server" | "pool" | "peer"
    poll: tuple[int, int] | None = None    #: (minpoll, maxpoll) as log2 seconds; None: chrony's

    def line(self) -> str:
        if self.kind == "peer":
            return f"peer {self.host} xleave"
        poll = f" minpoll {self.poll[0]} maxpoll {self.poll[1]}" if self.poll else ""
        return f"{self.kind} {self.host} iburst{poll}"


@dataclass(frozen=True)
class ChronyConfig:
    sources: tuple[Source, ...]
    stratum: int                           #: local stratum in orphan mode
    allow: tuple[Network, ...] = ()        #: the networks it serves


@dataclass(frozen=True)
class ChronyPaths:
    """Where one chronyd keeps its socket and pid file: `run_dir` must be 0700."""

    directory: Path

    @property
    def conf(self) -> Path:
        return self.directory / "chrony.conf"

    @property
    def run_dir(self) -> Path:
        return self.directory / "run"

    @property
    def socket(self) -> Path:
        return self.run_dir / "chronyd.sock"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "chronyd.pid"


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
            if not _HOSTNAME_RE.match(part) or len(part) > 253 or part.replace(".", "").isdigit():
                raise ValueError(f"{part!r} is neither an IP address nor a hostname") from None
            out.append(part.rstrip(".").lower())
            continue
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:      # chrony prefers the plain IPv4
            ip = ip.ipv4_mapped
        out.append(str(ip))
    return tuple(out)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def external_sources(ntp_servers: Iterable[str]) -> tuple[Source, ...]:
    """An address is a server, a hostname a pool (MAAS)."""
    return tuple(Source(h, "server" if _is_address(h) else "pool") for h in ntp_servers)


def region_config(ntp_servers: Iterable[str], other_regions: Iterable[str] = (),
                  allow: Iterable[Network] = ()) -> ChronyConfig:
    """A region: follows `ntp_servers`, peers with the other regions."""
    peers = tuple(Source(h, "peer") for h in sorted(set(other_regions)))
    return ChronyConfig(external_sources(ntp_servers) + peers, REGION_STRATUM, tuple(allow))


def rack_config(regions: Iterable[str], ntp_servers: Iterable[str] = (), ntp_external_only: bool = False,
                allow: Iterable[Network] = (), region_poll: tuple[int, int] | None = REGION_POLL) -> ChronyConfig:
    """A rack: follows every region (or `ntp_servers` when `ntp_external_only`)."""
    if ntp_external_only:
        sources = external_sources(ntp_servers)
    else:
        sources = tuple(Source(h, "server", region_poll) for h in sorted(set(regions)))
    return ChronyConfig(sources, RACK_STRATUM, tuple(allow))


def render(cfg: ChronyConfig, paths: ChronyPaths) -> str:
    lines = [
        "# Generated by metalplane; rewritten on every change.",
        *(s.line() for s in cfg.sources),
        f"local stratum {cfg.stratum} orphan",
        *(f"allow {net}" for net in cfg.allow),
        "cmdport 0",
        f"bindcmdaddress {paths.socket}",
        f"pidfile {paths.pid_file}",
    ]
    return "\n".join(lines) + "\n"
