"""The web UI's Subnets, VLAN (Configure DHCP), Machines and Images pages over plain
HTTP against a real region: the rules are the API's (checked through the API
afterwards), refusals change nothing, non-admins are refused by the server, and
failed logins are limited. The browser tests (tests/browser) drive the same pages
in chromium with real racks and Kea."""

from __future__ import annotations

import html
import re
import secrets
import shutil
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, text

from metalplane.region.bootstrap import run_db
from metalplane.region.db.tables import region_processes
from metalplane.region.services import commissioning, connections, racks, reports
from metalplane.region.services.controllers import new_system_id
from tests.conftest import RunningRegion, create_admin, create_user, start_region
from tests.support.databases import world_traversable_tempdir
from tests.support.image_mirror import make_mirror
from tests.support.machine_fleet import add_machines, fleet_hostname, fleet_mac
from tests.support.processes import wait_until

ADMIN_PASSWORD = "test-admin"  # tests.conftest.create_admin
USER_PASSWORD = "pw"  # tests.conftest.create_user
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class UiClient:
    """One person's cookies against the region, logged in through the form."""

    def __init__(self, base: str, username: str, password: str):
        self.base = base
        self.http = httpx.Client(base_url=base, follow_redirects=False, timeout=30)
        form = self.http.get("/MAAS/accounts/login/")
        done = self.http.post(
            "/MAAS/accounts/login/",
            data={"csrfmiddlewaretoken": CSRF.search(form.text).group(1), "username": username, "password": password},
        )
        assert done.status_code == 303, done.text
        self.token = CSRF.search(self.http.get("/MAAS/r/controllers/").text).group(1)

    def get(self, path: str, status: int = 200) -> str:
        response = self.http.get(path)
        assert response.status_code == status, (path, response.status_code, response.text[:2000])
        return response.text

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        return self.http.post(path, data={"csrfmiddlewaretoken": self.token, **data})

    def close(self) -> None:
        self.http.close()


def text_of(page: str) -> str:
    """The page's text, tags dropped and entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def errors_beside(page: str, slot: str) -> list[str]:
    return [
        html.unescape(m)
        for m in re.findall(
            rf'<p class="field-error" id="error_{slot}(?:_\d+)?" role="alert">'
            r"([^<]*)</p>",
            page,
        )
    ]


@pytest.fixture(scope="module")
def ui_region(databases) -> Iterator[RunningRegion]:
    """A region of its own (model racks and 130 machines would disturb the shared one)."""
    root = world_traversable_tempdir("mp-ui-pages-")
    process = start_region(databases, root)
    key = create_admin(process.config)
    create_user(process.config, "ui-user")
    yield RunningRegion(process, key)
    process.stop()
    databases.drop_database(process.config.database_name)
    shutil.rmtree(root, ignore_errors=True)


def base_of(region: RunningRegion) -> str:
    return region.url.rstrip("/").removesuffix("/MAAS")


@pytest.fixture
def admin(ui_region) -> Iterator[UiClient]:
    client = UiClient(base_of(ui_region), "admin", ADMIN_PASSWORD)
    yield client
    client.close()


@pytest.fixture
def user(ui_region) -> Iterator[UiClient]:
    client = UiClient(base_of(ui_region), "ui-user", USER_PASSWORD)
    yield client
    client.close()


def model_racks(region: RunningRegion, prefix: str, count: int) -> list[str]:
    """Racks in the model only, each with an address on PREFIX.0/24 and a connection to a
    live worker (so the region judges them up). A real rack would start Kea here."""
    made = []

    async def add(conn):
        process = (await conn.execute(select(region_processes.c.id).limit(1))).scalar_one()
        for n in range(count):
            system_id = new_system_id()
            node_id = await racks.register_rack(
                conn,
                system_id,
                f"rack-{prefix.replace('.', '-')}-{n}",
                "0.1.0",
                [{"name": "eth0", "mac": f"52:54:00:ee:{n:02x}:01", "addresses": [f"{prefix}.{n + 2}/24"]}],
            )
            await connections.add_connection(conn, node_id, process)
            made.append(system_id)

    run_db(region.config, add)
    return made


def vlan_of(api, cidr: str) -> dict:
    subnet = next(s for s in api.get("subnets/").json() if s["cidr"] == cidr)
    return api.get(f"vlans/{subnet['vlan']['id']}/").json()


def dynamic_ranges(api, cidr: str) -> list[dict]:
    return [r for r in api.get("ipranges/").json() if r["subnet"]["cidr"] == cidr and r["type"] == "dynamic"]


# -- Controllers -------------------------------------------------------------------------------


def row_of(page: str, system_id: str) -> str:
    """The text of the table row for `system_id`."""
    start = page.index(f'<tr data-system-id="{system_id}">')
    return text_of(page[start : page.index("</tr>", start)])


def test_controllers_show_connections_last_seen_and_a_racks_bmcs_and_interfaces(ui_region, user):
    (rack,) = model_racks(ui_region, "10.236.0", 1)

    async def setup(conn):
        link = (
            await conn.execute(
                text("""
                SELECT r.system_id, r.hostname, p.worker_index, k.id AS rack_id FROM rpc_connections c
                JOIN nodes k ON k.id = c.rack_id JOIN region_processes p ON p.id = c.process_id
                JOIN nodes r ON r.id = p.region_id WHERE k.system_id = :rack"""),
                {"rack": rack},
            )
        ).one()
        bmc = (
            await conn.execute(
                text("""
                INSERT INTO bmcs (power_type, identity, power_parameters, owner_rack_id)
                VALUES ('ipmi', '10.236.0.50', '{"power_address": "10.236.0.50"}', :rack) RETURNING id"""),
                {"rack": link.rack_id},
            )
        ).scalar_one()
        return link, bmc

    link, bmc_id = run_db(ui_region.config, setup)
    try:
        listed = user.get("/MAAS/r/controllers/")
        # A rack: the region worker it is connected to; a region: its workers' rack connections.
        assert f"{link.hostname} · worker {link.worker_index}" in row_of(listed, rack)
        region_row = row_of(listed, link.system_id)
        assert re.search(rf"worker {link.worker_index}: [1-9]\d* racks?", region_row), region_row
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", region_row), "last seen"
        assert "never" not in row_of(listed, rack), "a registered rack was seen when it registered"

        page = user.get(f"/MAAS/r/controller/{rack}/")
        bmcs = text_of(page[page.index('id="bmcs"') : page.index('id="interfaces"')])
        assert "ipmi 10.236.0.50 0" in bmcs and "This rack owns no BMC" not in bmcs
        interfaces = text_of(page[page.index('id="interfaces"') :])
        assert re.search(r"eth0 52:54:00:ee:00:01 fabric-\d+\.untagged 10\.236\.0\.2 \(10\.236\.0\.0/24\)", interfaces)
    finally:
        run_db(ui_region.config, lambda conn: conn.execute(text("DELETE FROM bmcs WHERE id = :b"), {"b": bmc_id}))


# -- Subnets and VLAN --------------------------------------------------------------------------


def test_subnets_are_grouped_by_fabric_and_vlan_with_ranges_and_usage(ui_region, user):
    with ui_region.api() as api:
        fabric = api.post("fabrics/", name="ui-fabric").json()
        vlan = api.post(f"fabrics/{fabric['id']}/vlans/", vid="42", name="storage").json()
        subnet = api.post("subnets/", cidr="10.232.0.0/24", vlan=str(vlan["id"]), gateway_ip="10.232.0.1").json()
        api.post("ipranges/", type="reserved", start_ip="10.232.0.10", end_ip="10.232.0.59", subnet=str(subnet["id"]))
    page = user.get("/MAAS/r/subnets/")
    section = page[page.index(f'<tbody data-fabric-id="{fabric["id"]}">') :]
    row = text_of(section[: section.index("</tbody>")])
    # 254 usable; the gateway and 50 reserved are taken: 51 of 254 is 20%.
    assert "storage" in row and "10.232.0.0/24" in row and "reserved: 10.232.0.10 \u2013 10.232.0.59" in row
    assert "20% used" in row and "203 of 254 addresses free" in row
    assert f'href="/MAAS/r/vlan/{vlan["id"]}/"' in section


def test_configure_dhcp_refusals_show_the_api_message_and_change_nothing(ui_region, admin):
    primary, secondary = model_racks(ui_region, "10.233.0", 2)
    with ui_region.api() as api:
        vlan = vlan_of(api, "10.233.0.0/24")
        subnet_id = next(s for s in api.get("subnets/").json() if s["cidr"] == "10.233.0.0/24")["id"]
    path = f"/MAAS/r/vlan/{vlan['id']}/"
    dialog = admin.get(path + "?dhcp=configure")
    # Only the racks on this VLAN are offered; the suggestion is MAAS's: the top quarter of the free block.
    assert primary in dialog and secondary in dialog
    assert 'value="10.233.0.191"' in dialog and 'value="10.233.0.254"' in dialog
    good = {
        "primary_rack": primary,
        "secondary_rack": secondary,
        "dynamic_range": "new",
        "subnet": str(subnet_id),
        "start_ip": "10.233.0.191",
        "end_ip": "10.233.0.254",
        "dhcp_ha_mode": "hot-standby",
    }

    refused = admin.post(path + "dhcp/", {**good, "secondary_rack": primary})
    assert refused.status_code == 400
    assert errors_beside(refused.text, "racks") == ["The primary and secondary rack must be different"]
    refused = admin.post(path + "dhcp/", {**good, "dynamic_range": "none"})
    assert refused.status_code == 400
    assert errors_beside(refused.text, "dynamic_range") == [
        "dhcp can only be turned on when a dynamic IP range is defined."
    ]
    refused = admin.post(path + "dhcp/", {**good, "start_ip": "10.232.9.5"})
    assert refused.status_code == 400
    assert errors_beside(refused.text, "start_ip") == ["Start IP address must be within subnet: 10.233.0.0/24."]
    refused = admin.post(path + "dhcp/", {**good, "dhcp_ha_mode": "active-active"})
    assert refused.status_code == 400
    assert errors_beside(refused.text, "dhcp_ha_mode") == ["must be one of hot-standby, load-balancing"]
    refused = admin.post(path + "dhcp/", {**good, "subnet": "999999"})
    assert refused.status_code == 400 and errors_beside(refused.text, "subnet")
    assert 'value="10.232.9.5"' not in refused.text and f'<option value="{primary}" selected' in refused.text
    with ui_region.api() as api:
        after = vlan_of(api, "10.233.0.0/24")
        assert not after["dhcp_on"] and after["primary_rack"] is None and after["secondary_rack"] is None
        assert dynamic_ranges(api, "10.233.0.0/24") == [], "a refused dialog leaves no range behind"

    done = admin.post(path + "dhcp/", good)
    assert done.status_code == 303 and done.headers["location"] == path + "?done=on"
    with ui_region.api() as api:
        after = vlan_of(api, "10.233.0.0/24")
        assert after["dhcp_on"] and after["primary_rack"] == primary and after["secondary_rack"] == secondary
        (made,) = dynamic_ranges(api, "10.233.0.0/24")
        assert (made["start_ip"], made["end_ip"]) == ("10.233.0.191", "10.233.0.254")
    page = admin.get(path + "?done=on")
    assert "Reconfigure DHCP" in page and "DHCP is on" in page
    roles = text_of(page[page.index('id="vlan-racks"') : page.index('id="vlan-subnets"')])
    assert "primary" in roles and "secondary" in roles
    # Reconfigure: the existing range is offered and kept; swapping the racks works as the API does.
    dialog = admin.get(path + "?dhcp=configure")
    assert 'id="id_range_existing"' in dialog and "10.233.0.191 \u2013 10.233.0.254" in text_of(dialog)
    # ... and the HA mode chosen in the dialog is the cluster's `dhcp_ha_mode`, as set-config sets it.
    swapped = admin.post(
        path + "dhcp/",
        {
            **good,
            "primary_rack": secondary,
            "secondary_rack": primary,
            "dynamic_range": "existing",
            "dhcp_ha_mode": "load-balancing",
        },
    )
    assert swapped.status_code == 303
    with ui_region.api() as api:
        after = vlan_of(api, "10.233.0.0/24")
        assert (after["primary_rack"], after["secondary_rack"]) == (secondary, primary)
        assert len(dynamic_ranges(api, "10.233.0.0/24")) == 1
        assert api.get("maas/", op="get_config", name="dhcp_ha_mode").json() == "load-balancing"
    dialog = admin.get(path + "?dhcp=configure")
    assert '<option value="load-balancing" selected' in dialog
    with ui_region.api() as api:
        api.post("maas/", op="set_config", name="dhcp_ha_mode", value="hot-standby")
    assert admin.post(path + "dhcp/off/", {}).status_code == 303
    with ui_region.api() as api:
        assert not vlan_of(api, "10.233.0.0/24")["dhcp_on"]


def test_a_non_admin_sees_the_vlan_but_cannot_configure_dhcp(ui_region, user):
    (rack,) = model_racks(ui_region, "10.235.0", 1)
    with ui_region.api() as api:
        vlan = vlan_of(api, "10.235.0.0/24")
    path = f"/MAAS/r/vlan/{vlan['id']}/"
    page = user.get(path)
    assert "Configure DHCP" not in page and rack in page
    user.get(path + "?dhcp=configure", status=403)
    refused = user.post(
        path + "dhcp/",
        {
            "primary_rack": rack,
            "secondary_rack": "",
            "dynamic_range": "new",
            "start_ip": "10.235.0.100",
            "end_ip": "10.235.0.120",
        },
    )
    assert refused.status_code == 403
    assert user.post(path + "dhcp/off/", {}).status_code == 403
    with ui_region.api() as api:
        assert not vlan_of(api, "10.235.0.0/24")["dhcp_on"] and dynamic_ranges(api, "10.235.0.0/24") == []


# -- Machines ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fleet(ui_region) -> str:
    run_db(ui_region.config, lambda conn: add_machines(conn, 130, prefix="pg", mac_base=0xA1))
    return "pg"


def hostnames_in(page: str) -> list[str]:
    return re.findall(r'<a href="/MAAS/r/machine/[^/]+/">([^<]+)</a>', page)


def test_the_machine_list_is_paged_and_filtered_on_the_server(fleet, user):
    first = user.get("/MAAS/r/machines/")
    assert "130 machines" in text_of(first)
    assert hostnames_in(first) == [fleet_hostname(fleet, n) for n in range(50)]
    last = user.get("/MAAS/r/machines/?page=3")
    assert hostnames_in(last) == [fleet_hostname(fleet, n) for n in range(100, 130)]
    # MAC search: whole (any case, dashes), and a prefix; hostname substring.
    for query in (fleet_mac(0xA1, 77), fleet_mac(0xA1, 77).upper().replace(":", "-")):
        found = user.get("/MAAS/r/machines/?" + str(httpx.QueryParams({"q": query})))
        assert hostnames_in(found) == [fleet_hostname(fleet, 77)]
    prefix = user.get("/MAAS/r/machines/?q=52:54:a1:00:00:0")
    assert hostnames_in(prefix) == [fleet_hostname(fleet, n) for n in range(16)]
    assert hostnames_in(user.get("/MAAS/r/machines/?q=PG-0012")) == [fleet_hostname(fleet, n) for n in range(120, 130)]
    # Status and zone filters, kept while paging.
    ready = user.get("/MAAS/r/machines/?status=4&zone=default")
    expected = [n for n in range(130) if n % 6 in (1, 2, 3) and n % 10 != 0]
    assert f"{len(expected)} machines match the filter" in text_of(ready)
    assert hostnames_in(ready) == [fleet_hostname(fleet, n) for n in expected[:50]]
    assert 'href="/MAAS/r/machines/?status=4&amp;zone=default&amp;page=2"' in ready
    assert hostnames_in(user.get("/MAAS/r/machines/?zone=zone-b")) == [
        fleet_hostname(fleet, n) for n in range(0, 130, 10)
    ]
    assert "No machine matches the filter" in user.get("/MAAS/r/machines/?q=no-such-host")
    user.get("/MAAS/r/machines/?status=99", status=400)
    user.get("/MAAS/r/machines/?page=0", status=400)


def test_a_machine_page_shows_each_scripts_output(ui_region, fleet, admin):
    system_id = "pg-00005"

    async def commissioned(conn):
        machine = await commissioning.start(conn, system_id, timedelta(minutes=5))
        await commissioning.store_script(conn, machine, "00-maas-01-lshw", 0, "<list>lshw says hello</list>")
        await commissioning.store_script(conn, machine, "99-disk-check", 3, "disk sdz missing")
        await commissioning.finish(conn, machine, reports.Outcome(False, ["99-disk-check"]))

    run_db(ui_region.config, commissioned)
    page = admin.get(f"/MAAS/r/machine/{system_id}/")
    results = text_of(page[page.index('id="commissioning-results"') : page.index('id="events"')])
    assert "00-maas-01-lshw passed" in results and "<list>lshw says hello</list>" in results
    assert "99-disk-check exit 3" in results and "disk sdz missing" in results
    assert "Failed commissioning" in text_of(page)


def test_commission_and_power_from_the_machine_page(ui_region, fleet, admin, user):
    system_id = "pg-00007"  # manual power: nothing to call
    path = f"/MAAS/r/machine/{system_id}/"
    assert 'id="commission"' not in user.get(path)
    assert user.post(path + "commission/", {}).status_code == 403
    assert user.post(path + "power/", {"action": "on"}).status_code == 403
    with ui_region.api(create_user(ui_region.config, f"api-user-{secrets.token_hex(3)}")) as api:
        assert api.post(f"machines/{system_id}/", op="power_on").status_code == 403, "the API's rule too"

    done = admin.post(path + "power/", {"action": "on"})
    assert done.status_code == 303 and done.headers["location"] == path + "?done=on"
    log = admin.get(path)
    assert "User powering up node" in text_of(log[log.index('id="events"') :]), "the event log records it"
    assert admin.post(path + "power/", {"action": "reboot"}).status_code == 400
    assert admin.post(path + "commission/", {}).status_code == 303
    with ui_region.api() as api:
        assert api.get(f"machines/{system_id}/").json()["status_name"] == "Commissioning"
    again = admin.post(path + "commission/", {})
    assert again.status_code == 400
    assert "Commission is not available because of the current state of the node." in text_of(again.text)
    assert 'id="commission"' in again.text, "the refusal is shown on the machine's page"


# -- Images ------------------------------------------------------------------------------------


def test_images_import_from_a_path_with_progress_and_the_apis_refusals(ui_region, admin, user, workdir):
    page = admin.get("/MAAS/r/images/")
    assert "No import yet" in page
    refused = admin.post("/MAAS/r/images/import/", {"source": "relative/mirror"})
    assert refused.status_code == 400
    assert errors_beside(refused.text, "source") == ["Give an absolute directory path on the region (or a URL)."]
    assert user.post("/MAAS/r/images/import/", {"source": "/srv"}).status_code == 403
    assert 'id="start-import"' not in user.get("/MAAS/r/images/")

    mirror = workdir / "mirror"
    make_mirror(
        mirror, "uitest", {"boot-kernel": secrets.token_bytes(300_000), "boot-initrd": secrets.token_bytes(600_000)}
    )
    started = admin.post("/MAAS/r/images/import/", {"source": str(mirror)})
    assert started.status_code == 303
    with ui_region.api() as api:
        wait_until(lambda: not api.get("boot-resources/", op="is_importing").json(), 60, 0.2, "the import")
    body = admin.get("/MAAS/r/images/?part=body")
    assert "ephemeral/uitest" in body and "synced" in body
    job = text_of(body[body.index('id="imports"') : body.index('id="resources"')])
    assert "done" in job and "2 of 2 files" in job and "100.0%" in job

    # Settings that name an image now offer the imported ones (and keep the current value).
    settings_page = admin.get("/MAAS/r/settings/")
    offered = re.search(r'<select id="id_default_osystem".*?</select>', settings_page, re.S).group(0)
    assert re.findall(r'<option value="([^"]*)"', offered) == ["ubuntu", "ephemeral"]
    assert admin.post("/MAAS/r/settings/", {"default_osystem": "ephemeral"}).status_code == 303
    with ui_region.api() as api:
        assert api.get("maas/", op="get_config", name="default_osystem").json() == "ephemeral"
        # (not set back: "ubuntu" is no image here, so set-config refuses it; nothing else here reads it)


# -- Login limits ------------------------------------------------------------------------------


def test_failed_logins_are_limited_per_user_with_429(ui_region):
    base = base_of(ui_region)
    username = f"limited-{secrets.token_hex(3)}"
    create_user(ui_region.config, username)
    with httpx.Client(base_url=base) as client:
        token = CSRF.search(client.get("/MAAS/accounts/login/").text).group(1)

        def attempt(password: str) -> httpx.Response:
            return client.post(
                "/MAAS/accounts/login/", data={"csrfmiddlewaretoken": token, "username": username, "password": password}
            )

        for _ in range(5):
            assert attempt("wrong").status_code == 200
        blocked = attempt(USER_PASSWORD)
        assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) in range(1, 61)
        assert "Too many failed logins" in blocked.text
    auth = httpx.post(base + "/MAAS/accounts/authenticate/", data={"username": username, "password": USER_PASSWORD})
    assert auth.status_code == 429 and "Retry-After" in auth.headers
    # Another user from the same address is not held up.
    UiClient(base, "ui-user", USER_PASSWORD).close()


def test_a_non_admin_sees_unowned_machines_and_their_own_and_powers_only_their_own(ui_region, fleet, user):
    """MAAS's rules, the API's (nodes.visible_to, services/permissions.py): nobody else's machines."""

    async def give(conn):
        other = (await conn.execute(text("SELECT id FROM users WHERE username = 'admin'"))).scalar_one()
        mine = (await conn.execute(text("SELECT id FROM users WHERE username = 'ui-user'"))).scalar_one()
        await conn.execute(text("UPDATE nodes SET owner_id = :o WHERE hostname = 'pg-00001'"), {"o": other})
        await conn.execute(text("UPDATE nodes SET owner_id = :o WHERE hostname = 'pg-00002'"), {"o": mine})

    run_db(ui_region.config, give)
    try:
        listed = user.get("/MAAS/r/machines/?q=pg-0000")
        assert hostnames_in(listed) == [
            "pg-00000",
            "pg-00002",
            "pg-00003",
            "pg-00004",
            "pg-00005",
            "pg-00006",
            "pg-00007",
            "pg-00008",
            "pg-00009",
        ], "not pg-00001: someone else's"
        assert "ui-user" in text_of(listed)
        user.get("/MAAS/r/machine/pg-00001/", status=404)
        # Its page is not found (not visible to her); powering it is refused, 403 as in MAAS.
        assert user.post("/MAAS/r/machine/pg-00001/power/", {"action": "on"}).status_code == 403
        own = user.get("/MAAS/r/machine/pg-00002/")
        assert 'id="power-on"' in own and 'id="commission"' not in own
        assert user.post("/MAAS/r/machine/pg-00002/power/", {"action": "off"}).status_code == 303
        assert user.post("/MAAS/r/machine/pg-00002/commission/", {}).status_code == 403
        assert user.post("/MAAS/r/machine/pg-00003/power/", {"action": "off"}).status_code == 403, "nobody's"
    finally:
        run_db(
            ui_region.config,
            lambda conn: conn.execute(
                text("UPDATE nodes SET owner_id = NULL WHERE hostname IN ('pg-00001', 'pg-00002')")
            ),
        )
