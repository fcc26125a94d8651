"""A real PostgreSQL for tests: one private cluster, a fresh database per test.

Each database is a copy of a template that already has every migration, so a
test gets an empty, current schema in a fraction of a second.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path

from metalplane.config.region import RegionConfig
from metalplane.embedded.postgres import Cluster, quote_ident
from metalplane.region.bootstrap import migrate

ROLE = "maas"
PASSWORD = "test-only-password"
TEMPLATE = "mp_template"


def world_traversable_tempdir(prefix: str) -> Path:
    """PostgreSQL runs as `postgres`, which must be able to enter the directory."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


class TestDatabases:
    __test__ = False  # not a pytest class

    def __init__(self, root: Path | None = None):
        self.root = root or world_traversable_tempdir("mp-testdb-")
        self.cluster = Cluster(self.root / "db")
        self._names = itertools.count(1)

    def start(self, max_connections: int = 400) -> None:
        self.cluster.init(max_connections=max_connections)
        self.cluster.start()
        self.cluster.ensure_role_and_database(ROLE, PASSWORD, TEMPLATE)
        self.cluster.psql(f"ALTER ROLE {ROLE} CREATEDB;")
        migrate(self.config(TEMPLATE))

    def stop(self) -> None:
        try:
            self.cluster.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def config(self, dbname: str, **overrides) -> RegionConfig:
        return RegionConfig(
            database_host=str(self.cluster.socket_dir),
            database_port=self.cluster.port,
            database_name=dbname,
            database_user=ROLE,
            database_pass=PASSWORD,
            **overrides,
        )

    def new_database(self) -> str:
        name = f"mp_test_{next(self._names)}"
        self.cluster.psql(f"CREATE DATABASE {quote_ident(name)} TEMPLATE {TEMPLATE} OWNER {ROLE};")
        return name

    def drop_database(self, name: str) -> None:
        self.cluster.psql(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE);")
