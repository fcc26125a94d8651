"""Configure DHCP from the VLAN page in a network-namespace lab: a region and two racks
on one VLAN with real Kea, a real DHCP client (udhcpc), chromium on the region's host.
Every page is checked with axe-core."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy import select

from metalplane.region.bootstrap import run_db
from metalplane.region.db.tables import nodes, service_status
from tests.browser.support import (
    ADMIN,
    USER,
    USER_PASSWORD,
    DhcpLab,
    UiUser,
    check_accessibility,
    in_thread,
    launch_in,
)
from tests.support.processes import wait_until

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def dhcp_lab(databases) -> Iterator[DhcpLab]:
    lab = DhcpLab(databases)
    yield lab
    lab.close()


@pytest.fixture(scope="module")
def lab_browser(dhcp_lab):
    with sync_playwright() as playwright:
        chromium = launch_in(playwright, dhcp_lab.region, dhcp_lab.lab.workdir)
        yield chromium
        chromium.close()


@pytest.fixture
def admin(lab_browser, dhcp_lab) -> Iterator[UiUser]:
    person = UiUser(lab_browser, dhcp_lab.base)
    person.login(ADMIN, dhcp_lab.ADMIN_PASSWORD)
    yield person
    person.close()


def vlan_state(lab: DhcpLab) -> dict:
    subnet = next(s for s in lab.stack.api("subnets", "read") if s["cidr"] == lab.CIDR)
    vlan = lab.stack.api("vlan", "read", str(subnet["vlan"]["fabric_id"]), str(subnet["vlan"]["vid"]))
    ranges = [r for r in lab.stack.api("ipranges", "read") if r["subnet"]["cidr"] == lab.CIDR]
    return {
        "dhcp_on": vlan["dhcp_on"],
        "primary": vlan["primary_rack"],
        "secondary": vlan["secondary_rack"],
        "ranges": [(r["type"], r["start_ip"], r["end_ip"]) for r in ranges],
    }


def open_dialog(person: UiUser, lab: DhcpLab) -> None:
    page = person.page
    person.open("/MAAS/r/subnets/")
    with page.expect_navigation():
        page.click(f"tr[data-cidr='{lab.CIDR}'] th a")
    check_accessibility(page)
    with page.expect_navigation():
        page.click("#configure-dhcp")
    page.wait_for_selector("#dhcp-dialog")
    check_accessibility(page)


def dhcpd_committed(lab: DhcpLab, rack: str) -> tuple[str, str, float]:
    """(status, info, when it was committed as a Unix time) of the rack's dhcpd row."""
    config = lab.stack.regions["region"][1]

    async def read(conn):
        row = (
            await conn.execute(
                select(service_status.c.status, service_status.c.status_info, service_status.c.updated)
                .join(nodes, nodes.c.id == service_status.c.node_id)
                .where(nodes.c.hostname == rack, service_status.c.name == "dhcpd")
            )
        ).one()
        return row.status, row.status_info, row.updated.timestamp()

    return in_thread(run_db, config, read)


def test_a_non_admin_cannot_turn_dhcp_on_even_by_hand(lab_browser, dhcp_lab):
    alice = UiUser(lab_browser, dhcp_lab.base)
    try:
        alice.login(USER, USER_PASSWORD)
        alice.open("/MAAS/r/subnets/")
        vlan_href = alice.page.get_attribute(f"tr[data-cidr='{dhcp_lab.CIDR}'] th a", "href")
        alice.open(vlan_href)
        assert alice.page.locator("#configure-dhcp").count() == 0
        assert alice.open(vlan_href + "?dhcp=configure", check=False).status == 403
        token = alice.page.get_attribute("form.logout input[name=csrfmiddlewaretoken]", "value")
        # From the page itself: the browser is the one in the lab (Playwright's own request
        # client runs outside it).
        by_hand = alice.page.evaluate(
            """async ([url, form]) => {
            const answer = await fetch(url, {method: "POST", body: new URLSearchParams(form), redirect: "manual"});
            return [answer.status, await answer.text()];
        }""",
            [
                vlan_href + "dhcp/",
                {
                    "csrfmiddlewaretoken": token,
                    "primary_rack": dhcp_lab.system_id("rack1"),
                    "secondary_rack": "",
                    "dynamic_range": "new",
                    "start_ip": "10.61.0.100",
                    "end_ip": "10.61.0.150",
                },
            ],
        )
        assert by_hand[0] == 403 and "reserved for admin users" in by_hand[1]
        assert vlan_state(dhcp_lab) == {"dhcp_on": False, "primary": None, "secondary": None, "ranges": []}
    finally:
        alice.close()


@pytest.mark.timeout(300)
def test_configure_dhcp_turns_kea_ha_on_at_both_racks_and_a_client_gets_a_lease(admin, dhcp_lab):
    lab, page = dhcp_lab, admin.page
    rack1, rack2 = lab.system_id("rack1"), lab.system_id("rack2")
    open_dialog(admin, lab)
    # Only the two racks on this VLAN are offered (plus "none"); a new range is suggested.
    offered = page.locator("#id_secondary_rack option").evaluate_all("os => os.map(o => o.value)")
    assert sorted(offered) == sorted(["", rack1, rack2])
    assert page.input_value("#id_start_ip") == "10.61.0.191" and page.input_value("#id_end_ip") == "10.61.0.254"
    assert page.is_checked("#id_range_new")

    # Invalid: primary = secondary. The API's message beside the racks; nothing changes.
    page.select_option("#id_primary_rack", rack1)
    page.select_option("#id_secondary_rack", rack1)
    assert admin.submit("#submit-dhcp").status == 400
    assert page.inner_text("#error_racks") == "The primary and secondary rack must be different"
    assert page.get_attribute("#id_secondary_rack", "aria-invalid") == "true"
    # Invalid: no dynamic range. Beside the range choice; nothing changes.
    page.select_option("#id_secondary_rack", rack2)
    page.check("#id_range_none")
    assert admin.submit("#submit-dhcp").status == 400
    assert page.inner_text("#error_dynamic_range") == "dhcp can only be turned on when a dynamic IP range is defined."
    assert page.input_value("#id_secondary_rack") == rack2, "the choices are kept"
    assert vlan_state(lab) == {"dhcp_on": False, "primary": None, "secondary": None, "ranges": []}
    assert not lab.kea_pids("rack1") and not lab.kea_pids("rack2")

    # Valid: primary, secondary, the suggested new range.
    page.check("#id_range_new")
    admin.submit("#submit-dhcp")
    assert page.url.endswith("?done=on") and "DHCP is on" in page.inner_text("main")
    assert vlan_state(lab) == {
        "dhcp_on": True,
        "primary": rack1,
        "secondary": rack2,
        "ranges": [("dynamic", "10.61.0.191", "10.61.0.254")],
    }
    wait_until(lambda: lab.kea_pids("rack1") and lab.kea_pids("rack2"), 30, what="Kea on both racks")
    admin.wait_live()
    # The page follows the racks: both report dhcpd running in HA, without a reload.
    page.evaluate("window.__noReload = true")
    for system_id, role in ((rack1, "primary"), (rack2, "secondary")):
        row = f"#vlan-racks tr[data-system-id='{system_id}']"
        assert role in page.inner_text(f"{row} .dhcp-role")
        page.wait_for_selector(f"{row} .dhcpd .status--running", timeout=30_000)
    check_accessibility(page)

    # Each rack's own page: the VLAN it serves, its role, its partner and Kea's HA state,
    # which then follows the rack's reports while the page is open.
    rack_pages = {}
    for system_id, role, partner in ((rack1, "primary", "rack2"), (rack2, "secondary", "rack1")):
        rack_page = admin.context.new_page()
        rack_page.goto(f"{admin.base_url}/MAAS/r/controller/{system_id}/")
        row = rack_page.locator("#dhcp-vlans tbody tr")
        assert row.count() == 1 and role in row.locator(".dhcp-role").inner_text()
        assert partner in row.inner_text()
        rack_page.wait_for_selector("#dhcp-vlans .ha-state .status--running", timeout=30_000)
        assert row.locator(".ha-state").text_content().strip() == "hot-standby"
        check_accessibility(rack_page)
        rack_pages[system_id] = rack_page

    # Deleting the HA primary from its page is refused with the API's message; nothing changes.
    primary_page = rack_pages[rack1]
    with primary_page.expect_navigation():
        primary_page.click("#delete-rack")
    assert ".untagged (primary)" in primary_page.inner_text("#delete-panel")
    check_accessibility(primary_page)
    with primary_page.expect_navigation() as navigation:
        primary_page.click("#delete-panel button[type=submit]")
    assert navigation.value.status == 400
    refusal = primary_page.inner_text("#delete-error")
    assert refusal.startswith("Unable to delete 'rack1'") and "Disable DHCP HA first" in refusal
    check_accessibility(primary_page)
    assert vlan_state(lab)["primary"] == rack1 and lab.system_id("rack1") == rack1
    assert lab.kea_pids("rack1") and lab.kea_pids("rack2")

    lease = lab.clients[0].dhcp_udhcpc("pxe", timeout=20)
    assert lease.server_id == "10.61.0.2", "hot-standby: the primary answers"
    assert 191 <= int(lease.ip.split(".")[-1]) <= 254

    # The primary rack dies (kill -9 of rackd and its Kea): the standby goes partner-down,
    # and the open page shows it within 2 s of the rack's report reaching the region.
    for pid in lab.stack.racks["rack1"][0].pids():
        os.kill(pid, signal.SIGKILL)
    degraded = f"#vlan-racks tr[data-system-id='{rack2}'] .dhcpd .status--degraded"
    page.wait_for_selector(degraded, timeout=60_000)
    shown = time.time()
    status, info, committed = dhcpd_committed(lab, "rack2")
    assert status == "degraded" and "partner" in info and "down" in info
    assert "down" in page.inner_text(f"#vlan-racks tr[data-system-id='{rack2}'] .dhcpd")
    print(
        f"partner-down shown {shown - committed:.2f} s after its commit "
        f"({datetime.fromtimestamp(committed, UTC):%H:%M:%S.%f})"
    )
    assert shown - committed < 2.0
    page.wait_for_selector(f"#vlan-racks tr[data-system-id='{rack1}'] .status--dead", timeout=10_000)
    assert page.evaluate("window.__noReload") is True
    check_accessibility(page)
    # The secondary's page says it serves alone; the primary's, what it last reported.
    standby = rack_pages[rack2]
    standby.wait_for_selector("#dhcp-vlans .ha-state .status--degraded", timeout=10_000)
    assert standby.text_content("#dhcp-vlans .ha-state").strip() == "partner-down"
    rack_pages[rack1].wait_for_selector("#dhcp-vlans .ha-state .status--unknown", timeout=10_000)
    assert "last reported" in rack_pages[rack1].inner_text("#dhcp-vlans .ha-state")
    for rack_page in rack_pages.values():
        check_accessibility(rack_page)
        rack_page.close()
    # The standby serves a new client alone.
    assert lab.clients[1].dhcp_udhcpc("pxe", timeout=20).server_id == "10.61.0.3"
