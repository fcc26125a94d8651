"""Regenerate docs/ui/*.png: `python -m tests.browser.screenshots [--out DIR]`.

Starts what the browser tests start (a private PostgreSQL, two regions, two
racks, one of which is then killed), drives Debian's chromium through the same
pages, checks each with axe-core, and saves a PNG of each. Every status shown is
the real one at that moment; the one rack that exists only in the database (for
the DHCP refusal on delete, which must not start Kea on this host) shows as the
dead rack it is.
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.support.databases import TestDatabases, world_traversable_tempdir
from tests.support.processes import wait_until
from tests.browser.support import (
    ADMIN,
    ADMIN_PASSWORD,
    UiLab,
    UiUser,
    check_accessibility,
    launch,
    model_rack,
    serve_dhcp,
)

DOCS_UI = Path(__file__).resolve().parents[2] / "docs" / "ui"
VIEWPORT = {"width": 1280, "height": 760}


def running(page, system_id: str) -> None:
    page.wait_for_selector(f"tr[data-system-id='{system_id}'] .status--running", timeout=30_000)


def take(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    databases = TestDatabases()
    databases.start()
    lab = UiLab(databases, world_traversable_tempdir("mp-ui-shots-"))
    try:
        lab.start()
        racks = [lab.start_rack(name) for name in ("rack1", "rack2")]
        ids = [wait_until(lambda r=r: r.system_id, 30, what="rack registration") for r in racks]
        with sync_playwright() as playwright:
            browser = launch(playwright)
            person = UiUser(browser, lab.first.base)
            person.page.set_viewport_size(VIEWPORT)
            page = person.page

            def shot(name: str, full: bool = True) -> None:
                check_accessibility(page)
                path = out / f"{name}.png"
                page.screenshot(path=str(path), full_page=full)
                shots.append(path)

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
            shot("settings")
            page.fill("#id_ntp_servers", "ntp.example.com bad name!")
            person.submit(".settings-form button[type=submit]")
            shot("settings-error")
            person.open("/MAAS/r/controllers/")
            person.wait_live()
            lab.kill_region("region-a")
            page.wait_for_selector("#live-state[data-state=reconnecting]", timeout=5_000)
            shot("reconnecting", full=False)
            person.close()
            browser.close()
    finally:
        lab.stop()
        databases.stop()
    return shots


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOCS_UI)
    args = parser.parse_args()
    for path in take(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
