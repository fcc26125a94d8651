"""Regenerate docs/ui/*.png: `python -m tests.browser.screenshots [--out DIR]`.

Starts what the browser tests start, drives Debian's chromium through the same
pages, checks each with axe-core, and saves a PNG of each. First on loopback: a
private PostgreSQL, two regions, two racks (one then killed), 240 machines (one
commissioned through the metadata API as the ephemeral image does) and an image
imported from a throttled mirror. Then in a network-namespace lab (tests need
root): a region and two racks with real Kea on one VLAN, DHCP configured from
the VLAN page, then the primary rack killed. Every status shown is the real one
at that moment; the one rack that exists only in the database (for the DHCP
refusal on delete, which must not start Kea on this host) shows as the dead rack
it is.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright
from sqlalchemy import select

from metalplane.region.bootstrap import run_db
from metalplane.region.db.tables import node_tokens, nodes
from tests.browser.support import (
    ADMIN,
    ADMIN_PASSWORD,
    DhcpLab,
    UiLab,
    UiUser,
    check_accessibility,
    in_thread,
    launch,
    launch_in,
    model_rack,
    serve_dhcp,
)
from tests.support.databases import TestDatabases, world_traversable_tempdir
from tests.support.image_mirror import MirrorServer, make_mirror
from tests.support.machine_fleet import add_machines, fleet_mac
from tests.support.processes import wait_until

DOCS_UI = Path(__file__).resolve().parents[2] / "docs" / "ui"
VIEWPORT = {"width": 1280, "height": 760}


def running(page, system_id: str) -> None:
    page.wait_for_selector(f"tr[data-system-id='{system_id}'] .status--running", timeout=30_000)


def camera(person: UiUser, out: Path, shots: list[Path]) -> Callable[..., None]:
    """shot(name, full=True): check the page with axe-core, then save it as OUT/NAME.png."""
    person.page.set_viewport_size(VIEWPORT)

    def shot(name: str, full: bool = True) -> None:
        check_accessibility(person.page)
        path = out / f"{name}.png"
        person.page.screenshot(path=str(path), full_page=full)
        shots.append(path)

    return shot


def take(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    databases = TestDatabases()
    databases.start()
    lab: UiLab | None = UiLab(databases, world_traversable_tempdir("mp-ui-shots-"))
    try:
        lab.start()
        racks = [lab.start_rack(name) for name in ("rack1", "rack2")]
        ids = [wait_until(lambda r=r: r.system_id, 30, what="rack registration") for r in racks]
        with sync_playwright() as playwright:
            browser = launch(playwright)
            person = UiUser(browser, lab.first.base)
            page = person.page
            shot = camera(person, out, shots)

            person.open("/MAAS/accounts/login/")
            shot("login", full=False)
            person.login(ADMIN, "wrong password")
            shot("login-error", full=False)
            person.login(ADMIN, ADMIN_PASSWORD)
            for system_id in ids:
                running(page, system_id)
            person.wait_live()
            racks[1].kill(signal.SIGKILL)
            page.wait_for_selector(f"tr[data-system-id='{ids[1]}'] .status--dead", timeout=5_000)
            shot("controllers")
            page.click("#add-rack")
            page.wait_for_selector("#register-command")
            shot("add-rack-controller")
            person.open(f"/MAAS/r/controller/{ids[0]}/")
            shot("controller-rack")
            person.open("/MAAS/r/controllers/")
            region_id = page.get_attribute("tr:has(a:text-is('region-a'))", "data-system-id")
            person.open(f"/MAAS/r/controller/{region_id}/")
            shot("controller-region")
            # A rack that registered once and is gone, still the DHCP server of a VLAN.
            gone = model_rack(lab, "10.205.0", connected=False)
            serve_dhcp(lab, "10.205.0", gone)
            person.open(f"/MAAS/r/controller/{gone}/?delete=1")
            person.submit("#delete-panel button[type=submit]")
            shot("delete-rack-refused")
            person.open("/MAAS/r/settings/")
            shot("settings", full=False)  # the first screen of a long page
            page.fill("#id_ntp_servers", "ntp.example.com bad name!")
            person.submit(".settings-form button[type=submit]")
            page.locator("#error_ntp_servers").scroll_into_view_if_needed()
            shot("settings-error", full=False)
            machine_pages(lab, person, shot)
            images_page(lab, person, shot)
            subnets_page(lab, person, shot)
            person.open("/MAAS/r/controllers/")
            person.wait_live()
            lab.kill_region("region-a")
            page.wait_for_selector("#live-state[data-state=reconnecting]", timeout=5_000)
            shot("reconnecting", full=False)
            person.close()
            browser.close()
        lab.stop()
        lab = None  # the namespace lab next: its own region and racks, with real Kea
        dhcp_lab = DhcpLab(databases)
        try:
            with sync_playwright() as playwright:
                browser = launch_in(playwright, dhcp_lab.region, dhcp_lab.lab.workdir)
                person = UiUser(browser, dhcp_lab.base)
                vlan_pages(dhcp_lab, person, camera(person, out, shots))
                person.close()
                browser.close()
        finally:
            dhcp_lab.close()
    finally:
        if lab is not None:
            lab.stop()
        databases.stop()
    return shots


def machine_pages(lab: UiLab, person: UiUser, shot) -> None:
    """The list with 240 machines, a MAC search, and a machine commissioned as the image does it."""
    page = person.page
    in_thread(run_db, lab.first.process.config, lambda conn: add_machines(conn, 240, prefix="node", mac_base=0xD4))
    person.open("/MAAS/r/machines/")
    shot("machines", full=False)
    page.fill("#id_q", fleet_mac(0xD4, 123))
    person.submit(".filters button[type=submit]")
    shot("machines-search", full=False)
    system_id = "node-0007b"  # node-00123
    person.open(f"/MAAS/r/machine/{system_id}/")
    person.submit("#commission")

    async def token_of(conn):
        return (
            await conn.execute(
                select(node_tokens.c.token)
                .join(nodes, nodes.c.id == node_tokens.c.node_id)
                .where(nodes.c.system_id == system_id)
            )
        ).scalar_one()

    token = in_thread(run_db, lab.first.process.config, token_of)
    with httpx.Client(
        base_url=lab.first.base + "/MAAS/metadata/", timeout=30, headers={"Authorization": f"Token {token}"}
    ) as image:
        image.post("commission/facts", json={"cpu_count": 16, "memory_mib": 65536, "architecture": "amd64/generic"})
        image.post(
            "commission/scripts/00-maas-01-cpuinfo",
            params={"exit_status": 0},
            content=b"model name: AMD EPYC 7B13\ncpu cores: 16\n",
        )
        image.post(
            "commission/scripts/00-maas-02-disks",
            params={"exit_status": 0},
            content=b"NAME SIZE MODEL\nsda 480G SAMSUNG MZ7LH480\nsdb 4T HGST HUS726T4\n",
        )
        image.post("commission/scripts/50-network-check", params={"exit_status": 1}, content=b"eth1: no carrier\n")
        image.post("commission/done", json={"result": "ok", "failed_scripts": ["50-network-check"]})
    page.wait_for_selector("#machine-status .status[data-status='2']", timeout=5_000)
    person.open(f"/MAAS/r/machine/{system_id}/")
    person.wait_live()
    page.click("#commissioning-results summary:has-text('00-maas-02-disks')")
    page.click("#commissioning-results summary:has-text('50-network-check')")
    shot("machine")


def images_page(lab: UiLab, person: UiUser, shot) -> None:
    """An import from a throttled mirror, photographed while it runs and when it is done."""
    page = person.page
    mirror = lab.root / "mirror"
    make_mirror(
        mirror,
        "bookworm",
        {"boot-kernel": secrets.token_bytes(2_000_000), "boot-initrd": secrets.token_bytes(6_000_000)},
    )
    with MirrorServer(mirror, rate=1_500_000) as server:
        person.open("/MAAS/r/images/")
        page.fill("#id_source", server.url)
        person.submit("#start-import")
        page.wait_for_selector("#imports tr[data-state=running] progress:not([value='0.0'])", timeout=15_000)
        shot("images-importing")
        page.wait_for_selector("#imports tr[data-state=done]", timeout=60_000)
    page.wait_for_selector("#rack-caches tr:has-text('serving 1 of 1 image')", timeout=60_000)
    person.open("/MAAS/r/images/")
    shot("images")


def subnets_page(lab: UiLab, person: UiUser, shot) -> None:
    with lab.api() as api:
        fabric = api.post("fabrics/", name="fabric-storage").json()
        vlan = api.post(f"fabrics/{fabric['id']}/vlans/", vid="300", name="storage").json()
        api.post("subnets/", cidr="10.207.0.0/24", vlan=str(vlan["id"]), gateway_ip="10.207.0.1")
        api.post("ipranges/", type="reserved", start_ip="10.207.0.2", end_ip="10.207.0.49", comment="switches and PDUs")
        api.post("subnets/", cidr="10.208.0.0/22", vlan=str(vlan["id"]))
    person.open("/MAAS/r/subnets/")
    shot("subnets")


def vlan_pages(lab: DhcpLab, person: UiUser, shot) -> None:
    """Configure DHCP on the racks' VLAN: the dialog, a refusal, DHCP on, partner-down."""
    page = person.page
    rack1, rack2 = lab.system_id("rack1"), lab.system_id("rack2")
    person.login(ADMIN, lab.ADMIN_PASSWORD)
    person.open("/MAAS/r/subnets/")
    href = page.get_attribute(f"tr[data-cidr='{lab.CIDR}'] th a", "href")
    person.open(href + "?dhcp=configure")
    page.select_option("#id_primary_rack", rack1)
    page.select_option("#id_secondary_rack", rack2)
    shot("vlan-configure-dhcp")
    page.select_option("#id_secondary_rack", rack1)
    person.submit("#submit-dhcp")
    shot("vlan-configure-dhcp-refused")
    page.select_option("#id_secondary_rack", rack2)
    person.submit("#submit-dhcp")
    person.wait_live()
    for system_id in (rack1, rack2):
        page.wait_for_selector(f"#vlan-racks tr[data-system-id='{system_id}'] .dhcpd .status--running", timeout=60_000)
    lab.clients[0].dhcp_udhcpc("pxe", timeout=20)
    person.open(f"/MAAS/r/controller/{rack1}/")
    page.wait_for_selector("#dhcp-vlans .ha-state .status--running", timeout=60_000)
    shot("controller-rack-dhcp-ha")
    person.open(href)
    person.wait_live()
    shot("vlan-dhcp-on")
    for pid in lab.stack.racks["rack1"][0].pids():
        os.kill(pid, signal.SIGKILL)
    page.wait_for_selector(f"#vlan-racks tr[data-system-id='{rack2}'] .dhcpd .status--degraded", timeout=60_000)
    page.wait_for_selector(f"#vlan-racks tr[data-system-id='{rack1}'] .status--dead", timeout=15_000)
    shot("vlan-partner-down")
    person.open(f"/MAAS/r/controller/{rack2}/")
    page.wait_for_selector("#dhcp-vlans .ha-state .status--degraded", timeout=30_000)
    shot("controller-rack-partner-down")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOCS_UI)
    args = parser.parse_args()
    for path in take(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
