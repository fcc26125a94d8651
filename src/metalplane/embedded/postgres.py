"""A private PostgreSQL cluster under a data dir, run from the system's binaries.

PostgreSQL refuses to run as root, so when we are root the cluster belongs to
the `postgres` system user. The cluster listens only on a unix socket inside
the data dir until a second region is allowed in (`allow_host`, the
`metalplane db allow-region` command): then also on the TCP address this
host uses to reach that region, with a pg_hba.conf line for it alone.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from metalplane.file_layout import Under

PG_ROOT = Path("/usr/lib/postgresql")
MIN_PG_MAJOR = 15
SOCKET_PORT = 5432
HBA_METHOD = "scram-sha-256"
LISTEN_RE = re.compile(r"^\s*listen_addresses\s*=?\s*'([^']*)'")


class PostgresError(Exception):
    """The cluster can't be found, set up or reached; the message says which and how to fix it."""


def _socket_for(address: str, kind: int) -> tuple[socket.socket, str]:
    ip = ipaddress.ip_address(address)
    return socket.socket(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, kind), str(ip)


def local_address_towards(address: str) -> str:
    """The address this host uses to reach `address` (the kernel's route choice; nothing is sent)."""
    sock, ip = _socket_for(address, socket.SOCK_DGRAM)
    with sock:
        try:
            sock.connect((ip, 5432))
        except OSError as exc:
            raise PostgresError(f"no route from this host to {address}: {exc}") from None
        return sock.getsockname()[0]


def is_local_address(address: str) -> bool:
    sock, ip = _socket_for(address, socket.SOCK_STREAM)
    with sock:
        try:
            sock.bind((ip, 0))
        except OSError:
            return False
    return True


def merge_listen_addresses(current: str, add: str) -> str:
    """Add one address to a listen_addresses value ('*' already covers everything)."""
    parts = [p.strip() for p in current.split(",") if p.strip()]
    if "*" in parts or add in parts:
        return ",".join(parts)
    return ",".join([*parts, add])


def hba_allows(lines: list[str], dbname: str, user: str, cidr: str) -> bool:
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if (
            len(fields) >= 5
            and fields[0] in ("host", "hostssl")
            and fields[1] == dbname
            and fields[2] == user
            and fields[3] == cidr
        ):
            return True
    return False


@dataclass(frozen=True)
class AllowResult:
    """What `Cluster.allow_host` did."""

    hba_line: str
    hba_added: bool
    listen_before: str  # what the server listened on (or was configured to, when stopped)
    listen_after: str  # what postgresql.conf says now
    restarted: bool
    restart_needed: bool  # listen_addresses changed but restart=False (or the server is stopped)
    reloaded: bool


def find_pg_bin() -> Path:
    """Newest supported major under /usr/lib/postgresql, or $METALPLANE_PG_BIN."""
    env = os.environ.get("METALPLANE_PG_BIN")
    if env:
        return Path(env)
    majors = sorted(
        (int(p.name) for p in PG_ROOT.glob("*") if p.name.isdigit() and (p / "bin" / "postgres").exists()),
        reverse=True,
    )
    if not majors or majors[0] < MIN_PG_MAJOR:
        raise PostgresError(
            f"PostgreSQL {MIN_PG_MAJOR}+ server binaries not found under {PG_ROOT}: "
            f"install the postgresql-{MIN_PG_MAJOR} package"
        )
    return PG_ROOT / str(majors[0]) / "bin"


def cluster_owner() -> str:
    return "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


def unreachable_parent(path: Path, user: str) -> Path | None:
    """First ancestor of `path` that `user` cannot traverse, if any."""
    info = pwd.getpwnam(user)
    for parent in reversed(path.resolve().parents):
        st = parent.stat()
        if st.st_uid == info.pw_uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid == info.pw_gid:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            return parent
    return None


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def quote_ident(value: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", value):
        raise PostgresError(f"invalid PostgreSQL identifier {value!r}")
    return value


@dataclass
class Cluster:
    root: Path
    port: int = SOCKET_PORT

    data = Under("data", base="root")
    socket_dir = Under("run", base="root")
    log_file = Under("postgres.log", base="root")

    @property
    def owner(self) -> str:
        return cluster_owner()

    def exists(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self._run([str(find_pg_bin() / "pg_ctl"), "-D", str(self.data), *args], check=check)

    def _run(self, args: list[str], input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        owner = pwd.getpwnam(self.owner)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": owner.pw_dir, "LC_ALL": "C.UTF-8"}
        as_other = os.geteuid() != owner.pw_uid
        proc = subprocess.run(
            args,
            input=input,
            capture_output=True,
            text=True,
            env=env,
            cwd=str(self.root),
            user=owner.pw_uid if as_other else None,
            group=owner.pw_gid if as_other else None,
            extra_groups=[] if as_other else None,
        )
        if check and proc.returncode != 0:
            raise PostgresError(
                f"{Path(args[0]).name} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
            )
        return proc

    def init(self, max_connections: int = 200) -> None:
        owner = pwd.getpwnam(self.owner)
        blocked = unreachable_parent(self.root.parent, self.owner)
        if blocked is not None:
            raise PostgresError(
                f"PostgreSQL runs as user {self.owner!r}, which cannot enter {blocked} "
                f"(mode {stat.filemode(blocked.stat().st_mode)}); choose a data dir it can reach"
            )
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.socket_dir.mkdir(mode=0o755, exist_ok=True)
        for path in (self.root, self.socket_dir):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        bindir = find_pg_bin()
        self._run(
            [
                str(bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                self.owner,
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
            ]
        )
        conf = "\n".join(
            [
                "# metalplane: private cluster",
                "listen_addresses = ''",
                f"port = {self.port}",
                f"unix_socket_directories = '{self.socket_dir}'",
                f"max_connections = {max_connections}",
                "password_encryption = 'scram-sha-256'",
                "fsync = on",
                "synchronous_commit = on",
                "",
            ]
        )
        with open(self.data / "postgresql.conf", "a") as fh:
            fh.write(conf)
        hba = "\n".join(
            [
                "# metalplane: the owner by peer, the region role by password",
                f"local all {self.owner} peer",
                "local all all scram-sha-256",
                "",
            ]
        )
        (self.data / "pg_hba.conf").write_text(hba)

    def is_running(self) -> bool:
        if not self.exists():
            return False
        proc = self._pg_ctl("status", check=False)
        return proc.returncode == 0

    def start(self) -> None:
        self._pg_ctl("-l", str(self.log_file), "-w", "-t", "60", "start")

    def stop(self) -> None:
        if self.is_running():
            self._pg_ctl("-m", "fast", "-w", "-t", "60", "stop")

    def reload(self) -> None:
        self._pg_ctl("reload")

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL as the cluster owner; statements arrive on stdin, never in argv."""
        psql = shutil.which("psql") or str(find_pg_bin() / "psql")
        proc = self._run(
            [
                psql,
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                self.owner,
                "-d",
                dbname,
            ],
            input=sql,
        )
        return proc.stdout.strip()

    def ensure_role_and_database(self, user: str, password: str, dbname: str) -> None:
        role, db = quote_ident(user), quote_ident(dbname)
        exists = self.psql(f"SELECT 1 FROM pg_roles WHERE rolname = {quote_literal(user)};")
        verb = "ALTER" if exists else "CREATE"
        self.psql(f"{verb} ROLE {role} LOGIN PASSWORD {quote_literal(password)};")
        if not self.psql(f"SELECT 1 FROM pg_database WHERE datname = {quote_literal(dbname)};"):
            self.psql(f"CREATE DATABASE {db} OWNER {role};")

    def setting(self, name: str) -> str:
        return self.psql(f"SHOW {quote_ident(name)};")

    # -- letting region hosts in over TCP (`metalplane db allow-region`) -----------------

    @property
    def hba_file(self) -> Path:
        return self.data / "pg_hba.conf"

    @property
    def conf_file(self) -> Path:
        return self.data / "postgresql.conf"

    def configured_listen_addresses(self) -> str:
        """listen_addresses as postgresql.conf sets it (the last setting wins)."""
        value = ""
        for line in self.conf_file.read_text().splitlines():
            match = LISTEN_RE.match(line)
            if match:
                value = match.group(1)
        return value

    def _write_owned(self, path: Path, text: str) -> None:
        """Replace a file of the cluster atomically, keeping its owner and mode."""
        st = path.stat()
        tmp = path.with_name(f".{path.name}.metalplane-tmp")
        tmp.write_text(text)
        os.chown(tmp, st.st_uid, st.st_gid)
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
        os.replace(tmp, path)

    def _set_listen_addresses(self, value: str) -> None:
        lines = self.conf_file.read_text().splitlines()
        last = max((i for i, line in enumerate(lines) if LISTEN_RE.match(line)), default=None)
        setting = f"listen_addresses = '{value}'  # metalplane db allow-region"
        if last is None:
            lines.append(setting)
        else:
            lines[last] = setting
        self._write_owned(self.conf_file, "\n".join(lines) + "\n")

    def allow_host(
        self,
        address: str,
        dbname: str = "maasdb",
        user: str = "maas",
        listen_addresses: str | None = None,
        restart: bool = True,
    ) -> AllowResult:
        """Let a region host at `address` in: a pg_hba.conf line and a TCP listener.

        pg_hba.conf gets `host DB USER ADDRESS/32 scram-sha-256` (a reload
        applies it, and PostgreSQL's own parser checks it: a bad file is put
        back). listen_addresses becomes, unless given, the address this host
        uses to reach `address`, added to those already there; a change needs
        a restart, done in fast mode: open transactions roll back and every
        client reconnects (metalplane's regions do so by themselves).
        """
        ip = ipaddress.ip_address(address)
        cidr = f"{ip}/{ip.max_prefixlen}"
        db, role = quote_ident(dbname), quote_ident(user)
        hba_line = f"host {db} {role} {cidr} {HBA_METHOD}"
        if (self.data / "postgresql.auto.conf").exists() and any(
            LISTEN_RE.match(line) for line in (self.data / "postgresql.auto.conf").read_text().splitlines()
        ):
            raise PostgresError(
                "postgresql.auto.conf sets listen_addresses (ALTER SYSTEM), which would override "
                "postgresql.conf; run ALTER SYSTEM RESET listen_addresses first"
            )
        running = self.is_running()
        before = self.setting("listen_addresses") if running else self.configured_listen_addresses()
        if listen_addresses is None:
            wanted = merge_listen_addresses(self.configured_listen_addresses(), local_address_towards(address))
        else:
            wanted = ",".join(p.strip() for p in listen_addresses.split(",") if p.strip())
        for part in wanted.split(","):
            if part and part not in ("*", "localhost") and not is_local_address(part):
                raise PostgresError(f"{part} is not an address of this host; PostgreSQL could not listen on it")

        old_hba = self.hba_file.read_text()
        added = not hba_allows(old_hba.splitlines(), db, role, cidr)
        if added:
            self._write_owned(self.hba_file, old_hba.rstrip("\n") + "\n" + hba_line + "\n")
        if wanted != self.configured_listen_addresses():
            self._set_listen_addresses(wanted)

        reloaded = restarted = False
        if running:
            self.reload()
            reloaded = True
            errors = self.psql("SELECT line_number || ': ' || error FROM pg_hba_file_rules WHERE error IS NOT NULL;")
            if errors:
                self._write_owned(self.hba_file, old_hba)
                self.reload()
                raise PostgresError(f"PostgreSQL refused the new pg_hba.conf ({errors}); the old one is back")
            if wanted != before and restart:
                self.restart()
                restarted = True
        return AllowResult(
            hba_line,
            added,
            before,
            wanted,
            restarted,
            restart_needed=wanted != before and not restarted,
            reloaded=reloaded,
        )

    def restart(self) -> None:
        """Fast restart: open transactions roll back, clients are disconnected and must reconnect."""
        self._pg_ctl("-l", str(self.log_file), "-m", "fast", "-w", "-t", "60", "restart")
