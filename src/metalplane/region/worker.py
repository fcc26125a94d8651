"""One region worker process: the API on the supervisor's socket, plus its heartbeat."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from metalplane.config.region import RegionConfig, load_region_config
from metalplane.lifetimes import die_with_parent
from metalplane.logs import never_log, setup_logging
from metalplane.region.api.access_log import AccessLog
from metalplane.region.api.app import build_app
from metalplane.region.api.handlers import all_handlers
from metalplane.region.api.routes import region_routes
from metalplane.region.db.engine import async_engine
from metalplane.region.rpc_server import RegionRpcServer, advertised_host
from metalplane.region.services import controllers
from metalplane.region.whole_responses import WholeResponseProtocol

log = logging.getLogger("metalplane.region.worker")


class Worker:
    def __init__(self, config: RegionConfig, index: int, region_id: int):
        self.config = config
        self.index = index
        self.region_id = region_id
        self.pid = os.getpid()
        self.db = async_engine(config, f"metalplane-worker-{index}")
        self.rpc: RegionRpcServer | None = None

    @property
    def rpc_port(self) -> int:
        return self.config.rpc_port + self.index

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(controllers.HEARTBEAT_INTERVAL)
            try:
                async with self.db.begin() as conn:
                    if not await controllers.heartbeat_process(conn, self.region_id, self.index, self.pid):
                        # Our row was reaped (we looked dead): come back, with our racks.
                        await self._register(conn)
                        if self.rpc is not None:
                            await self.rpc.attach(conn)
                            await self.rpc.rebalance()
            except Exception as exc:  # database away: keep serving, retry next beat
                log.warning("worker %d heartbeat failed: %s", self.index, exc)

    async def _register(self, conn) -> None:
        await controllers.register_process(
            conn,
            self.region_id,
            self.index,
            self.pid,
            advertised_host(self.config),
            self.rpc_port,
            self.config.database_pool_size,
        )

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        async with self.db.begin() as conn:
            await self._register(conn)
            system_id = await controllers.system_id_of(conn, self.region_id)
        self.rpc = RegionRpcServer(self.config, self.db, self.region_id, system_id, self.index)
        await self.rpc.start()
        app.state.rpc = self.rpc
        app.state.changes = self.rpc.changes
        heartbeat = asyncio.create_task(self._heartbeat())
        log.info("worker %d (pid %d) ready; RPC on port %d", self.index, self.pid, self.rpc_port)
        try:
            yield
        finally:
            heartbeat.cancel()
            await self.rpc.stop()
            with contextlib.suppress(Exception):
                async with self.db.begin() as conn:
                    await controllers.remove_process(conn, self.region_id, self.index, self.pid)
            await self.db.dispose()

    def app(self) -> Starlette:
        return build_app(
            self.db,
            all_handlers(),
            extra_routes=region_routes(),
            state={"config": self.config, "region_id": self.region_id, "worker_index": self.index},
            lifespan=self.lifespan,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="metalplane-region-worker")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--region-id", type=int, required=True)
    args = parser.parse_args(argv)
    die_with_parent()
    config = load_region_config(args.config)
    setup_logging(config.debug, prefix=f"[worker {args.index}] ")
    never_log(config.database_pass)
    worker = Worker(config, args.index, args.region_id)
    sock = socket.socket(fileno=args.fd)
    app = worker.app()
    server = uvicorn.Server(
        uvicorn.Config(
            AccessLog(app),
            http=WholeResponseProtocol,
            lifespan="on",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=5,
            # uvicorn would believe X-Forwarded-* from 127.0.0.1 by itself; the region
            # decides whom to believe (trusted_proxies, region/api/proxies.py).
            proxy_headers=False,
        )
    )
    # Long-lived responses (the UI's event streams) end themselves when the worker stops.
    app.state.stopping = lambda: server.should_exit
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
