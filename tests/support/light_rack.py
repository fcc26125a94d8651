"""Light racks: the real rack connection code without services, for tests and benchmarks.

Many of these run in one process, each a full RegionLinks speaking the real
protocol (TLS, secret proof, Register, SetTargets), just with no interfaces
and no DHCP/TFTP to run.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import httpx

from metalplane import __version__
from metalplane.rack.cluster_state import ClusterState
from metalplane.rack.region_links import RegionLinks
from metalplane.rpc.client import open_connection
from metalplane.rpc.endpoint import Endpoint
from metalplane.rpc.handshake import ClientHello, HandshakeRefused
from metalplane.rpc.messages import Register


def try_handshake(url: str, secret: str, version: str, system_id: str, hostname: str) -> str:
    """Connect once presenting `version`; return the region's refusal message."""

    async def go() -> str:
        async with httpx.AsyncClient() as client:
            endpoint = Endpoint.from_wire((await client.get(url.rstrip("/") + "/rpc/")).json()["endpoints"][0])
        me = ClientHello("rack", system_id, hostname, version, None)
        try:
            connection = await open_connection(endpoint.host, endpoint.port, secret, me, None, {})
        except HandshakeRefused as exc:
            return exc.message
        await connection.ws.close()
        raise AssertionError("the region accepted the connection")

    return asyncio.run(go())


class LightRack:
    def __init__(self, system_id: str, urls: list[str], secret: str, state_dir: Path | None = None):
        self.system_id = system_id
        self._own_dir = state_dir is None
        self.state = ClusterState(Path(state_dir or tempfile.mkdtemp(prefix="mp-light-")))
        self.links = RegionLinks(urls, secret, self.hello, self.state, handlers={}, registration=self.registration)
        self.task: asyncio.Task | None = None

    def hello(self) -> ClientHello:
        return ClientHello("rack", self.system_id, f"light-{self.system_id}", __version__, self.state.uuid)

    async def registration(self) -> Register:
        return Register(f"light-{self.system_id}", __version__, [], enrol=True)

    def start(self) -> None:
        self.task = asyncio.ensure_future(self.links.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):
                pass
        if self._own_dir:
            shutil.rmtree(self.state.data_dir, ignore_errors=True)

    def connected_to(self) -> set[tuple[str, int]]:
        return {(link.endpoint.region, link.endpoint.worker) for link in self.links.healthy_links()}
