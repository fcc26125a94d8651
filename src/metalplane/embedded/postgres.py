"""A private PostgreSQL cluster under a data dir, run from the system's binaries.

PostgreSQL refuses to run as root, so when we are root the cluster belongs to
the `postgres` system user. The cluster listens only on a unix socket inside
the data dir until a second region is allowed in (`allow_host`).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

PG_ROOT = Path("/usr/lib/postgresql")
MIN_PG_MAJOR = 15
SOCKET_PORT = 5432


class PostgresError(Exception):
    pass


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

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    @property
    def owner(self) -> str:
        return cluster_owner()

    def exists(self) -> bool:
        return (self.data / "PG_VERSION").exists()

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
            raise PostgresError(f"{Path(args[0]).name} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
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
        self._run([
            str(bindir / "initdb"), "-D", str(self.data), "-U", self.owner, "-E", "UTF8",
            "--locale=C.UTF-8", "--auth-local=peer", "--auth-host=scram-sha-256",
        ])
        conf = "\n".join([
            "# metalplane: private cluster",
            "listen_addresses = ''",
            f"port = {self.port}",
            f"unix_socket_directories = '{self.socket_dir}'",
            f"max_connections = {max_connections}",
            "password_encryption = 'scram-sha-256'",
            "fsync = on",
            "synchronous_commit = on",
            "",
        ])
        with open(self.data / "postgresql.conf", "a") as fh:
            fh.write(conf)
        hba = "\n".join([
            "# metalplane: the owner by peer, the region role by password",
            f"local all {self.owner} peer",
            "local all all scram-sha-256",
            "",
        ])
        (self.data / "pg_hba.conf").write_text(hba)

    def is_running(self) -> bool:
        if not self.exists():
            return False
        proc = self._run([str(find_pg_bin() / "pg_ctl"), "-D", str(self.data), "status"], check=False)
        return proc.returncode == 0

    def start(self) -> None:
        self._run([
            str(find_pg_bin() / "pg_ctl"), "-D", str(self.data), "-l", str(self.log_file),
            "-w", "-t", "60", "start",
        ])

    def stop(self) -> None:
        if self.is_running():
            self._run([str(find_pg_bin() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop"])

    def reload(self) -> None:
        self._run([str(find_pg_bin() / "pg_ctl"), "-D", str(self.data), "reload"])

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL as the cluster owner; statements arrive on stdin, never in argv."""
        psql = shutil.which("psql") or str(find_pg_bin() / "psql")
        proc = self._run(
            [psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", str(self.socket_dir),
             "-p", str(self.port), "-U", self.owner, "-d", dbname],
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
