"""`metalplane region run`: the region supervisor and its worker processes.

The supervisor binds the API socket once and hands it to every worker, so all
workers accept from one queue: a dead worker's peers keep answering. It
restarts dead workers at once (with backoff if one keeps crashing) and removes
their rows so `region-controllers read` shows the truth.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncEngine

from metalplane import __version__
from metalplane.config.region import RegionConfig
from metalplane.identity import local_hostname, read_secret, read_system_id, write_secret, write_system_id
from metalplane.logs import never_log
from metalplane.region import bootstrap, metrics
from metalplane.region.budget import compute_budget
from metalplane.region.db import engine as db_engine
from metalplane.region.db.tables import controller_info
from metalplane.region.db.transaction import transaction
from metalplane.region.host_services import RegionServices, region_address
from metalplane.region.rpc_server import advertised_host
from metalplane.region.services import (
    bmcs,
    cluster,
    commissioning,
    connections,
    consequences,
    controllers,
    lifecycle,
)

log = logging.getLogger("metalplane.region")

POLL_INTERVAL = 0.2
REGION_HEARTBEAT = 1.0
STOP_GRACE = 10.0
MAX_RESTART_DELAY = 4.0


def worker_count_warnings(num_workers: int, cpus: int) -> list[str]:
    """The seeds: one worker per CPU, up to eight. Warn beyond either; never refuse."""
    warnings = []
    if num_workers > cpus:
        warnings.append(
            f"num_workers={num_workers} is more than this host's {cpus} CPUs; "
            "more workers than CPUs may reduce performance"
        )
    if num_workers > 8:
        warnings.append(f"num_workers={num_workers} is above the recommended maximum of 8; use at your own risk")
    return warnings


def restart_delay(recent_crashes: int) -> float:
    """Immediate for a first death; doubling for a worker that keeps dying young."""
    if recent_crashes <= 1:
        return 0.0
    return min(0.25 * 2 ** (recent_crashes - 2), MAX_RESTART_DELAY)


# Send buffer of every API connection (accepted sockets inherit it): a whole
# response fits in the kernel at once, so a worker killed right after writing
# it still delivers it (the kernel sends what is queued before its FIN). A
# response cut off after its headers is one neither HAProxy nor a client can
# retry. The kernel caps this at net.core.wmem_max (and doubles it).
API_SEND_BUFFER = 4 << 20


def bind_api_socket(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, API_SEND_BUFFER)
    sock.bind((address, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


@dataclass
class WorkerSlot:
    index: int
    proc: subprocess.Popen | None = None
    started: float = 0.0
    crashes: list[float] = field(default_factory=list)
    due: float = 0.0


class Supervisor:
    def __init__(self, config: RegionConfig, config_path: Path):
        self.config = config
        self.config_path = config_path
        self.data_dir = Path(config.data_dir)
        self.stopping = asyncio.Event()
        self.slots = [WorkerSlot(i) for i in range(config.num_workers)]
        self.region_id = 0
        self.db: AsyncEngine | None = None
        self.metrics_dir = metrics.metrics_dir(self.data_dir)

    async def run(self) -> int:
        for warning in worker_count_warnings(self.config.num_workers, os.cpu_count() or 1):
            log.warning(warning)
        await asyncio.to_thread(bootstrap.migrate, self.config)
        metrics.reset_dir(self.metrics_dir)  # the workers' samples (region.metrics), from zero
        self.db = db_engine.async_engine(self.config, "metalplane-supervisor", pool_size=1)
        try:
            await self._register()
            sock = bind_api_socket(self.config.listen_address, self.config.port)
            log.info(
                "region %s serving the API on %s:%d with %d workers",
                self.system_id,
                self.config.listen_address,
                self.config.port,
                self.config.num_workers,
            )
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stopping.set)
            heartbeat = asyncio.create_task(self._heartbeat())
            services = RegionServices(self.config, self.db, self.region_id, self.system_id)
            services_task = asyncio.create_task(services.run(), name="region-services")
            try:
                await self._supervise(sock)
            finally:
                heartbeat.cancel()
                services_task.cancel()
                await self._stop_workers()
                await services.stop()
                sock.close()
                async with self.db.begin() as conn:
                    await controllers.remove_region_processes(conn, self.region_id)
            log.info("region stopped")
            return 0
        finally:
            await self.db.dispose()

    async def _register(self) -> None:
        assert self.db is not None
        self.system_id = read_system_id(self.data_dir) or controllers.new_system_id()
        write_system_id(self.data_dir, self.system_id)
        try:
            address: str | None = region_address(advertised_host(self.config))
        except OSError as exc:
            address = None
            log.error(
                "cannot tell the racks where this region's DNS and NTP are: %s (maas_url %s)", exc, self.config.maas_url
            )
        async with transaction(self.db, self.config) as conn:
            await bootstrap.ensure_defaults(conn)
            self.region_id = await controllers.register_region(
                conn,
                self.system_id,
                local_hostname(self.config.hostname),
                __version__,
                controllers.RegionInfo(
                    num_workers=self.config.num_workers,
                    connections_needed=self.config.connections_needed(),
                    api_port=self.config.port,
                    maas_url=self.config.maas_url,
                    address=address,
                    dns_port=self.config.dns_port,
                    ntp_port=self.config.ntp_port,
                ),
            )
            # Its address is the zones' NS address and a forwarder and NTP source of every rack.
            consequences.region_services_changed(conn)
            consequences.rack_services_changed(conn)
            await controllers.remove_region_processes(conn, self.region_id)
            secret = await cluster.shared_secret(conn)
            never_log(secret)
            budget = compute_budget(await controllers.region_needs(conn), *await controllers.connection_limits(conn))
        (log.info if budget.ok else log.error)(budget.message())
        if read_secret(self.data_dir) != secret:
            write_secret(self.data_dir, secret)

    async def _heartbeat(self) -> None:
        assert self.db is not None
        while True:
            await asyncio.sleep(REGION_HEARTBEAT)
            try:
                async with self.db.begin() as conn:  # alone, so that nothing below can undo it
                    await conn.execute(
                        update(controller_info)
                        .where(controller_info.c.node_id == self.region_id)
                        .values(updated=func.now())
                    )
                    await controllers.heartbeat_live_processes(conn, self.region_id, self._live_pids())
                async with self.db.begin() as conn:
                    # Any region notices a dead one: its workers stop heartbeating.
                    if await connections.reap_stale_processes(conn):
                        await connections.rebalance(
                            conn, self.config.rpc_connections_per_rack, self.config.balance_threshold
                        )
                    await controllers.record_regiond_statuses(conn)
                    for system_id in await commissioning.expire(conn):
                        log.warning("machine %s failed commissioning: timed out", system_id)
                    for system_id in await lifecycle.expire(conn):
                        log.warning("machine %s timed out (deploying, releasing, erasing or rescue mode)", system_id)
                    # Safety net for BMC ownership (racks vanishing without a clean close).
                    if await bmcs.needs_reassignment(conn):
                        await bmcs.reassign(conn, self.config.balance_threshold)
            except Exception as exc:  # the database may be failing over; keep going
                log.warning("region heartbeat failed: %s", exc)

    def _live_pids(self) -> list[int]:
        return [s.proc.pid for s in self.slots if s.proc is not None and s.proc.poll() is None]

    def _spawn(self, slot: WorkerSlot, fd: int) -> None:
        args = [
            sys.executable,
            "-m",
            "metalplane.region.worker",
            "--config",
            str(self.config_path),
            "--index",
            str(slot.index),
            "--fd",
            str(fd),
            "--region-id",
            str(self.region_id),
        ]
        slot.proc = subprocess.Popen(args, pass_fds=(fd,), env=metrics.worker_env(self.metrics_dir))
        slot.started = time.monotonic()
        log.info("worker %d started (pid %d)", slot.index, slot.proc.pid)

    async def _reap(self, slot: WorkerSlot) -> None:
        assert slot.proc is not None and self.db is not None
        pid, code = slot.proc.pid, slot.proc.returncode
        log.warning("worker %d (pid %d) exited with %s; restarting", slot.index, pid, code)
        slot.proc = None
        metrics.worker_gone(self.metrics_dir, pid)
        now = time.monotonic()
        slot.crashes = [t for t in slot.crashes if now - t < 30] + [now]
        slot.due = now + restart_delay(len(slot.crashes))
        try:
            async with self.db.begin() as conn:
                await connections.forget_process(
                    conn,
                    self.region_id,
                    slot.index,
                    pid,
                    self.config.rpc_connections_per_rack,
                    self.config.balance_threshold,
                )
        except Exception as exc:
            log.warning("could not remove worker %d's record: %s", slot.index, exc)

    async def _supervise(self, sock: socket.socket) -> None:
        fd = sock.fileno()
        while not self.stopping.is_set():
            now = time.monotonic()
            for slot in self.slots:
                if slot.proc is not None and slot.proc.poll() is not None:
                    await self._reap(slot)
                if slot.proc is None and now >= slot.due:
                    self._spawn(slot, fd)
            try:
                await asyncio.wait_for(self.stopping.wait(), POLL_INTERVAL)
            except TimeoutError:
                pass

    async def _stop_workers(self) -> None:
        running = [s.proc for s in self.slots if s.proc is not None and s.proc.poll() is None]
        for proc in running:
            proc.terminate()
        deadline = time.monotonic() + STOP_GRACE
        for proc in running:
            try:
                await asyncio.to_thread(proc.wait, max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.warning("worker pid %d did not stop in %.0fs; killing it", proc.pid, STOP_GRACE)
                proc.kill()
                proc.wait()


def run_region(config: RegionConfig, config_path: Path) -> int:
    return asyncio.run(Supervisor(config, config_path).run())
