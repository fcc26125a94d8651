"""The event names the power and status paths record are all in the event catalogue."""

from __future__ import annotations

from metalplane.region.services import events


def test_every_power_and_status_event_is_catalogued() -> None:
    named = [
        *events.POWER_DONE.values(),
        *events.POWER_FAILED.values(),
        *(request for request, _ in events.POWER_REQUESTS.values()),
        *events.STATUS_EVENTS.values(),
    ]
    assert [name for name in named if name not in events.TYPES] == []
    assert events.POWER_FAILED["query"] == "NODE_POWER_QUERY_FAILED"
    assert set(events.POWER_FAILED) == {"on", "off", "cycle", "query"}
