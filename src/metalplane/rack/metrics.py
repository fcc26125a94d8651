"""The rack's Prometheus metrics, on its HTTP boot port: `GET /metrics` (unauthenticated,
like MAAS's rackd metrics).

Two kinds. Events are counted where they happen (power actions, lease events reported,
image cache lookups): prometheus-client counters in this process's default registry.
State is read when scraped, from what the daemon keeps anyway (service board, Kea HA
states, region links, the TFTP and HTTP servers' own counters), by `RackCollector`:
nothing on the boot servers' hot paths.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

METRICS_PATH = "/metrics"
SERVICE_STATUSES = ("running", "degraded", "dead", "off", "unknown")

POWER_ACTIONS = Counter(
    "maas_rack_power_actions",
    "Power actions run against BMCs (retries inside one action count once)",
    ["action", "power_type"],
)
POWER_FAILURES = Counter(
    "maas_rack_power_failures",
    "Power actions that failed after their retries, by failure kind",
    ["action", "power_type", "kind"],
)
LEASES_REPORTED = Counter(
    "maas_rack_dhcp_leases_reported", "DHCP lease events reported to the region, by action", ["action"]
)
IMAGE_CACHE = Counter(
    "maas_rack_image_cache_requests",
    "Requests for image files: served from the cache (hit) or not (miss)",
    ["protocol", "result"],
)


def power_action(action: str, power_type: str) -> None:
    POWER_ACTIONS.labels(action=action, power_type=power_type).inc()


def power_failure(action: str, power_type: str, kind: str) -> None:
    POWER_FAILURES.labels(action=action, power_type=power_type, kind=kind).inc()


def leases_reported(events: Iterable[dict[str, Any]]) -> None:
    for event in events:
        LEASES_REPORTED.labels(action=str(event.get("action", ""))).inc()


def image_lookup(protocol: str, hit: bool) -> None:
    IMAGE_CACHE.labels(protocol=protocol, result="hit" if hit else "miss").inc()


# -- state, read at scrape time ---------------------------------------------------------------


@dataclass(frozen=True)
class HaVlan:
    """One VLAN served by one Kea instance, and that instance's HA state."""

    instance: str
    vlan_id: int
    vid: int
    role: str
    state: str


def service_states(services: Iterable[tuple[str, str]]) -> GaugeMetricFamily:
    """One series per service and possible status, 1 for the current one (Grafana's state
    timeline reads it as is)."""
    family = GaugeMetricFamily(
        "maas_rack_service_state", "Rack services' statuses (1: the current one)", labels=["service", "status"]
    )
    for name, status in services:
        for candidate in SERVICE_STATUSES:
            family.add_metric([name, candidate], 1.0 if status == candidate else 0.0)
    return family


def ha_states(vlans: Iterable[HaVlan]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "maas_rack_dhcp_ha_state",
        "Kea's state for each VLAN this rack serves DHCP on (1; state is Kea's HA state, or standalone)",
        labels=["instance", "vlan_id", "vid", "role", "state"],
    )
    for v in vlans:
        family.add_metric([v.instance, str(v.vlan_id), str(v.vid), v.role, v.state], 1.0)
    return family


def dhcp_vlans(dhcp: Any) -> list[HaVlan]:
    """From a `DhcpService`: its running instances' VLANs with the HA state it last polled."""
    found: list[HaVlan] = []
    for name, proc in sorted(dhcp.instances.items()):
        plan = dhcp.plans.get(name)
        if plan is None:
            continue
        state = "standalone" if plan.role == "standalone" else (proc.ha_state or "unknown")
        found.extend(HaVlan(name, v.vlan_id, v.vid, plan.role, state) for v in plan.vlans)
    return found


class RackCollector(Collector):
    """The rack daemon's state as metric families (`daemon`: a RackDaemon)."""

    def __init__(self, daemon: Any):
        self.daemon = daemon

    def collect(self) -> Iterator[Any]:
        d = self.daemon
        yield service_states((s.name, s.status) for s in d.services.snapshot())
        yield ha_states(dhcp_vlans(d.dhcp))
        links = GaugeMetricFamily(
            "maas_rack_region_links", "RPC connections to region workers (1: healthy)", labels=["region", "worker"]
        )
        for link in list(d.links.links.values()):
            links.add_metric([link.endpoint.region, str(link.endpoint.worker)], 1.0 if link.healthy else 0.0)
        yield links
        tftp, http = d.boot.tftp.stats, d.boot.http.server.stats
        yield CounterMetricFamily(
            "maas_rack_tftp_bytes_sent", "Bytes of completed TFTP transfers", value=tftp.bytes_sent
        )
        transfers = CounterMetricFamily("maas_rack_tftp_transfers", "TFTP transfers by result", labels=["result"])
        transfers.add_metric(["completed"], tftp.completed)
        transfers.add_metric(["failed"], tftp.failed)
        yield transfers
        yield CounterMetricFamily(
            "maas_rack_http_bytes_sent", "File bytes the HTTP boot server sent (sendfile)", value=http.body_bytes
        )
        responses = CounterMetricFamily(
            "maas_rack_http_responses", "HTTP boot server responses by status", labels=["status"]
        )
        for status, count in sorted(http.responses.items()):
            responses.add_metric([str(status)], count)
        yield responses
        yield from admission_families(
            {"http": d.boot.http.server.admission, "tftp": d.boot.tftp.admission, "boot_config": d.boot.rpc}
        )


def admission_families(gates: dict[str, Any]) -> Iterator[Any]:
    """Boot-storm admission control (`ha.admission.Admission` per kind of work)."""
    active = GaugeMetricFamily(
        "maas_rack_boot_admission_active", "Admitted heavy boot work in progress", labels=["kind"]
    )
    waiting = GaugeMetricFamily("maas_rack_boot_admission_waiting", "Boot work held in line now", labels=["kind"])
    held = CounterMetricFamily(
        "maas_rack_boot_admission_held", "Boot work that had to wait in line since start", labels=["kind"]
    )
    expired = CounterMetricFamily(
        "maas_rack_boot_admission_expired", "Held boot work dropped or sent away to retry", labels=["kind"]
    )
    wait = GaugeMetricFamily(
        "maas_rack_boot_admission_wait_seconds", "Recent waits in line, by quantile", labels=["kind", "quantile"]
    )
    for kind, gate in gates.items():
        active.add_metric([kind], len(gate))
        waiting.add_metric([kind], gate.waiting)
        held.add_metric([kind], gate.held)
        expired.add_metric([kind], gate.expired_count)
        for q in (0.5, 0.99):
            wait.add_metric([kind, str(q)], gate.percentile(q))
    yield from (active, waiting, held, expired, wait)


def exposition(daemon: Any) -> tuple[bytes, str]:
    """The counters of this process and the daemon's state, in Prometheus's text format."""
    state = CollectorRegistry(auto_describe=False)
    state.register(RackCollector(daemon))
    return generate_latest(REGISTRY) + generate_latest(state), CONTENT_TYPE_LATEST
