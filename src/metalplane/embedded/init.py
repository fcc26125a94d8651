"""`metalplane init`, `status`, `stop`: the embedded default on one host.

Everything lives under one data dir: the PostgreSQL cluster (db/), the region
config (regiond.conf), the shared secret (secret), pid files (run/) and logs
(log/). Running `init` again never re-creates what exists; it starts whatever
is not running and says what already runs.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from metalplane.config.rack import rack_config_path, update_rack_config
from metalplane.config.region import (
    REGION_CONFIG_NAME,
    RegionConfig,
    load_region_config,
    save_region_config,
)
from metalplane.embedded.daemons import NO_SYSTEMD, Service, SystemdService, data_dir_service, systemd_running
from metalplane.embedded.external_db import DatabaseRefused, DatabaseSettings, check_database, where
from metalplane.embedded.postgres import Cluster
from metalplane.embedded.service_units import (
    install_units,
    planned_units,
    uses_embedded_db,
    write_data_dir_units,
)
from metalplane.embedded.units import unit_names, units_dir
from metalplane.identity import read_secret, read_system_id, write_secret
from metalplane.rack.cluster_state import ClusterState
from metalplane.region import bootstrap
from metalplane.region.bootstrap import run_db
from metalplane.region.services import cluster as cluster_settings
from metalplane.region.services import users

API_WAIT = 90.0
INIT_STEPS = 6
Say = Callable[[str], None]


class InitError(Exception):
    pass


@dataclass(frozen=True)
class Layout:
    data_dir: Path

    @property
    def config_path(self) -> Path:
        return self.data_dir / REGION_CONFIG_NAME

    @property
    def cluster(self) -> Cluster:
        return Cluster(self.data_dir / "db")

    def region_daemon(self) -> Service:
        return data_dir_service(self.data_dir, "regiond")

    def rack_daemon(self) -> Service:
        return data_dir_service(self.data_dir, "rackd")

    def embedded_db(self, config: RegionConfig) -> bool:
        return uses_embedded_db(self.data_dir, config.database_host)


def api_url(config: RegionConfig) -> str:
    return config.maas_url.rstrip("/") + "/"


def local_api_url(config: RegionConfig) -> str:
    host = "127.0.0.1" if config.listen_address in ("0.0.0.0", "::") else config.listen_address
    return f"http://{host}:{config.port}/MAAS/"


def api_answers(config: RegionConfig) -> bool:
    try:
        return httpx.get(local_api_url(config) + "api/2.0/version/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for_api(config: RegionConfig, daemon: Service, timeout: float = API_WAIT) -> None:
    """Until the API answers; an exit of the region meanwhile (its manager restarts it) is a failure."""
    deadline = time.monotonic() + timeout
    first_pid = None
    while time.monotonic() < deadline:
        if api_answers(config):
            return
        main = daemon.main_pid()
        if daemon.pid() is None or (first_pid is not None and main != first_pid):
            raise InitError(
                f"the region exited during start-up; its log ({daemon.where_logs()}) ends:\n" + daemon.log_tail()
            )
        first_pid = first_pid or main
        time.sleep(0.3)
    raise InitError(f"the region did not answer within {timeout:.0f}s; see {daemon.where_logs()}")


def start_embedded_db(layout: Layout, systemd: bool) -> None:
    """The cluster runs under its unit with systemd, else under pg_ctl."""
    if systemd:
        SystemdService("postgresql", unit_names(layout.data_dir).postgresql).start()
    else:
        layout.cluster.start()


def region_settings(
    layout: Layout, port: int, maas_url: str | None, num_workers: int | None, listen_address: str | None
) -> dict:
    settings: dict = dict(
        maas_url=maas_url or f"http://localhost:{port}/MAAS",
        port=port,
        rpc_port=port + 10,
        data_dir=str(layout.data_dir),
        **region_service_ports(port),
    )
    if num_workers is not None:
        settings["num_workers"] = num_workers
    if listen_address is not None:
        settings["listen_address"] = listen_address
    return settings


def create_fresh(layout: Layout, settings: dict, systemd: bool) -> RegionConfig:
    """A new cluster under the data dir (already created), its role and database, and regiond.conf."""
    cluster = layout.cluster
    if not cluster.exists():
        cluster.init()
    if not cluster.is_running():
        start_embedded_db(layout, systemd)
    password = secrets.token_urlsafe(24)
    cluster.ensure_role_and_database("maas", password, "maasdb")
    config = RegionConfig(
        **settings, database_host=str(cluster.socket_dir), database_port=cluster.port, database_pass=password
    )
    save_region_config(layout.config_path, config)
    return config


def external_config(layout: Layout, settings: dict, database: DatabaseSettings) -> RegionConfig:
    """Check the external database first: on any refusal nothing is written."""
    try:
        config = RegionConfig(**settings, **database.config_values())
    except ValueError as exc:
        raise InitError(f"invalid database settings: {exc}") from None
    try:
        check_database(config, read_system_id(layout.data_dir))
    except DatabaseRefused as exc:
        raise InitError(str(exc)) from None
    return config


def region_service_ports(api_port: int) -> dict[str, int]:
    """The region's named and chronyd: the port plan's for the default API port
    (docs/architecture.md), else derived from --port (several data dirs side by side)."""
    if api_port == 5240:
        return {"dns_port": 5247, "dns_control_port": 5245, "ntp_port": 123}
    return {"dns_port": api_port + 7, "dns_control_port": api_port + 5, "ntp_port": api_port + 2}


def rack_ports(api_port: int) -> dict[str, int]:
    """MAAS's ports for the default API port; beside it, ports derived from --port
    so that several data dirs can run side by side. (The host's one chronyd is the
    region's: the rack runs none, see rack.host_services.)"""
    if api_port == 5240:
        return {"tftp_port": 69, "http_port": 5248, "dns_port": 53, "dns_control_port": 5246}
    return {
        "tftp_port": api_port + 9,
        "http_port": api_port + 8,
        "dns_port": api_port + 1,
        "dns_control_port": api_port + 6,
    }


def start_local_rack(layout: Layout, config: RegionConfig, out: Say) -> None:
    """The all-in-one rack: same data dir (so the same node, a region+rack), same secret."""
    path = rack_config_path(layout.data_dir)
    if not path.exists():
        update_rack_config(
            path,
            {
                "maas_url": [local_api_url(config)],
                "data_dir": str(layout.data_dir),
                "bind_address": config.listen_address,
                **rack_ports(config.port),
            },
        )
        ClusterState(layout.data_dir).request_registration()
    daemon = layout.rack_daemon()
    pid = daemon.pid()
    if pid is not None:
        out(f"rack: already running (pid {pid})")
        return
    pid = daemon.start()
    out(f"rack: started (pid {pid}, log {daemon.where_logs()})")


def init(
    data_dir: Path,
    port: int,
    admin_username: str,
    admin_password: str | None,
    admin_email: str,
    maas_url: str | None = None,
    num_workers: int | None = None,
    listen_address: str | None = None,
    with_rack: bool = True,
    database: DatabaseSettings | None = None,
    out: Say = print,
    step: Say = lambda label: None,
) -> int:
    layout = Layout(data_dir)
    systemd = systemd_running()
    settings = region_settings(layout, port, maas_url, num_workers, listen_address)
    existing = layout.config_path.exists()
    step("checking the data dir and the database")
    if existing:
        config = load_region_config(layout.config_path)
        out(f"{data_dir} is already initialised; nothing is re-created.")
        if config.port != port:
            out(f"note: this data dir serves port {config.port} (--port {port} ignored)")
        if database is not None:
            out(
                "note: --database-* ignored: this data dir has its database already "
                "(change it with `metalplane region local-config-set`)"
            )
    elif database is not None:
        config = external_config(layout, settings, database)
    embedded = layout.embedded_db(config) if existing or database is not None else True

    step("writing the service units")
    layout.data_dir.mkdir(parents=True, exist_ok=True)
    layout.data_dir.chmod(0o755)
    units = planned_units(
        data_dir, region=True, rack=with_rack or rack_config_path(data_dir).exists(), embedded_db=embedded
    )
    write_data_dir_units(data_dir, units)
    if systemd:
        for line in install_units(units):
            out(line)
    else:
        out(NO_SYSTEMD.format(units=units_dir(data_dir), run=data_dir / "run", log=data_dir / "log"))

    step("starting PostgreSQL" if embedded else "using the external PostgreSQL")
    if not existing and database is not None:
        save_region_config(layout.config_path, config)
        out(f"PostgreSQL: external, {where(config)}")
    elif not existing:
        config = create_fresh(layout, settings, systemd)
        out(f"PostgreSQL: new cluster in {layout.cluster.root} (unix socket {layout.cluster.socket_dir})")
    elif embedded:
        if layout.cluster.is_running():
            out("PostgreSQL: already running")
        else:
            start_embedded_db(layout, systemd)
            out("PostgreSQL: started")

    step("migrating the database and creating the admin")
    bootstrap.migrate(config, "metalplane-init")

    async def setup(conn):
        secret = await cluster_settings.shared_secret(conn)
        key, generated = await bootstrap.ensure_admin(conn, admin_username, admin_password, admin_email, "cli")
        return secret, key, generated

    secret, api_key, generated = run_db(config, setup)
    if read_secret(data_dir) is None:
        write_secret(data_dir, secret)

    step("starting the region")
    daemon = layout.region_daemon()
    pid = daemon.pid()
    if pid is not None:
        out(f"region: already running (pid {pid})")
    else:
        pid = daemon.start()
        out(f"region: started (pid {pid}, log {daemon.where_logs()})")
    wait_for_api(config, daemon)
    step("starting the rack" if with_rack else "done")
    if with_rack:
        start_local_rack(layout, config, out)

    url = api_url(config)
    out("")
    out(f"MAAS URL:      {url}")
    out(f"Web UI:        {url}r/ (log in as {admin_username})")
    out(f"API key:       {api_key}")
    if generated:
        out(f"Admin user:    {admin_username} (generated password: {generated})")
    out(f"Shared secret: {data_dir / 'secret'}")
    out("")
    out("Log in with:")
    out(f"  metalplane login {admin_username} {url} {api_key}")
    return 0


def _service_line(name: str, daemon: Service, state: str | None = None) -> str:
    pid, main = daemon.pid(), daemon.main_pid()
    if pid is None:
        return f"{name}:{' ' * (11 - len(name))}stopped"
    detail = f"pid {main}, keeper {pid}" if main is not None and main != pid else f"pid {pid}"
    return f"{name}:{' ' * (11 - len(name))}{state or 'running'} ({detail})"


def _rack_lines(layout: Layout, out: Say) -> bool:
    daemon = layout.rack_daemon()
    out(_service_line("rackd", daemon))
    note = ClusterState(layout.data_dir).unregistered
    if note and daemon.pid() is None:
        out(f"            {note}")
    return daemon.pid() is not None


def status(data_dir: Path, out: Say = print) -> int:
    layout = Layout(data_dir)
    if not layout.config_path.exists() and rack_config_path(data_dir).exists():
        return 0 if _rack_lines(layout, out) else 3
    if not layout.config_path.exists():
        out(f"{data_dir}: not initialised (run `metalplane init --data-dir {data_dir}`)")
        return 3
    config = load_region_config(layout.config_path)
    healthy = True
    if layout.embedded_db(config):
        db_up = layout.cluster.is_running()
        out(f"postgresql: {'running' if db_up else 'stopped'} ({layout.cluster.root})")
        healthy &= db_up
    else:
        out(f"postgresql: external ({where(config)})")
    daemon = layout.region_daemon()
    answering = daemon.pid() is not None and api_answers(config)
    line = _service_line("regiond", daemon, "running" if answering else "starting or unhealthy")
    out(line + (f", port {config.port}, {config.num_workers} workers" if daemon.pid() else ""))
    healthy &= answering
    if rack_config_path(data_dir).exists():
        healthy &= _rack_lines(layout, out)
    return 0 if healthy else 3


def stop(data_dir: Path, out: Say = print) -> int:
    """Stop what `init` started (with systemd: `systemctl stop`; the units stay enabled)."""
    layout = Layout(data_dir)
    if not layout.config_path.exists():
        stopped = layout.rack_daemon().stop()
        out("rackd: stopped" if stopped else f"{data_dir}: nothing running")
        return 0
    if layout.rack_daemon().stop():
        out("rackd: stopped")
    out("regiond: stopped" if layout.region_daemon().stop() else "regiond: was not running")
    if not layout.embedded_db(load_region_config(layout.config_path)):
        return 0
    cluster = layout.cluster
    if not cluster.is_running():
        out("postgresql: was not running")
        return 0
    unit = SystemdService("postgresql", unit_names(data_dir).postgresql)
    if systemd_running() and unit.pid() is not None:
        unit.stop()
    else:
        cluster.stop()
    out("postgresql: stopped")
    return 0


def apikey(config: RegionConfig, username: str, generate: bool = False) -> str:
    async def work(conn) -> str:
        user = await users.get_user(conn, username)
        if user is None:
            raise InitError(f"no user named {username!r}")
        tokens = await users.list_tokens(conn, user.id)
        if generate or not tokens:
            return (await users.create_token(conn, user.id, "cli")).api_key
        return tokens[0].api_key

    return run_db(config, work)


def createadmin(config: RegionConfig, username: str, password: str, email: str) -> str:
    try:
        return run_db(config, lambda conn: bootstrap.create_admin(conn, username, password, email, "cli"))
    except bootstrap.AdminExists as exc:
        raise InitError(str(exc)) from None
