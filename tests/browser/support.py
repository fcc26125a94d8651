"""What the browser tests and the screenshot command share: a lab of real regions
and racks on one PostgreSQL, and Debian's chromium driven by Playwright.

Chromium is never downloaded: Playwright launches /usr/bin/chromium (bootstrap.sh
installs it) with the flags that keep it off this machine's closed network.
Every page a test opens is checked with axe-core (vendored under vendor/, not
part of the product); a serious or critical violation fails the test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Response
from sqlalchemy import select

from metalplane.client.http import MaasHttp
from metalplane.region.bootstrap import ensure_defaults, run_db
from metalplane.region.db.tables import region_processes
from metalplane.region.haproxy import RegionServer, render_config
from metalplane.region.services import cluster, connections, racks, users
from metalplane.region.services.controllers import new_system_id
from tests.conftest import make_region_config
from tests.support.databases import TestDatabases
from tests.support.haproxy import Haproxy
from tests.support.netlab import Host, Lab
from tests.support.processes import RackProcess, RegionProcess, free_port_block, wait_until
from tests.support.stack import Stack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
ADMIN, ADMIN_PASSWORD = "admin", "admin-secret-pw"
USER, USER_PASSWORD = "alice", "alice-secret-pw"
BLOCKING_IMPACTS = ("serious", "critical")


def in_thread(func, *args):
    """Run `func` in a thread of its own: Playwright's sync API keeps an event loop
    running in the test's thread, and run_db needs one of its own."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(func, *args).result()


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def launch_in(playwright: Playwright, host: Host, workdir: Path) -> Browser:
    """Chromium inside a lab namespace, as a browser on that host: Playwright starts it
    through a wrapper that enters the namespace (it talks to it over inherited pipes)."""
    wrapper = workdir / f"chromium-in-{host.name}"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {host.netns} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    return playwright.chromium.launch(executable_path=str(wrapper), args=CHROMIUM_ARGS)


class AccessibilityError(AssertionError):
    pass


def accessibility_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now.

    Evaluated through the DevTools protocol, so the page's own Content-Security-
    Policy (script-src 'self') stays on and is exercised by every test.
    """
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    return page.evaluate(
        """async (impacts) => {
        const result = await axe.run(document, {resultTypes: ["violations"]});
        return result.violations.filter(v => impacts.includes(v.impact)).map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => n.target.join(" ") + ": " + n.failureSummary)}));
    }""",
        list(BLOCKING_IMPACTS),
    )


def check_accessibility(page: Page) -> None:
    violations = accessibility_violations(page)
    if violations:
        lines = [f"{v['impact']} {v['id']}: {v['help']}\n    " + "\n    ".join(v["nodes"]) for v in violations]
        raise AccessibilityError(f"{page.url}:\n" + "\n".join(lines))


class UiUser:
    """One browser context (its own cookies), as one person at one browser."""

    def __init__(self, browser: Browser, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.context: BrowserContext = browser.new_context(viewport={"width": 1360, "height": 900})
        self.page: Page = self.context.new_page()

    def open(self, path: str, check: bool = True) -> Response:
        """Go to `path` on this user's region (or a full URL) and check the page's accessibility."""
        url = path if path.startswith("http") else self.base_url + path
        response = self.page.goto(url)
        assert response is not None
        if check:
            check_accessibility(self.page)
        return response

    def login(self, username: str, password: str, base_url: str | None = None) -> Page:
        self.open((base_url or self.base_url) + "/MAAS/accounts/login/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        self.submit(".login-card button[type=submit]")
        return self.page

    def submit(self, selector: str) -> Response | None:
        """Click what submits a form and wait for the page it leads to; check that page."""
        with self.page.expect_navigation() as navigation:
            self.page.click(selector)
        check_accessibility(self.page)
        return navigation.value

    def wait_live(self, timeout: float = 10_000) -> None:
        """Until the page's event stream is connected."""
        self.page.wait_for_selector("#live-state[data-state=live]", timeout=timeout)

    def cookie(self, name: str) -> str | None:
        return next((c["value"] for c in self.context.cookies() if c["name"] == name), None)

    def close(self) -> None:
        self.context.close()


class LocalProcess(subprocess.Popen):
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Loopback:
    """testing.haproxy's `host`, on this machine's loopback rather than in a namespace:
    the browser runs here, and HAProxy binds 127.0.0.1 only."""

    def spawn(self, cmd: list[str], log: Path) -> LocalProcess:
        with open(log, "ab") as out:
            proc = LocalProcess(cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True)
        proc.log_path = log
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 5.0) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def start_haproxy(root: Path, regions: list[Region]) -> tuple[Haproxy, str]:
    """The generated HAProxy config (`metalplane region haproxy-config`) in front of `regions`."""
    port = free_port_block(1)
    servers = [RegionServer(r.name, "127.0.0.1", r.process.config.port) for r in regions]
    config = root / "haproxy.cfg"
    stats = root / "haproxy.sock"
    config.write_text(render_config(servers, f"127.0.0.1:{port}", stats_socket=str(stats)))
    proxy = Haproxy(config, stats, Loopback())
    proxy.start()
    return proxy, f"http://127.0.0.1:{port}"


@dataclass
class Region:
    name: str
    process: RegionProcess

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.process.config.port}"


class UiLab:
    """Regions on one database, an admin and a non-admin user with passwords, racks on demand."""

    def __init__(self, databases: TestDatabases, root: Path, regions: tuple[str, ...] = ("region-a", "region-b")):
        self.databases = databases
        self.root = root
        self.dbname = databases.new_database()
        self.regions: dict[str, Region] = {}
        self.racks: list[RackProcess] = []
        self.names = regions
        self.api_key = ""
        self.secret = ""

    def start(self) -> UiLab:
        for name in self.names:
            self.start_region(name)
        return self

    def start_region(self, name: str, num_workers: int = 2) -> Region:
        config = make_region_config(self.databases, self.dbname, self.root / name / "data", num_workers, name)
        if not self.api_key:
            self.api_key = in_thread(run_db, config, _make_users)
        process = RegionProcess(config, self.root / name)
        process.start_and_wait()
        if not self.secret:
            self.secret = in_thread(run_db, config, cluster.shared_secret)
        self.regions[name] = Region(name, process)
        return self.regions[name]

    def restart_region(self, name: str) -> Region:
        old = self.regions[name].process
        process = RegionProcess(old.config, self.root / f"{name}-again")
        process.start_and_wait()
        self.regions[name] = Region(name, process)
        return self.regions[name]

    def kill_region(self, name: str) -> None:
        """kill -9 of the region's supervisor and its workers (by PID)."""
        process = self.regions[name].process
        workers = process.worker_pids()
        process.kill(signal.SIGKILL)
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    @property
    def first(self) -> Region:
        return next(iter(self.regions.values()))

    def api(self, region: str | None = None) -> MaasHttp:
        target = self.regions[region] if region else self.first
        return MaasHttp(target.process.url, self.api_key)

    def start_rack(self, name: str) -> RackProcess:
        urls = [r.process.url for r in self.regions.values()]
        rack = RackProcess(self.root / name, urls, self.secret, name)
        rack.start()
        self.racks.append(rack)
        return rack

    def stop(self) -> None:
        for rack in self.racks:
            rack.stop()
        for region in self.regions.values():
            region.process.stop()
        self.databases.drop_database(self.dbname)
        shutil.rmtree(self.root, ignore_errors=True)


async def _make_users(conn) -> str:
    await ensure_defaults(conn)
    admin = await users.create_user(conn, ADMIN, ADMIN_PASSWORD, "admin@example.com", is_superuser=True)
    await users.create_user(conn, USER, USER_PASSWORD, "alice@example.com", is_superuser=False)
    return (await users.create_token(conn, admin.id, "browser tests")).api_key


def model_rack(lab: UiLab, cidr_prefix: str, connected: bool) -> str:
    """A rack known to the model only, with an interface on CIDR_PREFIX.0/24.

    DHCP rules are about the model; a real rack process given DHCP duties on this host
    would start Kea on the host's interfaces, which tests must never do. `connected`
    records a connection to a live worker (the region then judges it running);
    otherwise it is what it is, a registered rack that is not there (dead).
    """
    system_id = new_system_id()

    async def add(conn):
        node_id = await racks.register_rack(
            conn,
            system_id,
            f"dhcp-{system_id}",
            "0.1.0",
            [{"name": "eth0", "mac": "52:54:00:dd:00:01", "addresses": [f"{cidr_prefix}.2/24"]}],
        )
        if connected:
            process = (await conn.execute(select(region_processes.c.id).limit(1))).scalar_one()
            await connections.add_connection(conn, node_id, process)

    in_thread(run_db, lab.first.process.config, add)
    return system_id


def serve_dhcp(lab: UiLab, cidr_prefix: str, system_id: str) -> str:
    """Through the API: a dynamic range on CIDR_PREFIX.0/24 and DHCP on from `system_id`; the VLAN's path."""
    with lab.api() as api:
        subnet = next(s for s in api.get("subnets/").json() if s["cidr"] == f"{cidr_prefix}.0/24")
        api.post("ipranges/", type="dynamic", start_ip=f"{cidr_prefix}.100", end_ip=f"{cidr_prefix}.150")
        vlan = f"fabrics/{subnet['vlan']['fabric_id']}/vlans/{subnet['vlan']['vid']}/"
        answer = api.put(vlan, primary_rack=system_id, dhcp_on="true")
        assert answer.status_code == 200, answer.text
    return vlan


class DhcpLab:
    """A region and two racks on one VLAN in network namespaces, with real Kea, and
    hosts for DHCP clients; the browser runs on the region's host (`launch_in`).
    The admin is the Stack's (admin / admin-password); USER is a non-admin."""

    CIDR = "10.61.0.0/24"
    REGION_IP = "10.61.0.10"
    ADMIN_PASSWORD = "admin-password"

    def __init__(self, databases: TestDatabases, clients: int = 2):
        self.lab = Lab().start()
        try:
            self.lab.add_network("pxe", self.CIDR)
            self.region = self.lab.add_host("region", {"pxe": f"{self.REGION_IP}/24"})
            hosts = {
                name: self.lab.add_host(name, {"pxe": f"10.61.0.{n}/24"}) for n, name in ((2, "rack1"), (3, "rack2"))
            }
            self.stack = Stack(self.lab, databases)
            config = self.stack.start_region(self.region, "pxe")
            in_thread(run_db, config, _make_user)
            for name, host in hosts.items():
                self.stack.add_rack(host, name)
                self.stack.start_rack(name)
            wait_until(lambda: len(self.stack.api("rack-controllers", "read")) == 2, 60, what="both racks registered")
            self.clients = [self.lab.add_host(f"c{i}", {"pxe": None}) for i in range(1, clients + 1)]
        except BaseException:
            self.lab.close()
            raise

    @property
    def base(self) -> str:
        return f"http://{self.REGION_IP}:5240"

    def system_id(self, rack: str) -> str:
        found = self.stack.rack_system_id(rack)
        assert found, rack
        return found

    def kea_pids(self, rack: str) -> list[int]:
        host = self.stack.racks[rack][0]
        return [pid for pid in host.pids() if Path(f"/proc/{pid}/comm").read_text().strip() == "kea-dhcp4"]

    def close(self) -> None:
        self.lab.close()


async def _make_user(conn) -> None:
    await users.create_user(conn, USER, USER_PASSWORD, "alice@example.com", is_superuser=False)
