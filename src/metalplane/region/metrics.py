"""The region's Prometheus metrics, served unauthenticated at `/MAAS/metrics` (as MAAS does).

A region is several worker processes behind one socket: a scrape lands on any one of
them. prometheus-client's multiprocess mode makes every worker's answer the whole
region's: each worker writes its samples to files in `DATA/metrics/` (the supervisor
passes PROMETHEUS_MULTIPROC_DIR to its workers, empties the directory when it starts
and marks a dead worker's live gauges gone), and a scrape sums the files.

Names follow MAAS where MAAS has one (`maas_http_request_latency`); the rest are
metalplane's, prefixed `maas_region_` so one dashboard covers both products' habits.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PATH = "/MAAS/metrics"

REQUEST_LATENCY = Histogram(
    "maas_http_request_latency",
    "HTTP request latency (seconds), by handler, method, op and status",
    ["handler", "method", "op", "status"],
)
RPC_CONNECTIONS = Gauge(
    "maas_region_rpc_connections",
    "Rack RPC connections held by each region worker",
    ["worker"],
    multiprocess_mode="livesum",
)
RACK_JOINS = Counter(
    "maas_region_rack_joins",
    "Racks joining a region worker, by how they got in (region.joins): at once, after a wait in line, refused",
    ["worker", "outcome"],
)
RACK_JOIN_WAIT = Histogram(
    "maas_region_rack_join_wait_seconds",
    "How long racks waited in line to join a region worker (about 0 when let in at once)",
    ["worker"],
    buckets=(0.01, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
)
LEASE_EVENTS = Counter("maas_region_lease_events", "DHCP lease events received from racks, by action", ["action"])
POWER_ACTIONS = Counter(
    "maas_region_power_actions",
    "Power actions the region ran through a rack, by action and result",
    ["action", "result"],
)


# -- the supervisor's side ----------------------------------------------------------------


def metrics_dir(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / "metrics"


def reset_dir(path: Path) -> None:
    """At supervisor start: samples of a previous run are gone (counters restart at 0,
    which Prometheus reads as a counter reset)."""
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.db"):
        old.unlink(missing_ok=True)


def worker_env(path: Path) -> dict[str, str]:
    return {**os.environ, MULTIPROC_ENV: str(path)}


def worker_gone(path: Path, pid: int) -> None:
    """A worker exited: its live gauges (its RPC connections) stop counting; its counters stay."""
    multiprocess.mark_process_dead(pid, str(path))


# -- what workers record ------------------------------------------------------------------


def request_labels(scope: dict[str, Any], status: int) -> dict[str, str]:
    """Bounded labels for one API request: the handler that answered (or "none" when no
    route matched) and `op` only when that handler knows it (clients choose the rest)."""
    endpoint = scope.get("endpoint")
    handler = getattr(endpoint, "__name__", "none") if endpoint is not None else "none"
    op = ""
    known = getattr(endpoint, "handler", None)  # MAAS handlers (region.api.app.endpoint_for)
    if known is not None:
        ops = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("op")
        if ops and known.find(scope["method"], ops[0]) is not None:
            op = ops[0]
    return {"handler": handler, "method": scope["method"], "op": op, "status": str(status)}


def observe_request(scope: dict[str, Any], status: int, seconds: float) -> None:
    REQUEST_LATENCY.labels(**request_labels(scope, status)).observe(seconds)


def rpc_connections(worker: int, count: int) -> None:
    RPC_CONNECTIONS.labels(worker=str(worker)).set(count)


def rack_join(worker: int, outcome: str, waited: float) -> None:
    RACK_JOINS.labels(worker=str(worker), outcome=outcome.replace(" ", "_")).inc()
    RACK_JOIN_WAIT.labels(worker=str(worker)).observe(waited)


def lease_events(actions: list[str]) -> None:
    for action in actions:
        LEASE_EVENTS.labels(action=action).inc()


def power_action(action: str, result: str) -> None:
    POWER_ACTIONS.labels(action=action, result=result).inc()


# -- the scrape -----------------------------------------------------------------------------


def exposition() -> tuple[bytes, str]:
    """The text format: every worker's samples in multiprocess mode, this process's otherwise."""
    path = os.environ.get(MULTIPROC_ENV)
    if not path:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path)
    return generate_latest(registry), CONTENT_TYPE_LATEST
