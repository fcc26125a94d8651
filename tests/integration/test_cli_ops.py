"""Operating metalplane from the command line, against real regions and a real PostgreSQL:
the seeds' command names, `init` on an external database, units, logs, and no secret in any log."""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import yaml
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from metalplane.config.rack import rack_config_path, update_rack_config
from metalplane.config.region import load_region_config
from metalplane.embedded.init import run_db
from metalplane.logs import FORMAT, LineFormatter
from metalplane.region.db.engine import sync_engine
from metalplane.region.services import cluster
from tests.support.bmc_ipmi import IpmiSimBmc
from tests.support.bmc_redfish import HttpBmc, HttpBmcEmulator
from tests.support.databases import PASSWORD, ROLE
from tests.support.processes import free_port_block, wait_until

BIN = Path(sys.executable).parent
METALPLANE = [sys.executable, "-m", "metalplane"]


def run(args: list[str], *, input: str | None = None, timeout: float = 180, env: dict | None = None):
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        env=env,
    )


def loopback_rack_dir(data_dir: Path) -> Path:
    """A rack data dir whose services listen on loopback only, on free ports (never 69/5248 of this host)."""
    port = free_port_block(2)
    update_rack_config(
        rack_config_path(data_dir),
        {"data_dir": str(data_dir), "bind_address": "127.0.0.1", "tftp_port": port, "http_port": port + 1},
    )
    return data_dir


def racks(region) -> list[dict]:
    with region.api() as api:
        return api.get("rackcontrollers/").json()


def stop_data_dir(data_dir: Path) -> None:
    subprocess.run([*METALPLANE, "stop", "--data-dir", str(data_dir)], capture_output=True, timeout=180)


def log_files(*roots: Path) -> list[Path]:
    return [
        p for root in roots for p in root.rglob("*") if p.is_file() and (p.suffix == ".log" or p.parent.name == "log")
    ]


# -- the seeds' command names ---------------------------------------------------------------


def test_maas_rack_register_registers_a_rack_and_maas_rack_config_shows_it(region, workdir):
    secret = run_db(region.config, cluster.shared_secret)
    data_dir = loopback_rack_dir(workdir / "compat-rack")
    try:
        done = run(
            [
                str(BIN / "maas-rack"),
                "register",
                "--url",
                region.url,
                "--secret",
                secret,
                "--data-dir",
                str(data_dir),
                "--hostname",
                "compat-rack",
            ]
        )
        assert done.returncode == 0, done.stderr
        assert "registered with cluster" in done.stdout
        found = wait_until(
            lambda: [r for r in racks(region) if r["hostname"] == "compat-rack"],
            30,
            what="the rack registered through maas-rack",
        )
        assert found[0]["system_id"] == (data_dir / "maas_id").read_text().strip()
        shown = yaml.safe_load(run([str(BIN / "maas-rack"), "config", "--data-dir", str(data_dir)]).stdout)
        assert shown["maas_url"] == [region.url] and shown["hostname"] == "compat-rack"
        log = data_dir / "log" / "rackd.log"
        assert stat.S_IMODE(log.stat().st_mode) == 0o640
        assert "started (pid" in log.read_text()  # the keeper's line: the rack runs from its unit
        # Without a terminal, the URL must be given; the secret may come on stdin, as with MAAS.
        refused = run([str(BIN / "maas-rack"), "register", "--data-dir", str(workdir / "other")])
        assert refused.returncode == 2 and "--url URL is required" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        piped = run(
            [
                str(BIN / "maas-rack"),
                "register",
                "--url",
                region.url,
                "--data-dir",
                str(data_dir),
                "--hostname",
                "compat-rack",
            ],
            input=secret + "\n",
        )
        assert piped.returncode == 0, piped.stderr
        assert len([r for r in racks(region) if r["hostname"] == "compat-rack"]) == 1
    finally:
        stop_data_dir(data_dir)


def test_maas_region_local_config_set_edits_the_region_config(workdir):
    maas_region = str(BIN / "maas-region")
    data = ["--data-dir", str(workdir)]
    done = run(
        [
            maas_region,
            "local_config_set",
            *data,
            "--database-host",
            "db1,db2",
            "--database-name",
            "maas2",
            "--maas-url",
            "http://10.0.0.5:5240/MAAS",
            "--num-workers",
            "2",
        ]
    )
    assert done.returncode == 0, done.stderr
    config = load_region_config(workdir / "regiond.conf")
    assert config.database_host == ["db1", "db2"] and config.database_name == "maas2" and config.num_workers == 2
    assert stat.S_IMODE((workdir / "regiond.conf").stat().st_mode) == 0o640
    got = run([maas_region, "local_config_get", *data, "--database-host", "--maas-url"])
    assert yaml.safe_load(got.stdout) == {"database_host": ["db1", "db2"], "maas_url": "http://10.0.0.5:5240/MAAS"}
    assert run([maas_region, "local_config_reset", *data, "--database-host"]).returncode == 0
    assert load_region_config(workdir / "regiond.conf").database_host == "localhost"
    bad = run([maas_region, "local_config_set", *data, "--num-workers", "0"])
    assert bad.returncode != 0 and "num_workers" in bad.stderr
    assert run([maas_region, "no_such_command"]).returncode == 2


# -- init on an external PostgreSQL ------------------------------------------------------------


def init_region(data_dir: Path, *db_args: str, port: int | None = None) -> subprocess.CompletedProcess:
    port = port or free_port_block(12)
    return run(
        [
            *METALPLANE,
            "init",
            "--mode",
            "region",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--listen-address",
            "127.0.0.1",
            "--num-workers",
            "1",
            *db_args,
        ]
    )


def db_flags(databases, dbname: str, user: str = ROLE, password: str = PASSWORD) -> list[str]:
    return [
        "--database-host",
        str(databases.cluster.socket_dir),
        "--database-port",
        str(databases.cluster.port),
        "--database-name",
        dbname,
        "--database-user",
        user,
        "--database-pass",
        password,
    ]


def assert_nothing_created(data_dir: Path, result: subprocess.CompletedProcess) -> None:
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (data_dir / "regiond.conf").exists() and not (data_dir / "run").exists()
    assert not (data_dir / "units").exists()
    ours = subprocess.run(["pgrep", "-f", str(data_dir)], capture_output=True, text=True).stdout.split()
    assert ours == [], "a daemon was started"


def test_init_refuses_an_external_database_it_cannot_use(databases, workdir):
    """A PostgreSQL started by the tests (not the embedded one): a wrong password, a user without
    CREATE, and more connections than it allows are each one line, and nothing is created."""
    dbname = databases.new_database()
    data_dir = workdir / "refused"
    wrong = init_region(data_dir, *db_flags(databases, dbname, password="not-the-password"))
    assert_nothing_created(data_dir, wrong)
    assert "password authentication failed" in wrong.stderr and dbname in wrong.stderr
    assert "not-the-password" not in wrong.stderr

    weak = f"weak_{uuid.uuid4().hex[:8]}"
    databases.cluster.psql(f"CREATE ROLE {weak} LOGIN PASSWORD 'weak-pass';")
    lacking = init_region(data_dir, *db_flags(databases, dbname, user=weak, password="weak-pass"))
    assert_nothing_created(data_dir, lacking)
    assert f"lacks CREATE on database {dbname!r}" in lacking.stderr
    assert "lacks CREATE on schema public" in lacking.stderr

    # 64 workers x (8 + 1) connections: more than the test cluster's max_connections (400).
    budget = init_region(
        data_dir, *db_flags(databases, dbname)[:-2], "--database-pass", PASSWORD, "--num-workers", "64"
    )
    assert_nothing_created(data_dir, budget)
    assert "database connection budget exceeded" in budget.stderr and "max_connections" in budget.stderr
    databases.drop_database(dbname)


def test_init_on_an_external_database_units_and_logs(databases, workdir):
    dbname = databases.new_database()
    data_dir = workdir / "external"
    socket_dir = str(databases.cluster.socket_dir).replace("/", "%2F")
    uri = f"postgres://{ROLE}:{PASSWORD}@{socket_dir}:{databases.cluster.port}/{dbname}"
    try:
        done = init_region(data_dir, "--database-uri", uri)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"PostgreSQL: external, database '{dbname}'" in done.stdout
        assert "systemd is not PID 1 here" in done.stdout
        assert not (data_dir / "db").exists()  # no cluster of its own
        config = load_region_config(data_dir / "regiond.conf")
        assert (config.database_name, config.database_host) == (dbname, str(databases.cluster.socket_dir))
        status = run([*METALPLANE, "status", "--data-dir", str(data_dir)])
        assert status.returncode == 0 and "postgresql: external" in status.stdout, status.stdout

        # The units the keeper runs are valid systemd units, and install offline into a root.
        units = sorted((data_dir / "units").glob("*.service"))
        assert [u.name.split("-")[1] for u in units] == ["regiond"]
        verify = run(["systemd-analyze", "verify", *map(str, units)])
        assert (verify.returncode, verify.stderr) == (0, "")
        root = workdir / "root"
        installed = run([*METALPLANE, "install-units", "--data-dir", str(data_dir), "--root", str(root)])
        assert installed.returncode == 0, installed.stderr
        wants = root / "etc/systemd/system/multi-user.target.wants" / units[0].name
        assert wants.is_symlink() and (root / "etc/systemd/system" / units[0].name).read_text() == units[0].read_text()

        # Logs: DATA/log, mode 0640, one line per request, readable with `metalplane logs`.
        log = data_dir / "log" / "regiond.log"
        assert stat.S_IMODE(log.stat().st_mode) == 0o640
        shown = run([*METALPLANE, "logs", "region", "--data-dir", str(data_dir), "-n", "400"])
        assert "GET /MAAS/api/2.0/version/ 200" in shown.stdout
        assert "database connection budget OK" in shown.stdout
    finally:
        stop_data_dir(data_dir)
        databases.drop_database(dbname)
    stopped = run([*METALPLANE, "status", "--data-dir", str(data_dir)])
    assert stopped.returncode != 0 and "regiond:    stopped" in stopped.stdout


# -- no secret in any log ---------------------------------------------------------------------


def test_canary_secrets_never_reach_a_log(region, databases, workdir):
    """A unique BMC password and the cluster's shared secret, through registration and power
    actions on emulated BMCs (ipmi_sim and Redfish), including failing ones: no log line has them."""
    canary = f"cn{secrets.token_hex(7)}"  # 16 characters: an IPMI 1.5-sized password
    wrong_canary = f"wrong{secrets.token_hex(7)}"
    shared = run_db(region.config, cluster.shared_secret)
    data_dir = loopback_rack_dir(workdir / "rack")
    address = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(2, 254)}"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((address, 0))
        ipmi_port = probe.getsockname()[1]
    ipmi = IpmiSimBmc(workdir / "ipmi", address, ipmi_port, user="admin", password=canary)
    redfish = HttpBmcEmulator(workdir / "redfish", [HttpBmc("rf", address, 0, username="root", password=canary)])
    try:
        ipmi.start()
        redfish.start()
        joined = run(
            [
                *METALPLANE,
                "rack",
                "register",
                "--url",
                region.url,
                "--secret",
                shared,
                "--data-dir",
                str(data_dir),
                "--hostname",
                "canary-rack",
            ]
        )
        assert joined.returncode == 0, joined.stderr
        wait_until(lambda: any(r["hostname"] == "canary-rack" for r in racks(region)), 30, what="the rack")
        machines = []
        with region.api() as api:
            for n, (ptype, params) in enumerate(
                (
                    ("ipmi", ipmi.params()),
                    ("redfish", redfish.params("rf")),
                    ("redfish", {**redfish.params("rf"), "power_user": "nobody", "power_pass": wrong_canary}),
                )
            ):
                created = api.post(
                    "machines/",
                    architecture="amd64/generic",
                    power_type=ptype,
                    mac_addresses=f"52:54:00:99:00:{n:02x}",
                    hostname=f"canary-{n}",
                    **{f"power_parameters_{k}": v for k, v in params.items()},
                )
                assert created.status_code in (200, 201), created.text
                machines.append(created.json()["system_id"])
            ipmi_id, rf_id, bad_id = machines
            for system_id in (ipmi_id, rf_id):
                for op in ("power_on", "power_cycle", "power_off"):
                    done = api.post(f"machines/{system_id}/", op=op)
                    assert done.status_code == 200, (op, done.text)
                assert api.get(f"machines/{system_id}/", op="query_power_state").json()["state"] == "off"
            failed = api.post(f"machines/{bad_id}/", op="power_on")
            assert failed.status_code >= 400 and wrong_canary not in failed.text
        # A failed statement: the engine hides its parameters and metalplane's log line masks the
        # value PostgreSQL quotes back. (PostgreSQL's own server log keeps the quoted value: a
        # value of its own, then, so that the server log below is checked for the BMC password.)
        sql_value = f"sql{secrets.token_hex(8)}"
        engine = sync_engine(region.config)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT CAST(:v AS integer)"), {"v": sql_value})
        except DBAPIError as exc:
            assert "parameters hidden" in str(exc)
            record = logging.LogRecord("t", logging.ERROR, __file__, 1, "statement failed: %s", (exc,), None)
            line = LineFormatter(FORMAT).format(record)
            assert "invalid input syntax" in line and sql_value not in line
        finally:
            engine.dispose()
    finally:
        stop_data_dir(data_dir)
        redfish.stop()
        ipmi.stop()
    region_log = region.process.log_path
    files = [region_log, *log_files(data_dir), databases.cluster.log_file]
    assert region_log.exists() and (data_dir / "log" / "rackd.log").exists()
    for path in files:
        content = path.read_text(errors="replace")
        for value in (canary, wrong_canary, shared, PASSWORD):
            assert value not in content, f"{value[:8]}... found in {path}"
    assert "authentication failed" in (data_dir / "log" / "rackd.log").read_text()  # the failure was logged
    access = region_log.read_text()
    assert f"POST /MAAS/api/2.0/machines/{ipmi_id}/?op=power_cycle 200" in access
    assert "oauth" not in access.lower() and "authorization" not in access.lower()
    assert os.stat(data_dir / "log" / "rackd.log").st_mode & 0o007 == 0
