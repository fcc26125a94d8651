"""What the region says of a rack's services once it has lost the rack, and which
status changes become events (ha.rack_health)."""

from __future__ import annotations

import time

import httpx

from metalplane import __version__
from metalplane.ha.rack_health import UNREACHABLE, status_changes, unreachable_services, with_rack_report
from metalplane.rack.cluster_state import ClusterState
from metalplane.rack.region_links import COMEBACK_SPREAD, Backoff, RegionLinks
from metalplane.rpc.endpoint import Endpoint
from metalplane.rpc.handshake import ClientHello
from metalplane.rpc.messages import SetTargets

NAMES = ("rackd", "dhcpd", "dhcpd6", "tftp", "http", "ntp_rack", "dns_rack")


def test_a_lost_rack_is_dead_and_its_services_unknown():
    lost = unreachable_services(NAMES)
    assert lost["rackd"] == ("dead", UNREACHABLE)
    assert {name: status for name, (status, _) in lost.items() if name != "rackd"} == dict.fromkeys(
        NAMES[1:], "unknown"
    )
    assert all(info == UNREACHABLE for _, info in lost.values())


def test_a_lost_racks_services_keep_what_they_last_reported_in_their_info():
    last = {
        "dhcpd": ("running", "ha-primary-rack2-hot-standby: pid 7, HA hot-standby, restarts 0"),
        "tftp": ("off", ""),
    }
    lost = unreachable_services(NAMES, last)
    assert lost["dhcpd"] == (
        "unknown",
        f"{UNREACHABLE}; last reported running; ha-primary-rack2-hot-standby: pid 7, HA hot-standby, restarts 0",
    )
    assert lost["tftp"] == ("unknown", f"{UNREACHABLE}; last reported off")
    assert lost["http"] == ("unknown", UNREACHABLE)  # nothing reported yet
    assert unreachable_services(NAMES, lost) == lost, "losing it again changes nothing"


def test_status_changes_ignore_info_and_start_from_unknown():
    before = {"tftp": ("running", "3 loaders"), "dhcpd": ("off", "")}
    after = {"tftp": ("running", "4 loaders"), "dhcpd": ("running", "serving"), "http": ("running", "")}
    assert status_changes(before, after) == [("dhcpd", "off", "running"), ("http", "unknown", "running")]
    assert status_changes(after, after) == []
    lost = unreachable_services(NAMES)
    assert ("tftp", "running", "unknown") in status_changes(after, lost)
    assert ("rackd", "unknown", "dead") in status_changes(after, lost)


def test_the_regions_dead_mark_is_stale_once_the_rack_is_connected():
    # Stored by the region when the rack was lost; the rack is back before its first report.
    assert with_rack_report(("running", ""), ("dead", UNREACHABLE)) == ("running", "")
    assert with_rack_report(("degraded", "connected to 1 of 2 region controllers"), ("dead", UNREACHABLE)) == (
        "degraded",
        "connected to 1 of 2 region controllers",
    )
    # The rack's own degraded report still counts.
    assert with_rack_report(("running", ""), ("degraded", "no region controller reachable"))[0] == "degraded"


def lonely_links(tmp_path) -> RegionLinks:
    """A rack's region links, not running (no region answers at port 1)."""
    state = ClusterState(tmp_path)

    async def registration() -> dict:
        return {}

    return RegionLinks(
        ["http://127.0.0.1:1/MAAS"],
        "secret",
        lambda: ClientHello("rack", "abc123", "rack", __version__, state.uuid),
        state,
        handlers={},
        registration=registration,
    )


async def test_the_rack_calls_itself_degraded_once_when_it_loses_every_region(tmp_path):
    links = lonely_links(tmp_path)
    calls = []
    links.on_isolated = lambda: calls.append(links.isolated)
    assert links.isolated  # before its first link
    links._isolated_since = None  # as once connected; now no healthy link is left
    links._note_isolation()
    links._note_isolation()
    assert calls == [True] and links.isolated and not links.connected_event.is_set()


async def test_a_region_answering_again_cuts_the_racks_long_backoff(tmp_path):
    endpoint = {"region": "r1", "worker": 0, "host": "127.0.0.1", "port": 5250}

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"endpoints": [endpoint]})

    links = lonely_links(tmp_path)
    links._http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    try:
        await links._discover()
        (key,) = links.known
        grown = Backoff(failures=6, retry_at=time.monotonic() + 16)  # after a long outage
        links.backoff[key] = grown
        await links._discover()
        now = time.monotonic()
        assert links.backoff[key] is not grown and links.backoff[key].retry_at <= now + COMEBACK_SPREAD
        soon = links.backoff[key]
        await links._discover()  # discovering again never puts the retry off
        assert links.backoff[key] is soon
    finally:
        await links._http.aclose()


async def test_a_target_pushed_by_the_region_is_tried_again_soon(tmp_path):
    links = lonely_links(tmp_path)
    target = Endpoint("r2", 0, "127.0.0.1", 5251)
    links.backoff[target.key] = Backoff(failures=6, retry_at=time.monotonic() + 16)
    await links._set_targets(SetTargets([target]))
    assert links.backoff[target.key].retry_at <= time.monotonic() + COMEBACK_SPREAD
    assert links.targets == [target] and target.key in links.known
