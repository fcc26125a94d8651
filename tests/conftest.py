"""Fixtures shared by every test: a real PostgreSQL and real region processes."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from metalplane.client.http import MaasHttp
from metalplane.config.region import RegionConfig
from metalplane.region.bootstrap import ensure_admin, run_db
from metalplane.region.services import users
from tests.support.databases import TestDatabases, world_traversable_tempdir
from tests.support.processes import RegionProcess, free_port_block


@pytest.fixture(scope="session")
def databases() -> Iterator[TestDatabases]:
    dbs = TestDatabases()
    dbs.start()
    yield dbs
    dbs.stop()


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A scratch dir PostgreSQL's user can enter (pytest's tmp_path is 0700)."""
    path = world_traversable_tempdir("mp-test-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def make_region_config(
    databases: TestDatabases, dbname: str, data_dir: Path, num_workers: int = 2, hostname: str = "region-a", **overrides
) -> RegionConfig:
    port = free_port_block(1 + num_workers + 1)
    return databases.config(
        dbname,
        port=port,
        rpc_port=port + 1,
        num_workers=num_workers,
        listen_address="127.0.0.1",
        data_dir=str(data_dir),
        maas_url=f"http://127.0.0.1:{port}/MAAS",
        hostname=hostname,
        **overrides,
    )


def create_admin(config: RegionConfig, username: str = "admin", password: str = "test-admin") -> str:
    async def work(conn) -> str:
        key, _ = await ensure_admin(conn, username, password, f"{username}@example.com", "tests")
        return key

    return run_db(config, work)


def create_user(config: RegionConfig, username: str) -> str:
    async def work(conn) -> str:
        user = await users.create_user(conn, username, "pw", "", is_superuser=False)
        return (await users.create_token(conn, user.id, "tests")).api_key

    return run_db(config, work)


class RunningRegion:
    def __init__(self, process: RegionProcess, api_key: str):
        self.process = process
        self.config = process.config
        self.api_key = api_key
        self.url = process.url

    def api(self, api_key: str | None = None) -> MaasHttp:
        return MaasHttp(self.url, self.api_key if api_key is None else api_key)

    def import_mirror(self, path: Path, timeout: float = 60) -> dict:
        """`boot-resources import path=PATH`, waited for; the import job as import-status shows it."""
        from tests.support.processes import wait_until

        with self.api() as api:
            response = api.request("POST", "boot-resources/", "import", {"path": str(path)})
            assert response.status_code == 200, response.text
            wait_until(
                lambda: api.get("boot-resources/", op="is_importing").json() is False, timeout, 0.2, "the import"
            )
            return api.get("boot-resources/", op="import_status").json()["imports"][0]


def start_region(
    databases: TestDatabases,
    root: Path,
    name: str = "region-a",
    num_workers: int = 2,
    dbname: str | None = None,
    **overrides,
) -> RegionProcess:
    dbname = dbname or databases.new_database()
    config = make_region_config(databases, dbname, root / name / "data", num_workers, name, **overrides)
    process = RegionProcess(config, root / name)
    process.start_and_wait()
    return process


@pytest.fixture(scope="session")
def shared_region(databases) -> Iterator[RunningRegion]:
    """One region for API tests that each leave the model as they found it."""
    root = world_traversable_tempdir("mp-shared-")
    dbname = databases.new_database()
    config = make_region_config(databases, dbname, root / "data")
    key = create_admin(config)
    process = RegionProcess(config, root / "region")
    process.start_and_wait()
    yield RunningRegion(process, key)
    process.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def api(shared_region) -> Iterator[MaasHttp]:
    with shared_region.api() as client:
        yield client


@pytest.fixture
def region(databases, workdir) -> Iterator[RunningRegion]:
    """A region of its own, with its own database, for tests that break things."""
    dbname = databases.new_database()
    config = make_region_config(databases, dbname, workdir / "data")
    key = create_admin(config)
    process = RegionProcess(config, workdir / "region")
    process.start_and_wait()
    yield RunningRegion(process, key)
    process.stop()
    databases.drop_database(dbname)
