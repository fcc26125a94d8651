"""The rack's connections to region workers: discovery, failover, balancing.

`maas_url` is only where the rack starts. Once registered, the region tells
the rack every worker endpoint and which ones it should use (its targets). The
rack keeps one connection per target, each on a different region. When a link
dies (keepalive pings notice within ~2.5 s), the rack replaces it at once with
a live endpoint — another worker of the same region if possible, else another
region — and retries the dead one with exponential backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx
from websockets.exceptions import InvalidHandshake

from metalplane.background import background
from metalplane.ha.connections import rack_preference
from metalplane.rack.cluster_state import ClusterState
from metalplane.rpc.client import Connection, RegionBusy, open_connection
from metalplane.rpc.dispatch import Handlers, handler_table, handles
from metalplane.rpc.endpoint import Endpoint
from metalplane.rpc.handshake import ClientHello, HandshakeRefused
from metalplane.rpc.messages import Call, Endpoints, GetEndpoints, LinkLost, Ping, Register, SetTargets
from metalplane.rpc.protocol import CALL_FAILED, UNKNOWN_RACK, ConnectionLost, RemoteError, RpcPeer

log = logging.getLogger("metalplane.rack.links")
DEFAULT_PER_RACK = 2
MAX_BACKOFF = 30.0
COMEBACK_SPREAD = 1.0  # s: racks reconnecting to a region that answers again, spread over this
RECONCILE_INTERVAL = 0.5
CLOSE_WAIT = 2.0
REFRESH_INTERVAL = 10.0
R = TypeVar("R")


@functools.cache
def _discovery_tls() -> ssl.SSLContext:
    """The discovery client's TLS settings (for an https maas_url), made once per process:
    reading the system CA bundle costs ~10-40 ms of CPU, paid by every rack of a process
    that runs many (the simulated racks of bench/rack_connections_bench.py) otherwise."""
    return ssl.create_default_context()


@dataclass
class Backoff:
    failures: int = 0
    retry_at: float = 0.0

    def fail(self, now: float) -> None:
        self.failures += 1
        delay = min(0.5 * 2 ** (self.failures - 1), MAX_BACKOFF)
        self.retry_at = now + delay * random.uniform(0.8, 1.2)

    def hold(self, now: float, seconds: float) -> None:
        """Told to come back later (RegionBusy): not a failure, so the backoff does not grow;
        jittered (x0.5-1.5) so that the racks turned away together do not return together."""
        self.retry_at = max(self.retry_at, now + seconds * random.uniform(0.5, 1.5))

    def ready(self, now: float) -> bool:
        return now >= self.retry_at


@dataclass
class Link:
    endpoint: Endpoint
    connection: Connection | None = None
    registered: bool = False
    closing: bool = False
    task: asyncio.Task | None = None
    serving: asyncio.Future | None = None

    @property
    def healthy(self) -> bool:
        return self.registered and self.connection is not None and self.connection.peer.is_open


def choose(system_id: str, candidates: list[Endpoint], wanted: int, avoid_regions: set[str]) -> list[Endpoint]:
    """Up to `wanted` endpoints on distinct regions, in the rack's own stable order of them
    (the order the region's planner places its new links in: ha.connections)."""
    chosen: list[Endpoint] = []
    regions = set(avoid_regions)
    for endpoint in sorted(candidates, key=lambda e: rack_preference(system_id, e.region, e.worker)):
        if len(chosen) == wanted:
            break
        if endpoint.region not in regions:
            chosen.append(endpoint)
            regions.add(endpoint.region)
    return chosen


def plan_links(
    system_id: str, known: list[Endpoint], targets: list[Endpoint] | None, usable: set[tuple[str, int]], per_rack: int
) -> list[Endpoint]:
    """Which endpoints to be connected to now: the region's targets, with any
    unusable one replaced by a usable endpoint (same region first), topped up
    to one link per region up to the wanted count."""
    regions = {e.region for e in known}
    wanted = min(len(targets) if targets else per_rack, len(regions))
    plan: list[Endpoint] = []
    for endpoint in targets or []:
        if endpoint.key in usable:
            plan.append(endpoint)
            continue
        same_region = [e for e in known if e.region == endpoint.region and e.key in usable and e not in plan]
        plan.extend(choose(system_id, same_region, 1, {p.region for p in plan}))
    if len(plan) < wanted:
        others = [e for e in known if e.key in usable and e not in plan]
        plan.extend(choose(system_id, others, wanted - len(plan), {p.region for p in plan}))
    return plan


class RegionLinks:
    """Keeps the rack connected. `handlers` answer the region's calls to the rack (this
    class answers SetTargets and Ping itself); `registration` makes the Register call."""

    def __init__(
        self,
        urls: list[str],
        secret: str,
        me: Callable[[], ClientHello],
        state: ClusterState,
        handlers: Handlers,
        registration: Callable[[], Awaitable[Register]],
    ):
        self.urls = urls
        self.secret = secret
        self.me = me
        self.state = state
        self.handlers = {**handlers, **handler_table(self)}
        self.registration = registration
        self.known: dict[tuple[str, int], Endpoint] = {}
        self.targets: list[Endpoint] | None = None
        self.links: dict[tuple[str, int], Link] = {}
        self.backoff: dict[tuple[str, int], Backoff] = {}
        self.refused: HandshakeRefused | None = None
        self.changed = asyncio.Event()
        self.connected_event = asyncio.Event()
        self._last_refresh = 0.0
        self._outstanding: dict[int, int] = {}  # id(link) -> calls out on it
        self._isolated_since: float | None = time.time()
        self.on_reconnect: Callable[[float, float], Awaitable[None]] | None = None
        self.on_isolated: Callable[[], None] | None = None  # every region lost
        self._http: httpx.AsyncClient | None = None  # for discovery; made once per run()
        # Called when a region has no record of this rack and it was not told to register.
        self.on_unknown: Callable[[str], Awaitable[None]] | None = None

    # -- what other code asks ----------------------------------------------------------------

    @property
    def isolated(self) -> bool:
        """No healthy link to any region (also before the first one)."""
        return self._isolated_since is not None

    def healthy_links(self) -> list[Link]:
        return [link for link in self.links.values() if link.healthy]

    def peer(self) -> RpcPeer:
        """A connection to call the region on; raises when there is none."""
        for link in self.healthy_links():
            return link.connection.peer  # type: ignore[union-attr]
        raise ConnectionLost("no connection to any region")

    async def call(self, message: Call[R], timeout: float = 30.0) -> R:
        """Call the region, trying each healthy link once, the one with the fewest calls
        out first (a boot storm's calls spread over region workers instead of queueing
        on the first)."""
        last: Exception | None = None
        busy = self._outstanding
        for link in sorted(self.healthy_links(), key=lambda candidate: busy.get(id(candidate), 0)):
            key = id(link)
            busy[key] = busy.get(key, 0) + 1
            try:
                return await link.connection.peer.call(message, timeout=timeout)  # type: ignore[union-attr]
            except (ConnectionLost, TimeoutError) as exc:
                last = exc
            finally:
                left = busy[key] - 1
                if left:
                    busy[key] = left
                else:
                    del busy[key]
        raise last or ConnectionLost("no connection to any region")

    # -- region's calls --------------------------------------------------------------------------

    @handles(SetTargets)
    async def _set_targets(self, message: SetTargets) -> None:
        self.targets = list(message.targets)
        for endpoint in self.targets:
            self.known.setdefault(endpoint.key, endpoint)
        # A region targets only workers whose heartbeat is fresh: alive again, if we had given up.
        self._worth_a_try([e.key for e in self.targets if e.key not in self.links])
        self.changed.set()

    def _worth_a_try(self, keys: list[tuple[str, int]]) -> None:
        """Endpoints known to be back: try them within COMEBACK_SPREAD, not when a backoff
        grown during a long outage (up to 30 s) ends; jittered, so that a fleet of racks
        does not come back in one instant. Never puts a sooner retry off."""
        now = time.monotonic()
        for key in keys:
            backoff = self.backoff.get(key)
            if backoff is not None and backoff.retry_at > now + COMEBACK_SPREAD:
                self.backoff[key] = Backoff(retry_at=now + random.uniform(0, COMEBACK_SPREAD))

    @handles(Ping)
    async def _ping(self, message: Ping) -> str:
        return "pong"

    # -- the loop --------------------------------------------------------------------------------

    async def run(self) -> None:
        # The loop itself opens no file (the cluster state is in memory, and this client's
        # TLS setup reads its CA bundle here, once), so running out of descriptors cannot kill it.
        self._http = httpx.AsyncClient(timeout=3, verify=_discovery_tls())
        try:
            while True:
                wake = await self._reconcile()
                self.changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wake):
                        await self.changed.wait()
        finally:
            for link in list(self.links.values()):
                await self._close(link)
            await self._http.aclose()

    def _usable(self, now: float) -> set[tuple[str, int]]:
        usable = set()
        for key in self.known:
            link = self.links.get(key)
            if link is not None and link.healthy:
                usable.add(key)
            elif self.backoff.setdefault(key, Backoff()).ready(now):
                usable.add(key)
        return usable

    async def _reconcile(self) -> float:
        """Bring the links in line with the plan; the seconds until it should run again
        unless something changes (a link ends, the region pushes targets: `changed`)."""
        now = time.monotonic()
        if not self.known or (not self.healthy_links() and not self._usable(now)):
            await self._discover()
        if self.healthy_links() and now - self._last_refresh > REFRESH_INTERVAL:
            self._last_refresh = now
            background(self._refresh())
        plan = plan_links(
            self.me().system_id, list(self.known.values()), self.targets, self._usable(now), DEFAULT_PER_RACK
        )
        wanted = {e.key for e in plan}
        for endpoint in plan:
            if endpoint.key not in self.links:
                self._open(endpoint)
        # Make before break: drop extra links only once every wanted one is up.
        settled = all(self.links.get(k) is not None and self.links[k].healthy for k in wanted)
        if settled:
            for key, link in list(self.links.items()):
                if key not in wanted:
                    await self._close(link)
        self._note_isolation()
        return self._next_pass(time.monotonic(), settled and bool(wanted))

    def _next_pass(self, now: float, settled: bool) -> float:
        """Every RECONCILE_INTERVAL while links are missing or opening; once settled, only
        when the next refresh is due or a target in backoff may be tried again (the plan
        prefers it to its stand-in). A thousand settled racks in one process (the bench's)
        spent a third of its CPU re-planning twice a second for nothing."""
        if not settled:
            return RECONCILE_INTERVAL
        waits = [REFRESH_INTERVAL - (now - self._last_refresh)]
        for target in self.targets or []:
            if target.key not in self.links and target.key in self.backoff:
                waits.append(self.backoff[target.key].retry_at - now)
        return max(RECONCILE_INTERVAL, min(min(waits), REFRESH_INTERVAL))

    def _note_isolation(self) -> None:
        healthy = bool(self.healthy_links())
        if healthy:
            self.connected_event.set()
            if self._isolated_since is not None:
                started, self._isolated_since = self._isolated_since, None
                if self.on_reconnect is not None:
                    background(self.on_reconnect(started, time.time()))
        else:
            self.connected_event.clear()
            if self._isolated_since is None:
                self._isolated_since = time.time()
                log.warning("degraded: lost every region controller; services keep running on their last configuration")
                if self.on_isolated is not None:
                    self.on_isolated()

    async def _discover(self) -> None:
        """Ask the maas_url regions (plain HTTP) for the worker endpoints."""
        # run()'s client, kept open (a new one per pass would read its CA bundle each time).
        client = self._http
        if client is None:  # not running: nothing to ask with
            return
        for url in self.urls:
            try:
                response = await client.get(url.rstrip("/") + "/rpc/")
                response.raise_for_status()
                listed = [Endpoint.from_wire(item) for item in response.json()["endpoints"]]
                for endpoint in listed:
                    self.known.setdefault(endpoint.key, endpoint)
                if not self.healthy_links():  # a region answers again
                    self._worth_a_try([e.key for e in listed])
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                log.debug("endpoint discovery from %s failed: %s", url, exc)

    async def _report_lost(self, endpoint: Endpoint) -> None:
        with contextlib.suppress(*CALL_FAILED):
            await self.call(LinkLost(endpoint.region, endpoint.worker), timeout=5)

    async def _refresh(self) -> None:
        with contextlib.suppress(*CALL_FAILED):
            self._learn(await self.call(GetEndpoints(), timeout=10))

    def _learn(self, answer: Endpoints) -> None:
        if answer.endpoints:
            # Forget endpoints the region no longer lists, unless we hold a link to them.
            self.known = {e.key: e for e in answer.endpoints} | {k: link.endpoint for k, link in self.links.items()}
        if answer.targets:
            self.targets = list(answer.targets)
        self.changed.set()

    def _open(self, endpoint: Endpoint) -> None:
        link = Link(endpoint)
        self.links[endpoint.key] = link
        link.task = asyncio.ensure_future(self._keep(link))

    async def _keep(self, link: Link) -> None:
        endpoint = link.endpoint
        try:
            link.connection = await open_connection(
                endpoint.host, endpoint.port, self.secret, self.me(), self.state.ca_cert, self.handlers
            )
            if link.closing:
                return
            welcome = link.connection.welcome
            if self.state.ca_cert is None or self.state.uuid != welcome.cluster:
                self.state.remember(welcome.cluster, welcome.ca_cert)
            serving = link.serving = asyncio.ensure_future(link.connection.peer.serve())
            answer = await link.connection.peer.call(await self.registration(), timeout=60)
            if link.closing:
                return
            link.registered = True
            self.refused = None
            self.backoff[endpoint.key] = Backoff()
            log.info(
                "connected to region %s worker %d at %s:%d",
                endpoint.region,
                endpoint.worker,
                endpoint.host,
                endpoint.port,
            )
            self._learn(answer)
            await serving
            if not link.closing:
                log.warning(
                    "lost region %s worker %d at %s:%d", endpoint.region, endpoint.worker, endpoint.host, endpoint.port
                )
                self.backoff.setdefault(endpoint.key, Backoff()).fail(time.monotonic())
                # Tell a surviving region now, rather than when the dead worker's heartbeat times out.
                background(self._report_lost(endpoint))
        except HandshakeRefused as exc:
            self.refused = exc
            if exc.reason == "region-secret":  # the region failed, not this rack
                log.error("region %s:%d is not trusted: %s", endpoint.host, endpoint.port, exc.message)
            else:
                log.error(
                    "region %s:%d refused this rack (%s): %s", endpoint.host, endpoint.port, exc.reason, exc.message
                )
            backoff = self.backoff.setdefault(endpoint.key, Backoff())
            backoff.failures = max(backoff.failures, 6)  # refusals are not transient
            backoff.fail(time.monotonic())
        except RegionBusy as exc:
            log.debug("%s:%d is busy; back within ~%g s", endpoint.host, endpoint.port, exc.retry_after)
            self._hold_region(endpoint, exc.retry_after)
        except ssl.SSLCertVerificationError:
            log.error(
                "%s:%d presents a certificate from another cluster (this rack belongs to cluster %s); "
                "run `metalplane rack reset` to move it",
                endpoint.host,
                endpoint.port,
                self.state.uuid,
            )
            backoff = self.backoff.setdefault(endpoint.key, Backoff())
            backoff.failures = max(backoff.failures, 6)
            backoff.fail(time.monotonic())
        except RemoteError as exc:
            log.debug("registering with %s:%d failed: %s", endpoint.host, endpoint.port, exc)
            backoff = self.backoff.setdefault(endpoint.key, Backoff())
            if exc.code == UNKNOWN_RACK:
                backoff.failures = max(backoff.failures, 6)  # not transient either
            backoff.fail(time.monotonic())
            if exc.code == UNKNOWN_RACK and self.on_unknown is not None:
                await self.on_unknown(exc.message)
        except (OSError, InvalidHandshake, *CALL_FAILED) as exc:
            log.debug("connecting to %s:%d failed: %s", endpoint.host, endpoint.port, exc)
            self.backoff.setdefault(endpoint.key, Backoff()).fail(time.monotonic())
        finally:
            if self.links.get(endpoint.key) is link:
                del self.links[endpoint.key]
            if link.connection is not None:
                with contextlib.suppress(Exception):
                    await link.connection.ws.close()
            self.changed.set()

    def _hold_region(self, endpoint: Endpoint, seconds: float) -> None:
        """A worker said it is busy: come back to it after `seconds` (jittered), and to its
        region's other workers that are not linked within a random part of that, so that the
        rack does not at once open a TLS link to each of them in turn (they are as busy,
        when a fleet arrives together) nor leave the region for long when one is idle."""
        now = time.monotonic()
        self.backoff.setdefault(endpoint.key, Backoff()).hold(now, seconds)
        for key, other in self.known.items():
            if other.region == endpoint.region and key != endpoint.key and key not in self.links:
                backoff = self.backoff.setdefault(key, Backoff())
                if backoff.ready(now):
                    backoff.retry_at = now + random.uniform(0, seconds)

    async def _close(self, link: Link) -> None:
        link.closing = True
        if link.connection is not None:
            with contextlib.suppress(Exception):
                await link.connection.ws.close()
        if link.task is not None and link.task is not asyncio.current_task():
            link.task.cancel()
            # Never wait forever on a link: it checks `closing` itself at every step.
            await asyncio.wait({link.task}, timeout=CLOSE_WAIT)
        self.links.pop(link.endpoint.key, None)
