"""`/MAAS/metrics` on a real region (supervisor + 2 workers): anonymous, and counting API
requests by handler, op and status across every worker, a killed one included."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import RunningRegion
from tests.support.processes import wait_until

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(region: RunningRegion) -> Samples:
    """An anonymous scrape (no Authorization header at all), as Prometheus does it."""
    response = httpx.get(region.url + "metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def requests_counted(samples: Samples, handler: str, method: str, status: int, op: str = "") -> float:
    labels = frozenset({"handler": handler, "method": method, "op": op, "status": str(status)}.items())
    return samples.get(("maas_http_request_latency_count", labels), 0.0)


def test_metrics_answer_without_auth_and_count_requests_by_handler_op_and_status(region: RunningRegion):
    before = scrape(region)
    with region.api() as api:
        for _ in range(5):  # fresh connections land on either worker
            assert api.get("machines/").status_code == 200
        assert api.get("machines/", op="describe_power_types").status_code == 200
        assert api.get("machines/xyzzy9/").status_code == 404
        assert api.get("machines/", op="no-such-op-" + "x" * 40).status_code == 400
    with region.api(api_key="") as anonymous:
        assert anonymous.get("machines/").status_code == 401

    after = scrape(region)

    def grew(handler: str, method: str, status: int, op: str = "") -> float:
        return requests_counted(after, handler, method, status, op) - requests_counted(
            before, handler, method, status, op
        )

    assert grew("MachinesHandler", "GET", 200) == 5
    assert grew("MachineHandler", "GET", 404) == 1
    assert grew("MachinesHandler", "GET", 401) == 1
    # A client's unknown op never becomes a label value; a known one does.
    assert not any("no-such-op" in str(labels) for _, labels in after)
    assert grew("MachinesHandler", "GET", 400) == 1
    assert grew("MachinesHandler", "GET", 200, op="describe_power_types") == 1
    # Latency is a histogram: buckets, a sum, a count.
    buckets = [
        v
        for (name, labels), v in after.items()
        if name == "maas_http_request_latency_bucket"
        and dict(labels)["handler"] == "MachinesHandler"
        and dict(labels)["status"] == "200"
    ]
    assert buckets and max(buckets) >= 5
    # Credentials are not looked at: a wrong key does not stop a scrape.
    bogus = httpx.get(region.url + "metrics", headers={"Authorization": 'OAuth oauth_token="nope"'}, timeout=10)
    assert bogus.status_code == 200 and "maas_http_request_latency" in bogus.text
    # The scrape itself is a request like any other.
    assert requests_counted(after, "prometheus_metrics", "GET", 200) >= 1


def test_a_killed_workers_requests_stay_counted(region: RunningRegion):
    with region.api() as api:
        for _ in range(6):
            assert api.get("zones/").status_code == 200
    counted = requests_counted(scrape(region), "ZonesHandler", "GET", 200)
    assert counted == 6
    # The requests went over one keep-alive connection: kill the worker that served them
    # (the one whose samples file exists).
    metrics_dir = Path(region.config.data_dir) / "metrics"
    served = {int(p.stem.rsplit("_", 1)[1]) for p in metrics_dir.glob("histogram_*.db")}
    victim = next(pid for pid in region.process.worker_pids() if pid in served)
    os.kill(victim, signal.SIGKILL)
    wait_until(
        lambda: victim not in region.process.worker_pids() and len(region.process.worker_pids()) == 2,
        15,
        what="the worker restarted",
    )
    # Its samples live in the region's metrics dir (files named by pid), not in the dead process.
    assert requests_counted(scrape(region), "ZonesHandler", "GET", 200) == 6
    assert any(p.name.endswith(f"_{victim}.db") for p in metrics_dir.iterdir())
