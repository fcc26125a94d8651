"""The pure decisions behind issue 12's trust rules: who gets a machine's enrolment
credential, which proxy headers are believed, what the image may report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import ip_address

import pytest

from metalplane.hostport import peer_ip
from metalplane.region.api.proxies import client_address, is_trusted, networks
from metalplane.region.errors import Invalid
from metalplane.region.services import reports
from metalplane.region.services.enrolment import Current, decide

NOW = datetime(2026, 1, 1, tzinfo=UTC)
MACHINE, OTHER = ip_address("10.0.0.50"), ip_address("10.0.0.66")


def current(address=MACHINE, used=False, expires=NOW + timedelta(minutes=5)) -> Current:
    return Current(address, expires, used)


@pytest.mark.parametrize(
    ("stored", "requester", "lease", "managed", "action"),
    [
        # Where metalplane serves DHCP, only the address leased to the machine's MAC gets it.
        (None, MACHINE, "this", True, "issue"),
        (None, OTHER, "none", True, "wait"),  # the lease may still be on its way; then refused
        (None, OTHER, "other", True, "refuse"),
        (current(), MACHINE, "this", True, "reuse"),  # a retried request: the same credential
        (current(used=True), MACHINE, "this", True, "issue"),  # the machine booted again
        (current(address=OTHER), MACHINE, "this", True, "issue"),  # the lease proves the new address
        (current(), OTHER, "other", True, "refuse"),
        # Where the region cannot know (external DHCP): the first address, and nobody after it.
        (None, OTHER, "none", False, "issue"),
        (current(), OTHER, "none", False, "refuse"),
        (current(), MACHINE, "none", False, "reuse"),
        (current(expires=NOW), OTHER, "none", False, "issue"),  # one never exchanged binds nothing once expired
        (current(used=True, expires=NOW), OTHER, "none", False, "refuse"),  # one exchanged binds the whole run
        (current(used=True, expires=NOW), MACHINE, "none", False, "issue"),
        # A rack that does not say who asked: one unbound credential, bound by its exchange.
        (None, None, "none", False, "issue"),
        (current(address=None), None, "none", False, "reuse"),
        (current(address=None), OTHER, "none", False, "reuse"),
    ],
)
def test_who_gets_the_enrolment_credential(stored, requester, lease, managed, action):
    assert decide(stored, requester, lease, managed, NOW).action == action


TRUSTED = networks(("127.0.0.0/8", "10.9.0.5/32"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.7", "1.2.3.4", "203.0.113.7"),  # not a proxy: its header is ignored
        ("10.9.0.5", "203.0.113.7", "203.0.113.7"),  # HAProxy says who the client is
        ("10.9.0.5", "1.2.3.4, 203.0.113.7", "203.0.113.7"),  # what the client wrote itself is left of it
        ("10.9.0.5", "203.0.113.7, 127.0.0.1", "203.0.113.7"),  # two proxies
        ("10.9.0.5", "not-an-ip", "10.9.0.5"),
        ("::ffff:10.9.0.5", "203.0.113.8", "203.0.113.8"),
        ("10.9.0.5", None, "10.9.0.5"),
    ],
)
def test_client_address_through_trusted_proxies(peer, forwarded, client):
    assert client_address(peer, forwarded, TRUSTED) == client


def test_trust_needs_an_address_in_the_list():
    assert is_trusted("127.0.0.1", TRUSTED) and not is_trusted("10.9.0.6", TRUSTED)
    assert not is_trusted(None, TRUSTED) and not is_trusted("x", TRUSTED) and not is_trusted("1.2.3.4", ())
    assert peer_ip("fe80::1%eth0") == ip_address("fe80::1") and peer_ip("::ffff:1.2.3.4") == ip_address("1.2.3.4")


@pytest.mark.parametrize(
    ("report", "field"),
    [
        ({"mac_addresses": ["52:54:00:00:00:01"] * 65}, "mac_addresses"),
        ({"mac_addresses": ["5" * 40]}, "mac_addresses"),
        ({"mac_addresses": ["52:54:00:00:00:01"], "architecture": "AMD64"}, "architecture"),
    ],
)
def test_enlistment_reports_are_bounded(report, field):
    with pytest.raises(Invalid) as caught:
        reports.enlistment(report)
    assert field in caught.value.errors


def test_enlistment_normalises_and_dedupes():
    found = reports.enlistment(
        {"mac_addresses": ["52-54-00-00-00-0A", "52:54:00:00:00:0a", "52:54:00:00:00:0b"], "architecture": "arm64"}
    )
    assert found.macs == ["52:54:00:00:00:0a", "52:54:00:00:00:0b"] and found.architecture == "arm64/generic"


def test_facts_outcome_and_script_values():
    facts = reports.facts({"cpu_count": 4, "memory_mib": 900, "memory_physical_mib": 1024, "unknown": [1] * 9999})
    assert (facts.cpu_count, facts.memory, "unknown" in facts.hardware) == (4, 1024, False)
    assert reports.outcome({"result": "ok"}).ok and not reports.outcome({"result": "ok", "failed_scripts": ["a"]}).ok
    assert not reports.outcome({}).ok
    assert reports.exit_status("143") == 143 and reports.exit_status(None) is None
    for bad in ("-2", "256", "1e3", "٣"):
        with pytest.raises(Invalid):
            reports.exit_status(bad)
    assert reports.script_output(b"a\x00b\xff") == "a\ufffdb\ufffd"
