"""PostgreSQL with streaming replication for tests: a primary and standbys as
real `postgres` processes, killed, stopped and promoted by PID.

Each node either runs in a netlab host's namespace and listens on that host's
lab address (every node can use port 5432), or runs in this namespace on
127.0.0.1 with a port of its own. Every node also has a unix socket in its
own directory, which the test process uses to look inside (sockets are files,
not network addresses, so this works across namespaces).

Replication is synchronous (`synchronous_standby_names` names the standbys,
`synchronous_commit = on`): a COMMIT returns only once a standby has the WAL
on disk, so an acknowledged write survives the primary's death. Standbys have
no `synchronous_standby_names` of their own: once promoted they must accept
writes without a standby (what Patroni's non-strict synchronous mode does).

    with Lab() as lab:
        lab.add_network("db", "10.70.0.0/24")
        hosts = {n: lab.add_host(n, {"db": f"10.70.0.{i}/24"}) for i, n in ((21, "db1"), (22, "db2"))}
        pg = PgCluster(lab.new_workdir("pg"), [PgNode.in_host("db1", hosts["db1"], "db"), ...])
        pg.start("10.70.0.0/24")
        pg.primary.kill(); pg.nodes["db2"].promote()
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from metalplane.config.region import RegionConfig
from metalplane.embedded.postgres import Cluster, PostgresError, cluster_owner, find_pg_bin, quote_literal
from tests.support.databases import world_traversable_tempdir

ROLE = "maas"
PASSWORD = "test-only-password"
DBNAME = "maasdb"
REPLICATION_ROLE = "replicator"
REPLICATION_PASSWORD = "test-only-replication"


def _pids_in_group(pgid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    found.append(int(entry))
            except ProcessLookupError:
                pass
    return found


@dataclass
class PgNode:
    """One PostgreSQL server. `host` is a netlab Host (or None: this namespace)."""

    name: str
    address: str
    port: int = 5432
    host: object | None = None
    root: Path | None = None
    proc: subprocess.Popen | None = None
    _log: object | None = field(default=None, repr=False)

    @classmethod
    def in_host(cls, name: str, host, network: str, port: int = 5432) -> PgNode:
        return cls(name, host.ip(network), port, host)

    @classmethod
    def local(cls, name: str, port: int) -> PgNode:
        return cls(name, "127.0.0.1", port)

    @property
    def cluster(self) -> Cluster:
        assert self.root is not None, "node not set up"
        return Cluster(self.root, self.port)

    @property
    def data(self) -> Path:
        return self.cluster.data

    @property
    def dsn_host(self) -> str:
        """`address:port` as regiond.conf's database_host takes it."""
        return f"{self.address}:{self.port}"

    def _owner_cmd(self, cmd: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return cmd
        return [
            "setpriv",
            f"--reuid={self.cluster.owner}",
            f"--regid={self.cluster.owner}",
            "--init-groups",
            "--",
            *cmd,
        ]

    # -- processes ---------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """Run the postmaster in the foreground (its own process group), wait until it answers."""
        if self.alive():
            return
        cmd = self._owner_cmd([str(find_pg_bin() / "postgres"), "-D", str(self.data)])
        log = self.root / "postgres.log"
        if self.host is not None:
            self.proc = self.host.spawn(cmd, log=log, cwd=self.root)
        else:
            with open(log, "ab") as out:
                self.proc = subprocess.Popen(
                    cmd,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=self.root,
                    start_new_session=True,
                )
        deadline = time.monotonic() + timeout
        while not self.answers():
            if not self.alive():
                raise PostgresError(f"{self.name}: postgres exited:\n{self.log()[-2000:]}")
            if time.monotonic() > deadline:
                raise PostgresError(f"{self.name}: postgres did not answer in {timeout}s:\n{self.log()[-2000:]}")
            time.sleep(0.1)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.alive() else None

    def answers(self) -> bool:
        proc = subprocess.run(
            [str(find_pg_bin() / "pg_isready"), "-q", "-h", str(self.cluster.socket_dir), "-p", str(self.port)],
            check=False,
            capture_output=True,
        )
        return proc.returncode == 0

    def kill(self) -> None:
        """kill -9 of the postmaster and every backend (its process group): a crash."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        for pid in [pgid, *_pids_in_group(pgid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)
        deadline = time.monotonic() + 10
        while _pids_in_group(pgid) and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT); kill -9 if it takes too long."""
        if not self.alive():
            self.kill()  # leftover backends of a killed postmaster, if any
            return
        os.kill(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def promote(self, timeout: int = 60) -> None:
        """`pg_ctl promote -w`: returns once the standby accepts writes."""
        self.cluster._run([str(find_pg_bin() / "pg_ctl"), "-D", str(self.data), "-w", "-t", str(timeout), "promote"])

    def log(self) -> str:
        try:
            return (self.root / "postgres.log").read_text(errors="replace")
        except (FileNotFoundError, TypeError):
            return ""

    # -- inside ------------------------------------------------------------------------

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        return self.cluster.psql(sql, dbname)

    def in_recovery(self) -> bool:
        return self.psql("SELECT pg_is_in_recovery();") == "t"


class PgCluster:
    """A primary (the first node) and streaming standbys, synchronous."""

    def __init__(self, root: Path | None, nodes: list[PgNode], max_connections: int = 200):
        """root: a directory PostgreSQL's user can enter (default: a new one under /tmp,
        removed by stop())."""
        self.owns_root = root is None
        self.root = root or world_traversable_tempdir("mp-pgcluster-")
        self.node_list = nodes
        self.nodes = {n.name: n for n in nodes}
        self.max_connections = max_connections
        for node in nodes:
            node.root = self.root / node.name

    @property
    def primary(self) -> PgNode:
        return self.node_list[0]

    @property
    def standbys(self) -> list[PgNode]:
        return self.node_list[1:]

    def start(self, allow: str = "127.0.0.1/32", sync: bool = True) -> None:
        """initdb the primary, create the region's role and database, clone and start the standbys.

        allow: the CIDR that may connect over TCP (the regions' and standbys' network).
        """
        primary = self.primary
        primary.cluster.init(max_connections=self.max_connections)
        names = ", ".join(f'"{s.name}"' for s in self.standbys)
        sync_names = f"FIRST 1 ({names})" if sync and self.standbys else ""
        settings = [
            "# metalplane test cluster: streaming replication",
            f"listen_addresses = '{primary.address}'",
            "wal_level = replica",
            "max_wal_senders = 10",
            "wal_keep_size = '128MB'",
            "wal_log_hints = on",
            "hot_standby = on",
            "wal_sender_timeout = '10s'",
            "wal_receiver_status_interval = '1s'",
            "shared_buffers = '32MB'",
            "synchronous_commit = on",
            "",
        ]
        with open(primary.data / "postgresql.conf", "a") as fh:
            fh.write("\n".join(settings))
        owner = cluster_owner()
        hba = "\n".join(
            [
                f"local all {owner} peer",
                f"local replication {owner} peer",
                "local all all scram-sha-256",
                f"host replication {REPLICATION_ROLE} {allow} scram-sha-256",
                f"host all all {allow} scram-sha-256",
                "",
            ]
        )
        (primary.data / "pg_hba.conf").write_text(hba)
        primary.start()
        primary.cluster.ensure_role_and_database(ROLE, PASSWORD, DBNAME)
        primary.psql(
            f"CREATE ROLE {REPLICATION_ROLE} LOGIN REPLICATION PASSWORD {quote_literal(REPLICATION_PASSWORD)};"
        )
        for standby in self.standbys:
            self.clone(standby, primary)
            standby.start()
        if sync_names:
            # Only now: with no standby yet, every COMMIT (even CREATE ROLE) would wait forever.
            self.set_sync_standbys(primary, sync_names)
            self.wait_sync(primary)

    def set_sync_standbys(self, node: PgNode, value: str) -> None:
        """synchronous_standby_names in postgresql.conf (so clones, which override it, stay async), reloaded."""
        with open(node.data / "postgresql.conf", "a") as fh:
            fh.write(f"synchronous_standby_names = {quote_literal(value)}\n")
        node.psql("SELECT pg_reload_conf();")

    def clone(self, standby: PgNode, source: PgNode) -> None:
        """pg_basebackup of `source` (over its unix socket), then stream from it over TCP."""
        root = standby.root
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        (root / "run").mkdir(mode=0o755, exist_ok=True)
        owner = source.cluster.owner
        info = pwd.getpwnam(owner)
        for path in (root, root / "run"):
            os.chown(path, info.pw_uid, info.pw_gid)
        source.cluster._run(
            [
                str(find_pg_bin() / "pg_basebackup"),
                "-h",
                str(source.cluster.socket_dir),
                "-p",
                str(source.port),
                "-U",
                owner,
                "-D",
                str(standby.data),
                "-X",
                "stream",
                "-c",
                "fast",
            ]
        )
        conninfo = (
            f"host={source.address} port={source.port} user={REPLICATION_ROLE} "
            f"password={REPLICATION_PASSWORD} application_name={standby.name} connect_timeout=2"
        )
        settings = [
            "# metalplane test cluster: this node is a standby",
            f"listen_addresses = '{standby.address}'",
            f"port = {standby.port}",
            f"unix_socket_directories = '{standby.cluster.socket_dir}'",
            f"primary_conninfo = {quote_literal(conninfo)}",
            "wal_retrieve_retry_interval = '1s'",
            "synchronous_standby_names = ''",
            "",
        ]
        with open(standby.data / "postgresql.conf", "a") as fh:
            fh.write("\n".join(settings))
        signal_file = standby.data / "standby.signal"
        signal_file.touch()
        os.chown(signal_file, info.pw_uid, info.pw_gid)
        for name in ("postmaster.pid", "postmaster.opts"):
            (standby.data / name).unlink(missing_ok=True)

    def wait_sync(self, primary: PgNode, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            state = primary.psql(
                "SELECT string_agg(application_name || '=' || state || '/' || sync_state, ',') "
                "FROM pg_stat_replication;"
            )
            if "streaming/sync" in state:
                return
            if time.monotonic() > deadline:
                raise PostgresError(f"no synchronous standby after {timeout}s: {state!r}")
            time.sleep(0.1)

    def region_config(self, **overrides) -> RegionConfig:
        """A region config listing every node (libpq picks the writable one)."""
        return RegionConfig(
            database_host=[n.dsn_host for n in self.node_list],
            database_name=DBNAME,
            database_user=ROLE,
            database_pass=PASSWORD,
            **overrides,
        )

    def stop(self) -> None:
        errors = []
        for node in self.node_list:
            try:
                node.stop()
            except Exception as exc:  # stop the rest anyway
                errors.append(f"{node.name}: {exc}")
        if errors:
            raise PostgresError("; ".join(errors))
        if self.owns_root:
            shutil.rmtree(self.root, ignore_errors=True)
