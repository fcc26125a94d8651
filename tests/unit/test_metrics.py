"""The metrics modules' decisions: bounded request labels, the multiprocess directory's
bookkeeping, and the rack's state families."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from metalplane.rack import metrics as rack_metrics
from metalplane.region import metrics as region_metrics
from metalplane.region.api.framework import Handler


def _handler() -> Handler:
    h = Handler("ThingsHandler", "things/", "Things.")

    @h.action("GET", "census")
    async def census(ctx):  # pragma: no cover - never called
        return None

    return h


def _endpoint(handler: Handler):
    async def endpoint(request):  # pragma: no cover - never called
        return None

    endpoint.__name__ = handler.name
    endpoint.handler = handler
    return endpoint


def test_request_labels_name_the_handler_and_only_its_known_ops():
    endpoint = _endpoint(_handler())
    known = {"endpoint": endpoint, "method": "GET", "query_string": b"op=census&x=1"}
    assert region_metrics.request_labels(known, 200) == {
        "handler": "ThingsHandler",
        "method": "GET",
        "op": "census",
        "status": "200",
    }
    for query in (b"op=" + b"z" * 300, b"op=census%00", b"op=%E2%98%83"):
        labels = region_metrics.request_labels({**known, "query_string": query}, 400)
        assert labels["op"] == "" and labels["status"] == "400"
    # A known op under another method is not that method's op.
    assert region_metrics.request_labels({**known, "method": "POST"}, 400)["op"] == ""


def test_request_labels_without_a_route():
    labels = region_metrics.request_labels({"method": "GET", "query_string": b"op=census"}, 404)
    assert labels == {"handler": "none", "method": "GET", "op": "", "status": "404"}


def test_the_supervisor_empties_the_dir_and_drops_only_a_dead_workers_live_gauges(tmp_path: Path):
    path = region_metrics.metrics_dir(tmp_path)
    path.mkdir()
    (path / "counter_11.db").write_bytes(b"old run")
    (path / "README").write_text("not ours")
    region_metrics.reset_dir(path)
    assert sorted(p.name for p in path.iterdir()) == ["README"]
    for name in ("counter_12.db", "histogram_12.db", "gauge_livesum_12.db", "gauge_livesum_13.db"):
        (path / name).write_bytes(b"")
    region_metrics.worker_gone(path, 12)
    assert sorted(p.name for p in path.glob("*.db")) == ["counter_12.db", "gauge_livesum_13.db", "histogram_12.db"]
    assert region_metrics.worker_env(path)[region_metrics.MULTIPROC_ENV] == str(path)


def test_service_states_mark_the_current_status_of_each_service():
    family = rack_metrics.service_states([("dhcpd", "degraded"), ("tftp", "running")])
    ones = {(s.labels["service"], s.labels["status"]) for s in family.samples if s.value == 1}
    assert ones == {("dhcpd", "degraded"), ("tftp", "running")}
    assert len(family.samples) == 2 * len(rack_metrics.SERVICE_STATUSES)


@dataclass
class _Vlan:
    vlan_id: int
    vid: int


@dataclass
class _Plan:
    role: str
    vlans: tuple[_Vlan, ...]


@dataclass
class _Proc:
    ha_state: str | None


@dataclass
class _Dhcp:
    instances: dict[str, _Proc] = field(default_factory=dict)
    plans: dict[str, _Plan] = field(default_factory=dict)


def test_ha_state_per_vlan_of_each_instance():
    dhcp = _Dhcp(
        instances={
            "ha-primary-rack2": _Proc("hot-standby"),
            "standalone": _Proc(None),
            "new": _Proc(None),
            "orphan": _Proc("x"),
        },
        plans={
            "ha-primary-rack2": _Plan("primary", (_Vlan(5001, 0), _Vlan(5002, 20))),
            "standalone": _Plan("standalone", (_Vlan(5003, 30),)),
            "new": _Plan("secondary", (_Vlan(5004, 40),)),
        },
    )
    assert rack_metrics.dhcp_vlans(dhcp) == [
        rack_metrics.HaVlan("ha-primary-rack2", 5001, 0, "primary", "hot-standby"),
        rack_metrics.HaVlan("ha-primary-rack2", 5002, 20, "primary", "hot-standby"),
        rack_metrics.HaVlan("new", 5004, 40, "secondary", "unknown"),  # not polled yet
        rack_metrics.HaVlan("standalone", 5003, 30, "standalone", "standalone"),
    ]
    family = rack_metrics.ha_states(rack_metrics.dhcp_vlans(dhcp))
    assert [s.labels["vid"] for s in family.samples] == ["0", "20", "40", "30"]
