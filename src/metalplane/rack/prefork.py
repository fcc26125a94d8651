"""Standalone rack servers (`python -m metalplane.rack.tftp`, `.rack.http`): N forked
workers, each with its own SO_REUSEPORT socket on one port, on uvloop when present."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Callable, Coroutine
from typing import Any

from metalplane.lifetimes import die_with_parent

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
