"""The web UI's pure decisions: redirects, CSRF comparison, live topics, commands, statuses."""

from __future__ import annotations

import asyncio
import shlex
from datetime import UTC, datetime, timedelta

import pytest

from metalplane.region.changes import EVERYTHING, ChangeHub
from metalplane.region.services import settings
from metalplane.region.services.controller_overview import overall_status, regiond_status, version_check
from metalplane.region.services.racks import ServiceStatus as Service
from metalplane.region.services.sessions import key_hash, needs_extension
from metalplane.region.ui.guard import HOME, csrf_matches, safe_next
from metalplane.region.ui.live import TOPICS, topics_for
from metalplane.region.ui.pages.controllers import page_count, rack_commands
from metalplane.region.ui.pages.settings import OTHER, SECTIONS, as_text, choices_of, sections


@pytest.mark.parametrize(
    "target, expected",
    [
        ("/MAAS/r/settings/", "/MAAS/r/settings/"),
        ("/MAAS/r/controllers/?page=2", "/MAAS/r/controllers/?page=2"),
        ("https://evil.example/", HOME),
        ("//evil.example/MAAS/", HOME),
        ("/MAAS//evil.example", HOME),
        ("/MAAS/\\evil", HOME),
        ("/elsewhere/", HOME),
        ("", HOME),
        (None, HOME),
    ],
)
def test_after_login_only_paths_on_this_site_are_followed(target, expected):
    assert safe_next(target) == expected


def test_csrf_tokens_must_match_exactly():
    assert csrf_matches("abc", "abc")
    assert not csrf_matches("abc", "abd")
    assert not csrf_matches("abc", "")
    assert not csrf_matches("abc", None)


def test_each_table_refreshes_the_parts_drawn_from_it():
    assert topics_for({"rpc_connections"}) == {"controllers", "subnets", "images"}
    assert topics_for({"config"}) == {"settings", "subnets"}, "dhcp_ha_mode shows on a VLAN's page"
    assert topics_for({"nodes.machine"}) == {"machines"}, "a machine's change does not redraw the controllers"
    assert topics_for({"script_results"}) == {"machines"}
    assert topics_for({"service_status"}) == {"controllers", "subnets", "images"}, "dhcpd and the image cache"
    assert topics_for({"boot_resource_imports"}) == {"images"}
    assert topics_for({"ipranges"}) == {"subnets"}
    assert topics_for({EVERYTHING}) == set(TOPICS)


def test_the_hub_coalesces_changes_per_subscriber():
    async def scenario():
        hub = ChangeHub()
        first, second = hub.subscribe(), hub.subscribe()
        hub.publish("vlans")
        hub.publish("vlans")
        hub.publish("config")
        assert await first.wait(0.1) == {"vlans", "config"}
        assert await first.wait(0.01) == set()
        second.close()
        assert hub.subscribers == 1
        waiter = asyncio.create_task(first.wait(5))
        await asyncio.sleep(0)
        hub.publish("bmcs")
        assert await waiter == {"bmcs"}

    asyncio.run(scenario())


def test_rack_commands_name_every_region_and_quote_what_needs_it():
    commands = rack_commands(["http://10.0.0.1:5240/MAAS", "http://10.0.0.2:5240/MAAS"], "s3cr3t")
    assert commands.register == (
        "metalplane rack register --url http://10.0.0.1:5240/MAAS --url http://10.0.0.2:5240/MAAS --secret s3cr3t"
    )
    assert commands.init == "metalplane init --mode rack --maas-url http://10.0.0.1:5240/MAAS --secret s3cr3t"
    odd = rack_commands(["http://h/MAAS?a=1&b=2"], "x y")
    assert shlex.split(odd.register)[-3:] == ["http://h/MAAS?a=1&b=2", "--secret", "x y"]


def test_page_count():
    assert [page_count(n, 50) for n in (0, 1, 50, 51, 1000)] == [1, 1, 1, 2, 20]


def test_a_controller_is_as_healthy_as_its_worst_running_service():
    assert overall_status([Service("rackd", "running"), Service("dhcpd", "off")]) == "running"
    assert overall_status([Service("rackd", "running"), Service("tftp", "degraded")]) == "degraded"
    assert overall_status([Service("rackd", "dead"), Service("tftp", "running")]) == "dead"
    assert overall_status([Service("dhcpd", "off")]) == "unknown"
    assert overall_status([Service("http", "unknown"), Service("rackd", "running")]) == "unknown"


def test_regiond_status_counts_live_workers():
    assert regiond_status(4, 4) == Service("regiond", "running", "4 workers live")
    assert regiond_status(1, 4) == Service("regiond", "degraded", "1 of 4 workers live")
    assert regiond_status(0, 4).status == "dead"


def test_version_check_follows_the_handshake_rule():
    assert version_check("1.2.3", "1.2.3") == (True, "1.2.3: the same as this region (1.2.3)")
    assert version_check("1.2.9", "1.2.3")[0] is True
    assert version_check("1.3.0", "1.2.3") == (False, "1.3.0: this region runs 1.2.3; major.minor must match")
    assert version_check("", "1.2.3") == (False, "unknown version")


def test_sessions_are_extended_once_half_their_length_is_used():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert not needs_extension(now + timedelta(seconds=600), now, 1000)
    assert needs_extension(now + timedelta(seconds=400), now, 1000)


def test_only_a_hash_of_the_session_key_is_stored():
    assert key_hash("abc") != "abc" and len(key_hash("abc")) == 64


def test_settings_show_lists_as_set_config_takes_them():
    assert as_text(["10.0.0.1", "ntp.example.com"]) == "10.0.0.1 ntp.example.com"
    assert as_text(600) == "600" and as_text(None) == ""
    assert as_text(True) == "true" and as_text(False) == "false", "as MAAS writes them, and boolean() reads them"
    assert settings.boolean(as_text(False)) is False and settings.boolean(as_text(True)) is True


def test_every_setting_is_on_the_settings_page_once_in_its_section():
    named = [n for names in SECTIONS.values() for n in names]
    assert len(named) == len(set(named)) and set(named) <= set(settings.SETTINGS), "no name twice, none unknown"
    current = dict.fromkeys(settings.SETTINGS, "") | {"enable_http_proxy": "false"}
    shown = sections(current, {"maas_name": ["This field is required."]}, {})
    fields = [f for s in shown for f in s.fields]
    assert sorted(f.name for f in fields) == sorted(settings.SETTINGS)
    assert [s.title for s in shown][:2] == ["General", "Security"] and shown[-1].title in (OTHER, "Monitoring")
    assert next(f for f in fields if f.name == "maas_name").errors == ["This field is required."]
    assert next(f for f in fields if f.name == "enable_http_proxy").choices == ("true", "false")


def test_a_select_keeps_the_current_value_and_offers_the_images():
    osystem = settings.SETTINGS["default_osystem"]
    assert choices_of(osystem, "ubuntu", []) is None, "no images: a text box (set-config's message says why)"
    assert choices_of(osystem, "ubuntu", ["centos", "ubuntu"]) == ("centos", "ubuntu")
    assert choices_of(osystem, "ubuntu", ["centos"]) == ("ubuntu", "centos"), "never changed unasked"
    assert choices_of(settings.SETTINGS["dhcp_ha_mode"], "hot-standby", []) == settings.HA_MODES
    assert choices_of(settings.SETTINGS["maas_name"], "x", []) is None


def test_a_region_that_never_ran_a_worker_gets_no_regiond_row_yet():
    from metalplane.region.services.controllers import _regiond_row

    assert _regiond_row(0, 4)({}) == {}  # being set up, not dead: no "unknown -> dead" event
    assert _regiond_row(0, 4)({"regiond": ("running", "4 workers live")})["regiond"][0] == "dead"
    assert _regiond_row(2, 4)({})["regiond"] == ("degraded", "2 of 4 workers live")
    assert _regiond_row(3, None)({})["regiond"] == ("running", "3 workers live")
