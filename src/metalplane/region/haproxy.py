"""HAProxy in front of several regions: the configuration, as pure text.

The shape is the seeds' (frontend on :80, `balance source` + `hash-type
consistent`, `retries 3`, `option redispatch`, `option http-server-close`,
`timeout server 90s`), corrected and made to fail over fast:

* `retries` and `option redispatch` belong in the backend (HAProxy ignores
  them in a frontend, which is where the seeds put them).
* Health checks ask `/MAAS/metalplane/health`, which answers 200 only when
  that region reaches a *writable* database; checks run every second and two
  failures take a region out (`fall 2`), two successes bring it back.
* `observe layer4` + `on-error mark-down`: one refused connection takes a
  dead region out at once, before its health check notices.
* `option redispatch 1`: every retry goes to another region (the default
  redispatches only on the last retry, after ~1 s pauses on the dead one).
* `retry-on conn-failure empty-response response-timeout`: a request that
  was already sent to a region that then died is sent again to another one,
  but only for GET and HEAD (`http-request disable-l7-retry` otherwise): a
  write whose region died mid-request may have committed, so replaying it is
  the client's decision, never the proxy's.
* When no region can reach a writable database (a PostgreSQL failover in
  progress), every region fails its check. Rather than answering 503 at
  once, HAProxy then sends requests to the `<backend>_nodb` backend, the
  same regions checked only for a listening socket: each region waits for
  the new primary (retrying safe work, see region/api/app.py) and answers
  either the result or a 503 with Retry-After.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

DEFAULT_PORT = 5240
#: The region endpoint HAProxy checks (region/api/routes.py serves it).
HEALTH_PATH = "/MAAS/metalplane/health"
NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")


class HaproxyConfigError(ValueError):
    pass


@dataclass(frozen=True)
class RegionServer:
    name: str
    host: str
    port: int = DEFAULT_PORT

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class Timing:
    """Health-check and timeout figures (HAProxy time units)."""

    inter: str = "1s"          # check interval while up
    fastinter: str = "250ms"   # while changing state
    downinter: str = "1s"      # while down
    rise: int = 2
    fall: int = 2
    timeout_check: str = "2s"
    timeout_connect: str = "1s"
    timeout_client: str = "90s"
    timeout_server: str = "90s"
    timeout_queue: str = "30s"
    timeout_http_request: str = "30s"


def parse_server(spec: str, index: int) -> RegionServer:
    """`HOST[:PORT]`, `[V6]:PORT` or `NAME=HOST[:PORT]` -> a server named region<N> by default."""
    name = f"region{index}"
    if "=" in spec:
        name, _, spec = spec.partition("=")
    spec = spec.strip()
    if not spec:
        raise HaproxyConfigError("empty --region")
    port = DEFAULT_PORT
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise HaproxyConfigError(f"bad region address {spec!r}")
            port = _port(rest[1:], spec)
    elif spec.count(":") == 1:
        host, _, raw = spec.partition(":")
        port = _port(raw, spec)
    else:
        host = spec
    if not host or any(c.isspace() for c in host) or "#" in host:
        raise HaproxyConfigError(f"bad region host in {spec!r}")
    if ":" in host:
        ipaddress.IPv6Address(host)  # raises ValueError for junk
    if not NAME_RE.match(name):
        raise HaproxyConfigError(f"bad server name {name!r} (letters, digits, _ . : - only)")
    return RegionServer(name, host, port)


def _port(raw: str, spec: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise HaproxyConfigError(f"bad port in {spec!r}") from None
    if not 1 <= port <= 65535:
        raise HaproxyConfigError(f"port out of range in {spec!r}")
    return port


def render_config(regions: list[RegionServer], bind: str = "*:80", *, backend: str = "maas",
                  timing: Timing = Timing(), nodb_backend: bool = True, stats_socket: str | None = None,
                  log_target: str | None = None, maxconn: int = 4096) -> str:
    """The whole haproxy.cfg for `regions`; check it with `haproxy -c -f FILE`."""
    if not regions:
        raise HaproxyConfigError("at least one --region is needed")
    names = [r.name for r in regions]
    if len(set(names)) != len(names):
        raise HaproxyConfigError(f"duplicate server names: {names}")
    if not NAME_RE.match(backend):
        raise HaproxyConfigError(f"bad backend name {backend!r}")
    if not bind or any(c.isspace() for c in bind):
        raise HaproxyConfigError(f"bad bind address {bind!r}")
    nodb = f"{backend}_nodb"
    t = timing
    lines = [
        "# Generated by `metalplane region haproxy-config`; check with `haproxy -c -f <this file>`.",
        "global",
        f"    maxconn {maxconn}",
    ]
    if log_target:
        lines.append(f"    log {log_target} local0")
    if stats_socket:
        lines.append(f"    stats socket {stats_socket} mode 600 level admin")
    lines += [
        "",
        "defaults",
        "    mode http",
        *(["    log global", "    option httplog"] if log_target else []),
        f"    timeout connect {t.timeout_connect}",
        f"    timeout client {t.timeout_client}",
        f"    timeout server {t.timeout_server}",
        f"    timeout queue {t.timeout_queue}",
        f"    timeout http-request {t.timeout_http_request}",
        f"    timeout check {t.timeout_check}",
        "",
        "frontend maas",
        f"    bind {bind}",
        "    option http-server-close",
        "    option forwardfor",
    ]
    if nodb_backend:
        lines += [
            "    # No region reaches a writable database (PostgreSQL failing over): let the",
            "    # regions wait for the new primary instead of answering 503 here.",
            f"    use_backend {nodb} if {{ nbsrv({backend}) eq 0 }}",
        ]
    lines += [f"    default_backend {backend}", ""]
    lines += _backend(backend, regions, t, http_check=True)
    if nodb_backend:
        lines += [""] + _backend(nodb, regions, t, http_check=False)
    return "\n".join(lines) + "\n"


def _backend(name: str, regions: list[RegionServer], t: Timing, http_check: bool) -> list[str]:
    lines = [
        f"backend {name}",
        "    balance source",
        "    hash-type consistent",
        "    retries 3",
        "    option redispatch 1",
        "    retry-on conn-failure empty-response response-timeout",
        "    # A request already sent is replayed on another region only when it is a read.",
        "    http-request disable-l7-retry unless { method GET HEAD }",
    ]
    if http_check:
        lines += [
            "    option httpchk",
            f"    http-check send meth GET uri {HEALTH_PATH}",
            "    http-check expect status 200",
        ]
    lines.append(
        f"    default-server inter {t.inter} fastinter {t.fastinter} downinter {t.downinter} "
        f"rise {t.rise} fall {t.fall} observe layer4 error-limit 1 on-error mark-down"
    )
    lines += [f"    server {r.name} {r.address} check" for r in regions]
    return lines
