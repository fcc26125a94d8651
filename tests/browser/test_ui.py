"""The web UI in Debian's chromium against real regions and racks on one PostgreSQL.

Every page opened here is also checked with axe-core (support.check_accessibility).
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from metalplane.cli.rack_cmd import rack_daemon
from metalplane.config.rack import rack_config_path, update_rack_config
from metalplane.identity import read_system_id
from metalplane.region.services import settings
from tests.browser.support import (
    ADMIN,
    ADMIN_PASSWORD,
    USER,
    USER_PASSWORD,
    UiUser,
    check_accessibility,
    model_rack,
    serve_dhcp,
    start_haproxy,
)
from tests.support.processes import HOST_NETWORK_SERVICES_OFF, free_port_block, wait_until

LOGIN = "/MAAS/accounts/login/"
CONTROLLERS = "/MAAS/r/controllers/"
SETTINGS = "/MAAS/r/settings/"


def get_config(lab, name: str):
    with lab.api() as api:
        return api.get("maas/", op="get_config", name=name).json()


def session_works(base: str, key: str) -> bool:
    response = httpx.get(base + CONTROLLERS, cookies={"sessionid": key}, follow_redirects=False)
    if response.status_code == 200:
        return True
    assert response.status_code == 303 and response.headers["location"].startswith(LOGIN)
    return False


def csrf_token_of(person: UiUser) -> str:
    return person.page.get_attribute("form.logout input[name=csrfmiddlewaretoken]", "value")


def running_row(system_id: str) -> str:
    return f"tr[data-system-id='{system_id}'] .status-cell .status--running"


def test_maas_root_leads_to_the_login_page(person):
    person.open("/MAAS/")
    assert person.page.url.startswith(person.base_url + LOGIN)
    assert "next=/MAAS/r/controllers/" in person.page.url.replace("%2F", "/")


def test_a_wrong_password_is_refused_with_a_message(person):
    page = person.login(ADMIN, "not-the-password")
    assert page.url.startswith(person.base_url + LOGIN)
    assert "Please enter a correct username and password" in page.inner_text("#login-error")
    assert person.cookie("sessionid") is None


def test_login_reaches_controllers_and_logout_ends_the_session(person, lab):
    page = person.login(ADMIN, ADMIN_PASSWORD)
    assert page.url == person.base_url + CONTROLLERS
    assert page.inner_text("h1") == "Controllers"
    assert "region-a" in page.inner_text("#controllers")
    cookie = next(c for c in person.context.cookies() if c["name"] == "sessionid")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/MAAS/"
    key = cookie["value"]
    assert session_works(person.base_url, key)

    person.submit("form.logout button")
    assert page.url.startswith(person.base_url + LOGIN)
    # The session row is gone: the old cookie is worthless on every region.
    for region in lab.regions.values():
        assert not session_works(region.base, key)
    person.open(CONTROLLERS)
    assert page.url.startswith(person.base_url + LOGIN)


def test_a_state_changing_post_without_the_csrf_token_is_refused(person, lab):
    person.login(ADMIN, ADMIN_PASSWORD)
    request = person.context.request  # the browser's own cookies, no token
    before = get_config(lab, "maas_name")
    for form in ({"maas_name": "no-token"}, {"maas_name": "forged", "csrfmiddlewaretoken": "forged"}):
        response = request.post(person.base_url + SETTINGS, form=form, max_redirects=0)
        assert response.status == 403
        assert "CSRF verification failed" in response.text()
    assert get_config(lab, "maas_name") == before
    response = request.post(person.base_url + "/MAAS/accounts/logout/", form={}, max_redirects=0)
    assert response.status == 403
    assert session_works(person.base_url, person.cookie("sessionid")), "a refused logout leaves the session"
    # The login form is protected too (double-submit cookie).
    response = httpx.post(person.base_url + LOGIN, data={"username": ADMIN, "password": ADMIN_PASSWORD})
    assert response.status_code == 403


def test_a_non_admin_sees_no_secret_and_the_server_refuses_admin_actions(person, lab):
    page = person.login(USER, USER_PASSWORD)
    assert page.url == person.base_url + CONTROLLERS
    assert page.locator("#add-rack").count() == 0
    assert page.locator(".topnav >> text=Settings").count() == 0
    assert lab.secret not in page.content()

    response = person.open(CONTROLLERS + "?add=rack")
    assert response.status == 403
    assert lab.secret not in page.content()
    assert person.open(SETTINGS).status == 403

    # Sent by hand, with her own valid CSRF token: still refused, nothing written.
    token = csrf_token_of(person)
    before = get_config(lab, "maas_name")
    response = person.context.request.post(
        person.base_url + SETTINGS, max_redirects=0, form={"csrfmiddlewaretoken": token, "maas_name": "alice-was-here"}
    )
    assert response.status == 403
    assert "reserved for admin users" in response.text()
    assert get_config(lab, "maas_name") == before


def test_a_session_made_on_one_region_serves_on_the_other(person, lab):
    a, b = lab.regions["region-a"], lab.regions["region-b"]
    person.login(ADMIN, ADMIN_PASSWORD, base_url=a.base)
    key = person.cookie("sessionid")
    # What HAProxy does: the next request, same cookie, lands on the other region.
    response = person.open(b.base + CONTROLLERS)
    assert response.status == 200 and person.page.url == b.base + CONTROLLERS
    assert person.page.inner_text(".username").startswith(ADMIN)
    assert session_works(b.base, key)
    # Logging out on B ends it on A.
    person.submit("form.logout button")
    assert not session_works(a.base, key)


def test_settings_are_validated_like_the_api_with_the_error_beside_the_field(person, lab):
    person.login(ADMIN, ADMIN_PASSWORD)
    page = person.page
    person.open(SETTINGS)
    before = get_config(lab, "ntp_servers")
    with lab.api() as api:
        refused = api.post("maas/", op="set_config", name="ntp_servers", value="bad name!")
    assert refused.status_code == 400
    (api_message,) = refused.json()["ntp_servers"]

    page.fill("#id_ntp_servers", "bad name!")
    page.fill("#id_maas_name", "not-saved-either")
    response = person.submit(".settings-form button[type=submit]")
    assert response.status == 400
    assert page.inner_text("#error_ntp_servers") == api_message
    assert page.inner_text("#settings-refused") == "Nothing was saved: correct NTP servers."
    assert page.get_attribute("#id_ntp_servers", "aria-invalid") == "true"
    assert get_config(lab, "ntp_servers") == before
    assert get_config(lab, "maas_name") != "not-saved-either", "nothing is half-written"

    # Every MAAS setting is on the page, in MAAS's sections; a boolean is a true/false choice.
    assert page.locator("fieldset.group legend").all_inner_texts()[:3] == ["General", "Security", "Network"]
    assert page.locator(".settings-form [name]:not([type=hidden])").count() == len(settings.SETTINGS)
    assert page.input_value("#id_ntp_external_only") == "false"

    page.fill("#id_ntp_servers", "10.9.8.7 ntp.example.com")
    page.fill("#id_maas_name", "lab-ui")
    page.select_option("#id_ntp_external_only", "true")
    person.submit(".settings-form button[type=submit]")
    assert page.url == person.base_url + SETTINGS + "?saved=1"
    assert "Settings saved." in page.inner_text("main")
    assert get_config(lab, "ntp_servers") == "10.9.8.7 ntp.example.com"
    assert get_config(lab, "ntp_external_only") is True
    assert get_config(lab, "maas_name") == "lab-ui"
    assert page.inner_text(".brand").startswith("lab-ui")
    assert page.input_value("#id_ntp_external_only") == "true"
    with lab.api() as api:
        api.post("maas/", op="set_config", name="ntp_servers", value=before or "")
        api.post("maas/", op="set_config", name="ntp_external_only", value="false")


def test_a_killed_rack_turns_dead_on_an_open_controllers_page_within_2s(person, lab):
    rack = lab.start_rack("rack-kill")
    system_id = wait_until(lambda: rack.system_id, 30, what="the rack's system_id")
    page = person.login(ADMIN, ADMIN_PASSWORD)
    # It connects while the page is open and shows up running without a reload.
    page.wait_for_selector(running_row(system_id), timeout=30_000)
    person.wait_live()
    page.evaluate("window.__noReload = true")

    rack.kill(signal.SIGKILL)
    killed = time.monotonic()
    page.wait_for_selector(f"tr[data-system-id='{system_id}'] .status-cell .status--dead", timeout=2_000)
    elapsed = time.monotonic() - killed
    assert page.evaluate("window.__noReload") is True
    assert "no connection to any region" in page.inner_text(f"tr[data-system-id='{system_id}']")
    check_accessibility(page)
    print(f"rack death shown {elapsed:.2f} s after kill -9")
    assert elapsed < 2.0


def test_controller_pages_show_services_workers_and_interfaces(person, lab):
    rack = lab.start_rack("rack-detail")
    system_id = wait_until(lambda: rack.system_id, 30, what="the rack's system_id")
    page = person.login(ADMIN, ADMIN_PASSWORD)
    page.wait_for_selector(running_row(system_id), timeout=30_000)
    page.click(f"tr[data-system-id='{system_id}'] a")
    page.wait_for_selector("#services")
    check_accessibility(page)
    services = page.locator("#services tbody tr").evaluate_all("rows => rows.map(r => r.dataset.service)")
    assert services == ["rackd", "dhcpd", "dhcpd6", "tftp", "http", "ntp_rack", "dns_rack"]
    assert page.locator("#services tr[data-service=rackd] .status--running").count() == 1
    assert page.locator("#dhcp-vlans").count() == 1 and page.locator("#bmcs").count() == 1
    assert page.locator("#interfaces tbody tr").count() >= 1
    assert "compatible with this region" in page.inner_text(
        ".summary-list"
    ) or "the same as this region" in page.inner_text(".summary-list")

    region = lab.regions["region-a"]
    person.open(CONTROLLERS)
    region_id = page.get_attribute(f"tr:has(a:text-is('{region.name}'))", "data-system-id")
    # A worker counts while its heartbeat (1 s) is under 4 s old: on a loaded machine one
    # may be late for a moment, so look again rather than read one instant.
    wait_until(
        lambda: (
            person.open(f"/MAAS/r/controller/{region_id}/")
            and page.locator("#workers tbody tr").count() == region.process.config.num_workers
        ),
        15,
        interval=1,
        what="every worker on the region's page",
    )
    assert page.locator("#services tr[data-service=regiond] .status--running").count() == 1


def test_add_rack_controller_shows_a_command_that_registers_a_rack_which_appears_live(person, lab):
    person.login(ADMIN, ADMIN_PASSWORD)
    page = person.page
    person.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=person.base_url)
    page.click("#add-rack")
    page.wait_for_selector("#register-command")
    check_accessibility(page)
    command = page.inner_text("#register-command")
    init_command = page.inner_text("#init-command")
    urls = [r.process.config.maas_url for r in lab.regions.values()]
    assert all(f"--url {u}" in command for u in urls) and f"--secret {lab.secret}" in command
    assert init_command == f"metalplane init --mode rack --maas-url {urls[0]} --secret {lab.secret}"
    page.click("button[data-copy=register-command]")
    page.wait_for_selector("[data-copy-status=register-command]:text('Copied')")
    assert page.evaluate("navigator.clipboard.readText()") == command
    check_accessibility(page)  # while it says "Copied": the button keeps its accessible name

    person.wait_live()
    page.evaluate("window.__noReload = true")
    # A fresh data dir. Only the host's own settings are written first: on this test
    # machine the rack's TFTP and HTTP stay on loopback and free ports (never 69/5248), and
    # it runs no resolver, chronyd or ARP listener on the host's own interfaces (a port
    # 53/123 taken by anything else would leave it degraded, not running).
    data_dir = lab.root / "added-rack"
    port = free_port_block(2)
    update_rack_config(
        rack_config_path(data_dir),
        {
            "data_dir": str(data_dir),
            "hostname": "rack-added",
            "bind_address": "127.0.0.1",
            "tftp_port": port,
            "http_port": port + 1,
            **HOST_NETWORK_SERVICES_OFF,
            "discovery": False,
        },
    )
    argv = shlex.split(command)
    assert argv[:3] == ["metalplane", "rack", "register"]
    metalplane = str(Path(sys.executable).with_name("metalplane"))  # the installed `metalplane` command
    try:
        done = subprocess.run(
            [metalplane, *argv[1:], "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        system_id = read_system_id(data_dir)
        page.wait_for_selector(running_row(system_id), timeout=30_000)
        assert "rack-added" in page.inner_text(f"tr[data-system-id='{system_id}']")
        assert page.evaluate("window.__noReload") is True
        check_accessibility(page)
    finally:
        rack_daemon(data_dir).stop()


def test_deleting_the_dhcp_primary_is_refused_with_the_apis_message_unless_forced(person, lab, browser):
    system_id = model_rack(lab, "10.205.0", connected=True)
    vlan = serve_dhcp(lab, "10.205.0", system_id)
    with lab.api() as api:
        api_refusal = api.delete(f"rackcontrollers/{system_id}/")
    assert api_refusal.status_code == 400

    # A non-admin is refused, even by hand with her own token.
    alice = UiUser(browser, lab.first.base)
    try:
        alice.login(USER, USER_PASSWORD)
        assert alice.open(f"/MAAS/r/controller/{system_id}/").status == 200
        assert alice.page.locator("#delete-rack").count() == 0
        assert alice.open(f"/MAAS/r/controller/{system_id}/?delete=1").status == 403
        by_hand = alice.context.request.post(
            f"{lab.first.base}/MAAS/r/controller/{system_id}/delete/",
            form={"csrfmiddlewaretoken": csrf_token_of(alice), "force": "true"},
            max_redirects=0,
        )
        assert by_hand.status == 403
    finally:
        alice.close()

    page = person.login(ADMIN, ADMIN_PASSWORD)
    person.open(f"/MAAS/r/controller/{system_id}/")
    assert "standalone" in page.inner_text("#dhcp-vlans"), "primary with no secondary"
    page.click("#delete-rack")
    page.wait_for_selector("#delete-panel")
    check_accessibility(page)
    assert "(standalone)" in page.inner_text("#delete-panel")
    response = person.submit("#delete-panel button[type=submit]")
    assert response.status == 400
    assert page.inner_text("#delete-error") == api_refusal.text
    with lab.api() as api:
        assert api.get(f"rackcontrollers/{system_id}/").status_code == 200
        assert api.get(vlan).json()["dhcp_on"] is True

    page.check("#id_force")
    person.submit("#delete-panel button[type=submit]")
    assert page.url.startswith(person.base_url + CONTROLLERS + "?deleted=")
    assert "was deleted" in page.inner_text("main")
    assert page.locator(f"tr[data-system-id='{system_id}']").count() == 0
    with lab.api() as api:
        assert api.get(f"rackcontrollers/{system_id}/").status_code == 404
        assert api.get(vlan).json()["dhcp_on"] is False


@pytest.mark.timeout(180)
def test_behind_haproxy_a_page_says_reconnecting_then_goes_on_with_the_other_region(person, lab):
    """Its region dies (kill -9): the page says so, HAProxy sends the new stream to the
    other region, and the page goes on updating itself (it shows the dead region)."""
    lab.start_region("region-c", num_workers=1)
    pair = [lab.regions["region-b"], lab.regions["region-c"]]
    proxy, url = start_haproxy(lab.root, pair)
    try:
        wait_until(lambda: set(proxy.server_status().values()) == {"UP"}, 15, what="HAProxy seeing both regions")
        page = person.login(ADMIN, ADMIN_PASSWORD, base_url=url)
        assert page.url == url + CONTROLLERS
        person.wait_live()
        # The event stream is the one long connection: its region is the one to kill.
        holder = wait_until(
            lambda: next((name for name, row in proxy.servers().items() if row["scur"] != "0"), None),
            10,
            what="the stream's region",
        )
        victim = lab.regions[holder]
        victim_id = page.get_attribute(f"tr:has(a:text-is('{holder}'))", "data-system-id")
        page.evaluate("window.__noReload = true")
        lab.kill_region(holder)
        page.wait_for_selector("#live-state[data-state=reconnecting]", timeout=3_000)
        assert page.inner_text("#live-state") == "reconnecting…"
        check_accessibility(page)
        person.wait_live(timeout=15_000)
        # Still the same page, now fed by the survivor: the dead region turns dead on it.
        page.wait_for_selector(f"tr[data-system-id='{victim_id}'] .status-cell .status--dead", timeout=15_000)
        assert page.evaluate("window.__noReload") is True
        assert victim.process.alive() is False
    finally:
        proxy.stop()
