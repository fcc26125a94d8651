"""A region worker's RPC endpoint: racks connect here; so do peer workers.

Each worker listens on rpc_port + worker_index. A rack session records its
connection in the database, answers the rack's calls, and pushes the balancer's
targets to the rack. Other workers reach a rack held here through `CallRack`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from metalplane import __version__
from metalplane.config.region import RegionConfig
from metalplane.logs import never_log
from metalplane.region import changes, metrics
from metalplane.region.api.metadata import metadata_url
from metalplane.region.changes import ChangeHub
from metalplane.region.db.notifications import listen_forever
from metalplane.region.db.transaction import transaction
from metalplane.region.joins import RETRY_AFTER, Joins
from metalplane.region.services import (
    bmcs,
    boot,
    boot_resources,
    cluster,
    connections,
    dhcp,
    discoveries,
    leases,
    machines,
    rack_services,
    racks,
)
from metalplane.rpc import messages as m
from metalplane.rpc import wire
from metalplane.rpc.client import PEER_PATH, Connection, open_connection
from metalplane.rpc.dhcp import DhcpState
from metalplane.rpc.dispatch import handler_table, handles
from metalplane.rpc.endpoint import Endpoint
from metalplane.rpc.handshake import HANDSHAKE_TIMEOUT, ClientHello, HandshakeRefused, server_handshake
from metalplane.rpc.protocol import (
    CLOSE_TIMEOUT,
    PRE_AUTH_FRAME,
    UNKNOWN_RACK,
    ConnectionLost,
    ProtocolError,
    RemoteError,
    RpcPeer,
    enable_tcp_keepalive,
)
from metalplane.rpc.services import ServicesConfig
from metalplane.rpc.tls import fingerprint_pem, server_context

log = logging.getLogger("metalplane.region.rpc")
R = TypeVar("R")
PUSH_DEBOUNCE = 0.05
REBALANCE_DEBOUNCE = 0.25  # s without a new request: the burst is over
REBALANCE_LONGEST = 2.0  # s: a burst that goes on is planned at least this often
# How stale a worker's copy of the live endpoints may be (a dead worker drops out of
# them only after controllers.PROCESS_TIMEOUT anyway).
LIVE_ENDPOINTS_TTL = 1.0
REPAIR_INTERVAL = 2.0
ADMISSION_PER_POOL = 4  # racks joining at once per database connection of the pool
JOIN_WAIT = 2.0  # s a rack may wait in line to join (its connect timeout is 5 s)
JOIN_QUEUE_PER_POOL = 8  # racks in line at once per database connection of the pool
REJOIN_WINDOW = 0.01  # s: returning racks registered together (RegionRpcServer.rejoin)
RACK_LOST = "rack-lost"
BOOT_CONFIG_POOL_RESERVE = 3  # database connections boot-config calls leave to the rest


def advertised_host(config: RegionConfig) -> str:
    """The address racks use to reach this region: the host of its maas_url."""
    return urlsplit(config.maas_url).hostname or "127.0.0.1"


class RackSession:
    """One rack's connection to this worker: answers the rack's calls (rack → region)."""

    def __init__(
        self,
        server: RegionRpcServer,
        ws: ServerConnection,
        hello: ClientHello,
        protocol: int,
        joined: Callable[[], None],
    ):
        self.server = server
        self.joined = joined  # admission: its place is held until registered (region.joins)
        self.hello = hello
        self.system_id = hello.system_id
        self.node_id: int | None = None
        self.pushed: list[Endpoint] | None = None
        self.peer = RpcPeer(
            ws, handler_table(self), name=f"rack {hello.hostname} ({hello.system_id})", protocol=protocol
        )

    async def run(self) -> None:
        self.server.open_sessions.add(self)
        self.server.seen_racks.add(self.system_id)
        try:
            await self.peer.serve()
        finally:
            self.server.open_sessions.discard(self)
            current = self.server.sessions.get(self.system_id)
            if current is self:
                del self.server.sessions[self.system_id]
                metrics.rpc_connections(self.server.worker_index, len(self.server.sessions))
            # A new link of the same rack registered here already: the row is its now.
            if self.node_id is not None and self.server.process_id is not None and current in (None, self):
                with contextlib.suppress(Exception):
                    await self._forget(self.node_id, self.server.process_id)
            log.info("%s disconnected", self.peer.name)

    async def _forget(self, node_id: int, process_id: int) -> None:
        """The link is gone: its connection row goes, and a rack left with none is dead."""
        async with self.server.db.begin() as conn:
            await connections.remove_connection(conn, node_id, process_id)
        if self._replaced():  # a new link of the rack registered here meanwhile: its row back
            async with self.server.db.begin() as conn:
                await connections.add_connection(conn, node_id, process_id)
            return
        # Apart, after the commit: two workers losing the rack's two links at
        # once would each still see the other's link inside its own transaction.
        async with self.server.db.begin() as conn:
            last_link = node_id not in await connections.connected_regions(conn, [node_id])
            if last_link:  # the rack is dead as far as the regions can tell
                changes = await racks.mark_unreachable(conn, node_id)
        if last_link:  # its BMCs move now
            if changes:
                log.warning(
                    "%s has no connection to any region left: %s",
                    self.peer.name,
                    ", ".join(f"{n} {new}" for n, _, new in changes),
                )
            await self.server.reassign_bmcs()

    def _replaced(self) -> bool:
        newer = self.server.sessions.get(self.system_id)
        return newer is not None and newer is not self and newer.node_id is not None

    @handles(m.Register)
    async def register(self, message: m.Register) -> m.Endpoints:
        """Create or update the rack's record. Without `enrol` (the rack was told to register)
        an unknown rack is refused: its record was deleted and it must not come back by itself.
        A rack that comes back unchanged joins with the others arriving at the same time
        (RegionRpcServer.rejoin: one transaction for the burst)."""
        rejoined = await self.server.rejoin(
            racks.Rejoin(self.system_id, message.hostname, message.version, wire.encode(message.interfaces))
        )
        if rejoined is not None:
            self.node_id, was_live = rejoined
            # Linked to a region already (a killed worker's rack): the live racks, and so
            # the BMCs' owners, are what they were.
            return await self._joined(reassign_bmcs=not was_live)
        async with transaction(self.server.db, self.server.config) as conn:
            if not message.enrol and not await racks.is_rack(conn, self.system_id):
                log.warning("%s has no record here and was not told to register; refused", self.peer.name)
                raise RemoteError(UNKNOWN_RACK, f"this region has no rack controller {self.system_id} (it was deleted)")
            self.node_id = await racks.register_rack(
                conn, self.system_id, message.hostname, message.version, wire.encode(message.interfaces)
            )
        # Apart: registration holds its lock, and the connection row locks a process row
        # that the reaper may be deleting under the rebalance lock.
        if self.server.process_id is not None:  # else attach() records it once the worker's row exists
            async with self.server.db.begin() as conn:
                await connections.add_connection(conn, self.node_id, self.server.process_id)
        return await self._joined()

    async def _joined(self, reassign_bmcs: bool = True) -> m.Endpoints:
        self.server.sessions[self.system_id] = self
        metrics.rpc_connections(self.server.worker_index, len(self.server.sessions))
        self.joined()  # the next rack in line may come in
        await self.server.rebalance()
        if reassign_bmcs:
            await self.server.reassign_bmcs()
        return await self.get_endpoints(m.GetEndpoints())

    @handles(m.UpdateServices)
    async def update_services(self, message: m.UpdateServices) -> None:
        node_id = self._registered()
        async with self.server.db.begin() as conn:
            await racks.update_services(conn, node_id, wire.encode(message.services))

    def _registered(self) -> int:
        if self.node_id is None:
            raise RemoteError("not-registered", "call Register first")
        return self.node_id

    async def _read(self, reply: type[R], read: Callable[..., Awaitable[Any]], *args: Any) -> R:
        """The reply `read(conn, *args)` gives from the model, checked as a `reply`."""
        async with self.server.db.connect() as conn:
            return wire.decode(reply, await read(conn, *args))

    @handles(m.GetDhcpState)
    async def get_dhcp_state(self, message: m.GetDhcpState) -> DhcpState:
        """Built from the model and checked here too: a state no rack could serve is refused
        ("invalid-dhcp-state"), and the rack shows why in its dhcpd status."""
        async with self.server.db.connect() as conn:
            state = await dhcp.rack_dhcp_state(conn, self._registered())
        if self.peer.protocol < 2:  # DhcpState refuses fields it does not know: no DHCPv6 for it
            if state.pop("vlans6", None):
                state["problems"].append("DHCPv6 needs a rack of RPC protocol 2: upgrade the rack")
        return wire.decode(DhcpState, state)

    @handles(m.ReportLeases)
    async def report_leases(self, message: m.ReportLeases) -> int:
        async with transaction(self.server.db, self.server.config) as conn:
            applied = await leases.apply_events(conn, self._registered(), wire.encode(message.events))
        metrics.lease_events([event.action for event in message.events])
        return applied

    @handles(m.GetServicesConfig)
    async def get_services_config(self, message: m.GetServicesConfig) -> ServicesConfig:
        """What this rack's resolver, chronyd and ARP listener follow (checked here too)."""
        return await self._read(ServicesConfig, rack_services.rack_services, self._registered())

    @handles(m.ReportDiscoveries)
    async def report_discoveries(self, message: m.ReportDiscoveries) -> int:
        async with self.server.db.begin() as conn:
            return await discoveries.record(conn, self._registered(), wire.encode(message.observations))

    @handles(m.GetBootImages)
    async def get_boot_images(self, message: m.GetBootImages) -> m.BootImages:
        self._registered()
        return await self._read(m.BootImages, boot_resources.manifest)

    @handles(m.GetBootConfig)
    async def get_boot_config(self, message: m.GetBootConfig) -> m.BootConfig:
        self._registered()
        async with self.server.boot_config_gate:  # FIFO, below the pool: heartbeats keep a connection
            return await self._boot_config(message)

    async def _boot_config(self, message: m.GetBootConfig) -> m.BootConfig:
        return wire.decode(
            m.BootConfig,
            await boot.boot_config(
                self.server.db,
                message.mac,
                message.architecture,
                metadata_url(self.server.config.maas_url),
                message.client_ip,
            ),
        )

    @handles(m.GetPowerTargets)
    async def get_power_targets(self, message: m.GetPowerTargets) -> m.PowerTargets:
        return await self._read(m.PowerTargets, bmcs.poll_targets, self._registered())

    @handles(m.ReportPowerStates)
    async def report_power_states(self, message: m.ReportPowerStates) -> None:
        """Background polls: store each machine's state; mark failing BMCs."""
        node_id = self._registered()
        async with self.server.db.begin() as conn:
            for item in message.results:
                ids = await machines.ids_of(conn, [item.system_id])
                if item.error:
                    await bmcs.record_result(conn, node_id, item.bmc_id, item.error)
                else:
                    await machines.set_power_state(conn, ids, item.state)
                    await bmcs.record_result(conn, node_id, item.bmc_id, None)

    @handles(m.LinkLost)
    async def link_lost(self, message: m.LinkLost) -> None:
        """The rack lost its link to another worker; forget it before its heartbeat times out."""
        if self.node_id is None:
            return
        async with self.server.db.begin() as conn:
            await connections.forget_connection(conn, self.node_id, message.region, message.worker)

    @handles(m.ReportIsolation)
    async def report_isolation(self, message: m.ReportIsolation) -> None:
        log.warning(
            "%s ran degraded, without any region, for %.0f s (services kept their last configuration)",
            self.peer.name,
            message.until - message.since,
        )
        async with self.server.db.begin() as conn:
            await racks.record_isolation(conn, self._registered(), message.until - message.since)

    @handles(m.GetEndpoints)
    async def get_endpoints(self, message: m.GetEndpoints) -> m.Endpoints:
        """Every rack asks this every REFRESH_INTERVAL and at each Register: answered from the
        worker's short-lived copy of the live endpoints and, once pushed, the rack's targets."""
        live = await self.server.live_endpoints()
        targets = self.pushed
        if targets is None:
            async with self.server.db.connect() as conn:
                targets = (await connections.targets_for(conn, [self.system_id], live)).get(self.system_id)
        return m.Endpoints([e.endpoint for e in live], targets)


class RegionRpcServer:
    def __init__(self, config: RegionConfig, db: AsyncEngine, region_id: int, region_system_id: str, worker_index: int):
        self.config = config
        self.db = db
        self.region_id = region_id
        self.region_system_id = region_system_id
        self.worker_index = worker_index
        self.port = config.rpc_port + worker_index
        # A boot storm's GetBootConfig calls wait here in FIFO order rather than in the
        # database pool (30 s pool timeout), leaving connections for heartbeats and Register.
        self.boot_config_gate = asyncio.Semaphore(max(1, config.database_pool_size - BOOT_CONFIG_POOL_RESERVE))
        self.sessions: dict[str, RackSession] = {}  # registered racks, by system_id
        self.open_sessions: set[RackSession] = set()  # every rack connection, registered or not
        self.seen_racks: set[str] = set()  # every rack that has linked here (its rows are this worker's)
        self._rejoining: list[tuple[racks.Rejoin, asyncio.Future[tuple[int, bool] | None]]] = []
        self._rejoin_wanted = asyncio.Event()
        self.changes = ChangeHub()  # the web UI's live pages subscribe here
        self.process_id: int | None = None
        self._peers: dict[tuple[str, int], Connection] = {}
        self._tasks: set[asyncio.Task] = set()
        self._push_wanted = asyncio.Event()
        # A returning rack's Register is one row of its burst's transaction (rejoin), so a
        # worker takes several pools' worth at once; the next wait in line (region.joins).
        pool = max(1, config.database_pool_size)
        self.joins = Joins(ADMISSION_PER_POOL * pool, JOIN_WAIT, JOIN_QUEUE_PER_POOL * pool)
        self.joins.on_outcome = functools.partial(metrics.rack_join, worker_index)
        self._live: tuple[float, list[connections.EndpointRow]] | None = None
        self._live_reading: asyncio.Future[list[connections.EndpointRow]] | None = None
        self._rebalance_wanted = asyncio.Event()
        self._reassign_wanted = asyncio.Event()

    async def start(self) -> None:
        async with self.db.begin() as conn:
            tls = await connections.cluster_tls(conn)
            self.secret = await cluster.shared_secret(conn)
            never_log(self.secret)
            self.cluster = await cluster.cluster_uuid(conn)
            await self.attach(conn)
        self.ca_cert = tls["ca_cert"]
        self.fingerprint = fingerprint_pem(tls["cert"])
        self.server = await serve(
            self._handle,
            self.config.listen_address,
            self.port,
            ping_interval=None,
            close_timeout=CLOSE_TIMEOUT,
            compression=None,
            ssl=server_context(tls["cert"], tls["key"]),
            # Until the handshake: small frames, and TLS + upgrade + handshake each bounded.
            max_size=PRE_AUTH_FRAME,
            open_timeout=HANDSHAKE_TIMEOUT,
            ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
            process_request=self._admit,
        )
        self._spawn(self._listen())
        self._spawn(self._pusher())
        self._spawn(self._repair_connections())
        self._spawn(self._rejoiner())
        self._spawn(self._debounced(self._rebalance_wanted, self._rebalance_now, "rebalancing"))
        self._spawn(self._debounced(self._reassign_wanted, self._reassign_now, "reassigning BMCs"))
        await self.rebalance()  # a worker joined

    async def attach(self, conn) -> None:
        """(Re)bind to this worker's process row; restore the connections we hold."""
        process_id = await connections.process_id(conn, self.region_id, self.worker_index)
        if process_id is None:
            raise RuntimeError(f"worker {self.worker_index} has no process row to attach to (reaped?)")
        self.process_id = process_id
        await connections.clear_process_connections(conn, process_id)
        for session in list(self.sessions.values()):  # racks come and go meanwhile
            if session.node_id is not None:
                await connections.add_connection(conn, session.node_id, process_id)

    async def stop(self) -> None:
        self.server.close()
        for task in list(self._tasks):
            task.cancel()
        for connection in self._peers.values():
            with contextlib.suppress(Exception):
                await connection.ws.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 5)

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def live_endpoints(self) -> list[connections.EndpointRow]:
        """The live worker endpoints, read at most once per LIVE_ENDPOINTS_TTL by this worker
        however many racks ask (discovery, Register, GetEndpoints): 1,000 racks connecting
        read them thousands of times, each a pool connection. Concurrent askers share one read."""
        now = asyncio.get_running_loop().time()
        if self._live is not None and now - self._live[0] < LIVE_ENDPOINTS_TTL:
            return self._live[1]
        if self._live_reading is None:
            self._live_reading = asyncio.ensure_future(self._read_live())
        return await asyncio.shield(self._live_reading)

    async def _read_live(self) -> list[connections.EndpointRow]:
        try:
            started = asyncio.get_running_loop().time()
            async with self.db.connect() as conn:
                live = await connections.live_endpoints(conn)
            self._live = (started, live)
            return live
        finally:
            self._live_reading = None

    async def rejoin(self, rack: racks.Rejoin) -> tuple[int, bool] | None:
        """The rack's node id, and whether it was linked to a region already, once it is
        registered and its connection recorded with the other racks of its burst
        (racks.register_known_racks); None when it is not an unchanged known rack (or
        the batch failed): the caller registers it by itself."""
        if self.process_id is None:
            return None
        future: asyncio.Future[tuple[int, bool] | None] = asyncio.get_running_loop().create_future()
        self._rejoining.append((rack, future))
        self._rejoin_wanted.set()
        return await future

    async def _rejoiner(self) -> None:
        """One transaction per burst of returning racks: whatever arrived while the last
        one ran, or within REJOIN_WINDOW of the first."""
        while True:
            await self._rejoin_wanted.wait()
            await asyncio.sleep(REJOIN_WINDOW)
            self._rejoin_wanted.clear()
            batch, self._rejoining = self._rejoining, []
            joined: dict[str, int] = {}
            live: set[str] = set()
            try:
                if self.process_id is not None:
                    async with self.db.begin() as conn:
                        joined, live = await racks.register_known_racks(conn, self.process_id, [r for r, _ in batch])
            except Exception as exc:  # each registers by itself instead, and meets the error there
                log.info("joining %d racks together failed: %s", len(batch), exc)
                joined, live = {}, set()
            for rack, future in batch:
                if not future.done():
                    node_id = joined.get(rack.system_id)
                    future.set_result(None if node_id is None else (node_id, rack.system_id in live))

    async def _repair_connections(self) -> None:
        """Every REPAIR_INTERVAL, make this worker's connection rows match the racks it
        holds. Rows are keyed by (rack, worker), not by link: a rack that dropped a link
        and linked again to the same worker could lose its new row to the old link's late
        clean-up, or to a LinkLost about the old link reported through another region;
        nothing would put it back, and the rack, well connected, would look half-linked
        for good (1,000-rack bench: 2-3 racks, never served again after a worker kill)."""
        while True:
            await asyncio.sleep(REPAIR_INTERVAL)
            if self.process_id is None:
                continue
            open_now = [s for s in self.open_sessions if s.peer.is_open]
            held = {s.node_id for s in open_now if s.node_id is not None}
            linked = {s.system_id for s in open_now}
            try:
                async with self.db.begin() as conn:
                    fixed = await connections.match_process_connections(
                        conn, self.process_id, held, linked, self.seen_racks
                    )
                if fixed:
                    log.info("worker %d: %d connection rows repaired", self.worker_index, fixed)
                    await self.rebalance()
            except Exception as exc:
                log.warning("repairing connection rows failed (will retry): %s", exc)

    async def rebalance(self) -> None:
        """Ask for a balance check; bursts (many racks connecting) collapse into one."""
        self._rebalance_wanted.set()

    async def reassign_bmcs(self) -> None:
        """Ask for BMC owners to be checked; bursts collapse into one (the supervisor's
        heartbeat retries a failed one)."""
        self._reassign_wanted.set()

    async def _rebalance_now(self) -> None:
        async with self.db.begin() as conn:
            await connections.rebalance(conn, self.config.rpc_connections_per_rack, self.config.balance_threshold)

    async def _reassign_now(self) -> None:
        async with self.db.begin() as conn:
            await bmcs.reassign(conn, self.config.balance_threshold)

    async def _debounced(self, wanted: asyncio.Event, action: Callable[[], Awaitable[None]], what: str) -> None:
        """Run `action` once per burst of requests: a thousand racks connecting at once
        make one rebalance and one BMC reassignment, not a thousand serialised ones."""
        loop = asyncio.get_running_loop()
        while True:
            await wanted.wait()
            # Until the burst is over: no new request for REBALANCE_DEBOUNCE, at most
            # REBALANCE_LONGEST. The racks of a killed worker each link again to another
            # worker of its region within a second or two; planned while they were on their
            # way, about half were then moved to the balancer's choice (a second TLS link
            # and Register each, at the worst time); planned after, they mostly stay.
            first = loop.time()
            while True:
                wanted.clear()
                await asyncio.sleep(REBALANCE_DEBOUNCE)
                if not wanted.is_set() or loop.time() - first >= REBALANCE_LONGEST:
                    break
            wanted.clear()
            try:
                await action()
            except Exception as exc:
                log.warning("%s failed (will retry on the next change): %s", what, exc)

    # -- incoming connections ------------------------------------------------------------

    async def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        """Admission control (region.joins): a rack joins now, or after its turn in line,
        or is told to come back (503, Retry-After) before any work is done for it. It
        holds its place until registered or gone. Region peers (forwarded calls) never wait."""
        if request.path == PEER_PATH:
            return None
        self._spawn(self._leave_when_closed(connection))  # whatever becomes of the handshake
        if await self.joins.enter(connection):
            return None
        response = connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "too many racks joining; retry later\n")
        response.headers["Retry-After"] = str(RETRY_AFTER)
        return response

    async def _leave_when_closed(self, connection: ServerConnection) -> None:
        await connection.wait_closed()
        self.joins.leave(connection)

    async def _handle(self, ws: ServerConnection) -> None:
        enable_tcp_keepalive(ws.transport)
        try:
            hello, protocol = await server_handshake(
                ws, self.secret, self.fingerprint, self.region_system_id, self.cluster, __version__, self.ca_cert
            )
        except HandshakeRefused as exc:
            who = f"{exc.client.hostname} ({exc.client.system_id})" if exc.client else str(ws.remote_address)
            log.warning("refused RPC connection from %s: %s", who, exc.message)
            if exc.reason == "version" and exc.client is not None:
                async with self.db.begin() as conn:
                    await racks.record_refusal(
                        conn, exc.client.system_id, exc.client.hostname, exc.client.version, exc.message
                    )
            await ws.close(1008, exc.reason)
            return
        except (TimeoutError, ConnectionClosed, ProtocolError, ValueError) as exc:
            log.info("RPC handshake with %s failed: %s", ws.remote_address, exc)
            return
        if hello.role == "region":
            self.joins.leave(ws)
            await RpcPeer(ws, handler_table(self), name=f"region peer {hello.system_id}", protocol=protocol).serve()
            return
        log.info("rack %s (%s) connected to worker %d", hello.hostname, hello.system_id, self.worker_index)
        await RackSession(self, ws, hello, protocol, functools.partial(self.joins.leave, ws)).run()

    @handles(m.CallRack)
    async def _forwarded_call(self, message: m.CallRack) -> Any:
        """Another worker's call to a rack held here (region → region)."""
        session = self.sessions.get(message.system_id)
        if session is None:
            raise RemoteError("not-connected", f"rack {message.system_id} is not connected to this worker")
        try:
            return await session.peer.call_raw(message.method, message.args, timeout=message.rack_timeout)
        except ConnectionLost as exc:
            raise RemoteError(RACK_LOST, str(exc)) from None

    # -- calling racks ---------------------------------------------------------------------

    async def call_rack(self, system_id: str, message: m.Call[R], timeout: float = 30.0) -> R:
        """Call a rack wherever it is connected: here, or through the worker that holds it."""
        session = self.sessions.get(system_id)
        if session is not None and session.peer.is_open:
            return await session.peer.call(message, timeout=timeout)
        async with self.db.connect() as conn:
            holders = await connections.holders_of(conn, system_id)
        errors = []
        for endpoint in (h.endpoint for h in holders):
            if (endpoint.region, endpoint.worker) == (self.region_system_id, self.worker_index):
                continue
            try:
                peer = await self._peer(endpoint.host, endpoint.port)
                raw = await peer.call(
                    m.CallRack(system_id, message.name, wire.encode(message), timeout), timeout=timeout + 5
                )
                return wire.decode(message.reply, raw, root=f"{message.name} reply")
            except (ConnectionLost, OSError, TimeoutError, HandshakeRefused) as exc:
                errors.append(f"{endpoint.host}:{endpoint.port}: {exc}")
            except RemoteError as exc:
                if exc.code == RACK_LOST:  # the rack died during the call: the caller decides
                    raise ConnectionLost(exc.message) from None
                if exc.code != "not-connected":
                    raise
                errors.append(exc.message)
        raise ConnectionLost(
            f"rack {system_id} is not connected to any region" + (f" ({'; '.join(errors)})" if errors else "")
        )

    async def _peer(self, host: str, port: int) -> RpcPeer:
        existing = self._peers.get((host, port))
        if existing is not None and existing.peer.is_open:
            return existing.peer
        me = ClientHello("region", self.region_system_id, f"worker-{self.worker_index}", __version__, self.cluster)
        connection = await open_connection(host, port, self.secret, me, self.ca_cert, {}, path=PEER_PATH)
        self._peers[(host, port)] = connection
        self._spawn(connection.peer.serve())
        return connection.peer

    # -- notifications -----------------------------------------------------------------------

    async def _listen(self) -> None:
        await listen_forever(
            self.config,
            f"metalplane-listen-{self.worker_index}",
            [connections.TARGETS_CHANNEL, connections.RACK_EVENTS_CHANNEL, changes.CHANNEL],
            self._note,
            on_connected=self._caught_up,
        )

    def _caught_up(self) -> None:
        """Notifications sent while the listener was away are lost: catch up on all of them."""
        self._push_wanted.set()
        self.changes.publish(changes.EVERYTHING)

    async def _note(self, channel: str, payload: str) -> None:
        if channel == changes.CHANNEL:
            self.changes.publish(payload)
        elif channel == connections.TARGETS_CHANNEL:
            self._push_wanted.set()
        else:
            await self._rack_event(json.loads(payload))

    async def _pusher(self) -> None:
        """Coalesce bursts of target changes into one push per rack."""
        while True:
            await self._push_wanted.wait()
            await asyncio.sleep(PUSH_DEBOUNCE)
            self._push_wanted.clear()
            try:
                await self.push_targets()
            except Exception as exc:
                log.warning("pushing connection targets failed: %s", exc)

    async def push_targets(self) -> None:
        if not self.sessions:
            return
        async with self.db.connect() as conn:
            targets = await connections.targets_for(conn, list(self.sessions))
        for system_id, session in list(self.sessions.items()):
            wanted = targets.get(system_id)
            if wanted and wanted != session.pushed:
                session.pushed = wanted
                self._spawn(self._send_targets(session, wanted))

    async def _send_targets(self, session: RackSession, targets: list[Endpoint]) -> None:
        with contextlib.suppress(ConnectionLost, TimeoutError, RemoteError):
            await session.peer.call(m.SetTargets(targets), timeout=10)

    async def _rack_event(self, event: dict[str, Any]) -> None:
        broadcast = {"dhcp": m.DhcpChanged(), "images": m.ImagesChanged()}.get(event.get("kind", ""))
        if broadcast:
            for session in list(self.sessions.values()):
                self._spawn(self._notify(session, broadcast))
            return
        if event.get("kind") == "services":  # the racks refetch; `flush`: zones a region changed
            changed = m.ServicesChanged([str(z) for z in event.get("flush", [])])
            for session in list(self.sessions.values()):
                self._spawn(self._notify(session, changed))  # a protocol-1 rack: NoSuchMethod, ignored
            return
        if event.get("kind") == "bmcs":
            for system_id in event.get("racks", []):
                if system_id in self.sessions:
                    self._spawn(self._notify(self.sessions[system_id], m.PowerTargetsChanged()))
            return
        target = self.sessions.get(event.get("system_id", ""))
        if target is None:
            return
        if event.get("kind") == "deleted":
            log.info("%s was deleted through the API; telling it to stop", target.peer.name)
            self._spawn(self._tell_stop(target))

    async def _notify(self, session: RackSession, message: m.Call[None]) -> None:
        with contextlib.suppress(ConnectionLost, TimeoutError, RemoteError):
            await session.peer.call(message, timeout=10)

    async def _tell_stop(self, session: RackSession) -> None:
        with contextlib.suppress(ConnectionLost, TimeoutError, RemoteError):
            await session.peer.call(m.Stop("deleted from the region"), timeout=5)
        await session.peer.close("deleted")
