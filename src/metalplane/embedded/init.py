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
from metalplane.embedded.daemons import Daemon
from metalplane.embedded.postgres import Cluster
from metalplane.identity import read_secret, write_secret
from metalplane.region import bootstrap
from metalplane.region.bootstrap import run_db
from metalplane.region.services import cluster as cluster_settings
from metalplane.region.services import users

API_WAIT = 90.0


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

    def region_daemon(self) -> Daemon:
        return Daemon("regiond", self.data_dir, ("region", "run", "--config", str(self.config_path)))

    def rack_daemon(self) -> Daemon:
        return Daemon("rackd", self.data_dir, ("rack", "run", "--data-dir", str(self.data_dir)))


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


def wait_for_api(config: RegionConfig, daemon: Daemon, timeout: float = API_WAIT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api_answers(config):
            return
        if daemon.pid() is None:
            raise InitError(f"the region exited during start-up; its log ({daemon.log_file}) ends:\n"
                            + daemon.log_tail())
        time.sleep(0.3)
    raise InitError(f"the region did not answer within {timeout:.0f}s; see {daemon.log_file}")


def create_fresh(layout: Layout, port: int, maas_url: str | None, num_workers: int | None,
                 listen_address: str | None) -> RegionConfig:
    layout.data_dir.mkdir(parents=True, exist_ok=True)
    layout.data_dir.chmod(0o755)
    cluster = layout.cluster
    if not cluster.exists():
        cluster.init()
    if not cluster.is_running():
        cluster.start()
    password = secrets.token_urlsafe(24)
    cluster.ensure_role_and_database("maas", password, "maasdb")
    settings: dict = dict(
        maas_url=maas_url or f"http://localhost:{port}/MAAS",
        database_host=str(cluster.socket_dir),
        database_port=cluster.port,
        database_pass=password,
        port=port,
        rpc_port=port + 10,
        data_dir=str(layout.data_dir),
    )
    if num_workers is not None:
        settings["num_workers"] = num_workers
    if listen_address is not None:
        settings["listen_address"] = listen_address
    config = RegionConfig(**settings)
    save_region_config(layout.config_path, config)
    return config


def rack_ports(api_port: int) -> dict[str, int]:
    """MAAS's ports for the default API port; beside it, ports derived from --port
    so that several data dirs can run side by side."""
    if api_port == 5240:
        return {"tftp_port": 69, "http_port": 5248}
    return {"tftp_port": api_port + 9, "http_port": api_port + 8}


def start_local_rack(layout: Layout, config: RegionConfig, out: Callable[[str], None]) -> None:
    """The all-in-one rack: same data dir (so the same node, a region+rack), same secret."""
    path = rack_config_path(layout.data_dir)
    if not path.exists():
        update_rack_config(path, {"maas_url": [local_api_url(config)], "data_dir": str(layout.data_dir),
                                  "bind_address": config.listen_address, **rack_ports(config.port)})
    daemon = layout.rack_daemon()
    pid = daemon.pid()
    if pid is not None:
        out(f"rack: already running (pid {pid})")
        return
    pid = daemon.start()
    out(f"rack: started (pid {pid}, log {daemon.log_file})")


def init(data_dir: Path, port: int, admin_username: str, admin_password: str | None, admin_email: str,
         maas_url: str | None = None, num_workers: int | None = None,
         listen_address: str | None = None, with_rack: bool = True, out: Callable[[str], None] = print) -> int:
    layout = Layout(data_dir)
    if layout.config_path.exists():
        config = load_region_config(layout.config_path)
        out(f"{data_dir} is already initialised; nothing is re-created.")
        if config.port != port:
            out(f"note: this data dir serves port {config.port} (--port {port} ignored)")
        cluster = layout.cluster
        if cluster.is_running():
            out("PostgreSQL: already running")
        else:
            cluster.start()
            out("PostgreSQL: started")
    else:
        config = create_fresh(layout, port, maas_url, num_workers, listen_address)
        out(f"PostgreSQL: new cluster in {layout.cluster.root} (unix socket {layout.cluster.socket_dir})")
    bootstrap.migrate(config, "metalplane-init")

    async def setup(conn):
        secret = await cluster_settings.shared_secret(conn)
        key, generated = await bootstrap.ensure_admin(conn, admin_username, admin_password, admin_email, "cli")
        return secret, key, generated

    secret, api_key, generated = run_db(config, setup)
    if read_secret(data_dir) is None:
        write_secret(data_dir, secret)

    daemon = layout.region_daemon()
    pid = daemon.pid()
    if pid is not None:
        out(f"region: already running (pid {pid})")
    else:
        pid = daemon.start()
        out(f"region: started (pid {pid}, log {daemon.log_file})")
    wait_for_api(config, daemon)
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


def status(data_dir: Path, out: Callable[[str], None] = print) -> int:
    layout = Layout(data_dir)
    if not layout.config_path.exists() and rack_config_path(data_dir).exists():
        rack_pid = layout.rack_daemon().pid()
        out(f"rackd:      {f'running (pid {rack_pid})' if rack_pid else 'stopped'}")
        return 0 if rack_pid else 3
    if not layout.config_path.exists():
        out(f"{data_dir}: not initialised (run `metalplane init --data-dir {data_dir}`)")
        return 3
    config = load_region_config(layout.config_path)
    healthy = True
    db_up = layout.cluster.is_running()
    out(f"postgresql: {'running' if db_up else 'stopped'} ({layout.cluster.root})")
    healthy &= db_up
    pid = layout.region_daemon().pid()
    answering = pid is not None and api_answers(config)
    state = "running" if answering else ("starting or unhealthy" if pid else "stopped")
    out(f"regiond:    {state}" + (f" (pid {pid}, port {config.port}, {config.num_workers} workers)" if pid else ""))
    healthy &= answering
    if rack_config_path(data_dir).exists():
        rack_pid = layout.rack_daemon().pid()
        out(f"rackd:      {f'running (pid {rack_pid})' if rack_pid else 'stopped'}")
        healthy &= rack_pid is not None
    return 0 if healthy else 3


def stop(data_dir: Path, out: Callable[[str], None] = print) -> int:
    layout = Layout(data_dir)
    if not layout.config_path.exists():
        stopped = layout.rack_daemon().stop()
        out("rackd: stopped" if stopped else f"{data_dir}: nothing running")
        return 0
    if layout.rack_daemon().stop():
        out("rackd: stopped")
    out("regiond: stopped" if layout.region_daemon().stop() else "regiond: was not running")
    cluster = layout.cluster
    if cluster.is_running():
        cluster.stop()
        out("postgresql: stopped")
    else:
        out("postgresql: was not running")
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
