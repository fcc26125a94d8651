"""Memory stays bounded under unauthenticated floods (issue 12's acceptance): 8 x 64 MiB
RPC frames before the handshake and 200 MB anonymous request bodies are refused early,
and the region worker's resident memory grows by less than 50 MB.

The worker is a real `metalplane region run` child (one worker, so every connection
lands on it); its peak RSS is read from /proc/PID/status (VmHWM, reset through
/proc/PID/clear_refs before each flood). Measured (one run, shared 2-CPU box): the
8 RPC floods got 1 MiB each into the kernel's buffers before the worker closed them,
peak +3 MB; the metadata bodies +0 MB (413 from Content-Length, or after 64 KiB
chunked); an anonymous API POST of 200 MB grew the worker by 400 MB before
h-apicore's cap (and answered 500).
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from tests.conftest import start_region
from tests.support.databases import world_traversable_tempdir
from tests.support.floods import flood, post_flood, worker_endpoints

MB = 1000 * 1000
MiB = 1024 * 1024
LIMIT = 50 * MB


def one_worker_region(databases, name: str):
    root = world_traversable_tempdir("mp-memory-")
    process = start_region(databases, root, name, num_workers=1)
    (pid,) = process.worker_pids()
    yield process, pid
    process.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def worker(databases):
    yield from one_worker_region(databases, "region-mem")


@pytest.fixture(scope="module")
def api_worker(databases):
    """A worker of its own: memory a failed cap lets in stays with the process (the
    allocator keeps it) and would hide the growth of any flood measured after it."""
    yield from one_worker_region(databases, "region-mem-api")


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def peak_growth(pid: int, attack) -> int:
    """Bytes the worker's peak RSS rose above its RSS before `attack` ran."""
    before = status_kib(pid, "VmRSS")
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # peak RSS := current RSS
    attack()
    return (status_kib(pid, "VmHWM") - before) * 1024


def warm_up(process, pid: int) -> None:
    """Let the worker load what any first request loads, so only the flood is measured."""
    endpoint = worker_endpoints(process.url)[0]
    asyncio.run(flood(endpoint.host, endpoint.port, 1 * MiB, connections=1))
    asyncio.run(post_flood("127.0.0.1", process.config.port, "/MAAS/metadata/enlist", 1 * MiB, connections=1))


def test_pre_auth_rpc_frames_are_refused_and_memory_stays_bounded(worker):
    process, pid = worker
    warm_up(process, pid)
    endpoint = worker_endpoints(process.url)[0]
    results: list = []
    growth = peak_growth(
        pid, lambda: results.extend(asyncio.run(flood(endpoint.host, endpoint.port, 64 * MiB, connections=8)))
    )
    assert all(r.closed for r in results), results
    assert sum(r.sent for r in results) < 8 * 16 * MiB, results
    assert growth < LIMIT, f"worker peak RSS grew {growth / MB:.1f} MB"
    assert process.alive()


def assert_body_refused_within_bounds(process, pid: int, path: str, chunked: bool) -> None:
    """One anonymous 200 MB POST to `path`: answered 413 before it is all sent, and the
    worker's peak RSS rises less than LIMIT."""
    warm_up(process, pid)
    results: list = []
    growth = peak_growth(
        pid,
        lambda: results.extend(
            asyncio.run(post_flood("127.0.0.1", process.config.port, path, 200 * MB, connections=1, chunked=chunked))
        ),
    )
    (result,) = results
    assert result.status == 413 and result.closed, result
    assert growth < LIMIT, f"worker peak RSS grew {growth / MB:.1f} MB"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_anonymous_metadata_bodies_are_refused_and_memory_stays_bounded(worker, chunked):
    assert_body_refused_within_bounds(*worker, "/MAAS/metadata/enlist", chunked)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_anonymous_api_bodies_are_refused_and_memory_stays_bounded(api_worker, chunked):
    assert_body_refused_within_bounds(*api_worker, "/MAAS/api/2.0/machines/", chunked)
