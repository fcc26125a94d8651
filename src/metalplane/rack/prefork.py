"""Standalone rack servers (`python -m metalplane.rack.tftp`, `.rack.http`): N forked
workers, each with its own SO_REUSEPORT socket on one port, on uvloop when present."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from metalplane.lifetimes import die_with_parent
from metalplane.rack.limits import current_budget

#: serve(sock, announce) -> the coroutine that serves on `sock`; `announce` only in the first process
Serve = Callable[[socket.socket, bool], Coroutine[Any, Any, None]]


def run(coro: Coroutine[Any, Any, None], loop_name: str) -> None:
    if loop_name == "uvloop":
        try:
            import uvloop
        except ImportError:
            pass  # the standard loop, below
        else:
            uvloop.run(coro)
            return
    asyncio.run(coro)


def serve_in_workers(
    workers: int, host: str, port: int, listen: Callable[..., socket.socket], serve: Serve, loop_name: str
) -> int:
    """Serve in this process and `workers - 1` forked ones; stops the forked ones (by PID) at the end."""
    sock = listen(host, port, reuse_port=workers > 1)
    port = sock.getsockname()[1]  # when asked for port 0, the workers join the one we got
    children = []
    for _ in range(workers - 1):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                die_with_parent()
                sock.close()
                run(serve(listen(host, port, reuse_port=True), False), loop_name)
            except BaseException:
                code = 1
            os._exit(code)
        children.append(pid)
    try:
        run(serve(sock, True), loop_name)
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
    return 0


def log_to_stderr(debug: bool) -> None:
    """The servers' log lines, with the worker's PID."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(process)d %(name)s [%(levelname)s] %(message)s",
    )


class StartedServer(Protocol):
    stats: Any

    @property
    def address(self) -> tuple[str, int]: ...

    def close(self) -> None: ...

    async def serve_forever(self) -> None: ...


async def serve_until_signalled(
    server: StartedServer, log: logging.Logger, name: str, limits: str, announce: bool
) -> None:
    """Serve a started server until SIGINT or SIGTERM. The announcing (first) process logs its
    `limits` and prints "ready HOST PORT" on stdout; every process logs its stats at the end."""
    if announce:
        log.info("limits: %s (per process; open-files limit %d)", limits, current_budget().nofile)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.close)
    if announce:
        print(f"ready {server.address[0]} {server.address[1]}", flush=True)
    await server.serve_forever()
    log.info("%s stopped (pid %d): %s", name, os.getpid(), server.stats)
