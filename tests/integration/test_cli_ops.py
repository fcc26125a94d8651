"""Operating metalplane from the command line, against real regions and a real PostgreSQL:
the seeds' command names, `init` on an external database, units, logs, and no secret in any log."""

from __future__ import annotations

import fcntl
import logging
import os
import pty
import random
import re
import secrets
import select
import socket
import stat
import subprocess
import sys
import termios
import threading
import time
import uuid
from pathlib import Path

import yaml
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from metalplane.config.rack import rack_config_path, update_rack_config
from metalplane.config.region import load_region_config
from metalplane.embedded.init import run_db
from metalplane.logs import FORMAT, LineFormatter
from metalplane.rack.daemon import POWER_DRAIN
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


def register_rack(region, secret: str, data_dir: Path, hostname: str) -> None:
    """`metalplane rack register` (the rack then runs from its unit), waited for on the region."""
    joined = run(
        [*METALPLANE, "rack", "register", "--url", region.url, "--secret", secret]
        + ["--data-dir", str(data_dir), "--hostname", hostname]
    )
    assert joined.returncode == 0, joined.stderr
    wait_until(lambda: any(r["hostname"] == hostname for r in racks(region)), 30, what=f"rack {hostname}")


def create_machine(api, hostname: str, mac: str, power_type: str, params: dict, **fields: str) -> str:
    created = api.post(
        "machines/",
        architecture="amd64/generic",
        hostname=hostname,
        mac_addresses=mac,
        power_type=power_type,
        **fields,
        **{f"power_parameters_{k}": v for k, v in params.items()},
    )
    assert created.status_code in (200, 201), created.text
    return created.json()["system_id"]


def log_files(*roots: Path) -> list[Path]:
    return [
        p for root in roots for p in root.rglob("*") if p.is_file() and (p.suffix == ".log" or p.parent.name == "log")
    ]


def run_on_terminal(args: list[str], answers: list[tuple[str, str]], timeout: float = 180) -> tuple[int, str, int]:
    """Run `args` on a pseudo-terminal of its own (its controlling terminal, as a login shell's),
    typing each answer once its prompt has appeared. Returns the exit code, all it printed
    and how many of the prompts it asked."""
    master, slave = pty.openpty()

    def take_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        args, stdin=slave, stdout=slave, stderr=slave, start_new_session=True, preexec_fn=take_terminal
    )
    os.close(slave)
    seen, cursor, asked = b"", 0, 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if asked < len(answers) and (at := seen.find(answers[asked][0].encode(), cursor)) >= 0:
                cursor = at + len(answers[asked][0])
                os.write(master, answers[asked][1].encode() + b"\n")
                asked += 1
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the process closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=max(deadline - time.monotonic(), 1)), seen.decode(errors="replace"), asked
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


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
        # On a terminal it asks for both, as MAAS's does, and the secret is not echoed.
        code, said, asked = run_on_terminal(
            [str(BIN / "maas-rack"), "register", "--data-dir", str(data_dir), "--hostname", "compat-rack"],
            [("MAAS region controller URL: ", region.url), ("Secret (hex/base16 encoded): ", secret)],
        )
        assert code == 0 and "registered with cluster" in said, said
        assert asked == 2 and secret not in said  # the URL is echoed as typed; the secret is not
        assert region.url in said
        assert [r["system_id"] for r in racks(region) if r["hostname"] == "compat-rack"] == [found[0]["system_id"]]
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


def test_a_stopping_rack_finishes_its_power_action_in_flight(region, workdir):
    """The rack unit's stop (SIGTERM from `metalplane stop`, as `systemctl stop` sends it) lets a
    power action that is talking to a slow BMC finish before the rack exits: the machine is on
    and the API call that asked for it answers 200, not an error from a rack that went away."""
    secret = run_db(region.config, cluster.shared_secret)
    data_dir = loopback_rack_dir(workdir / "draining-rack")
    bmc = HttpBmcEmulator(workdir / "slow-bmc", [HttpBmc("slow", "127.0.0.1", 0)])
    outcome: dict = {}
    try:
        bmc.start()
        register_rack(region, secret, data_dir, "draining-rack")
        with region.api() as api:
            system_id = create_machine(
                api, "slow-bmc", "52:54:00:98:00:01", "redfish", bmc.params("slow"), commission="false"
            )
            # The rack's first poll of the new BMC is over (it is not the request waited for below).
            wait_until(
                lambda: api.get(f"machines/{system_id}/").json()["power_state"] == "off", 60, what="the first poll"
            )
        assert bmc.power_state("slow") == "Off"
        bmc.reset_counters("slow")
        bmc.set_delay("slow", 2.0)  # each BMC request: the action takes several seconds

        def power_on() -> None:
            with region.api() as api:
                outcome["response"] = api.post(f"machines/{system_id}/", op="power_on")

        asking = threading.Thread(target=power_on)
        asking.start()
        wait_until(lambda: bmc.state("slow")["in_flight"] >= 1, 60, interval=0.1, what="the rack at the BMC")
        stopped = run([*METALPLANE, "stop", "--data-dir", str(data_dir)])
        assert stopped.returncode == 0 and "rackd: stopped" in stopped.stdout, stopped.stdout + stopped.stderr
        asking.join(60)
        assert not asking.is_alive()
        bmc.set_delay("slow", 0.0)
        assert outcome["response"].status_code == 200, outcome["response"].text
        assert bmc.power_state("slow") == "On"
        log = (data_dir / "log" / "rackd.log").read_text()
        assert f"waiting up to {POWER_DRAIN:.0f} s for 1 power action(s) in flight" in log
        assert "rack stopped after" in log and "unfinished" not in log and "TimeoutStopSec" not in log
    finally:
        stop_data_dir(data_dir)
        bmc.stop()


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
        # Not a terminal: init's progress is one plain line per step, in order, and no bar.
        steps = re.findall(r"^\[(\d)/6\] (.+)$", done.stdout, re.M)
        assert [int(n) for n, _ in steps] == [1, 2, 3, 4, 5, 6], done.stdout
        assert steps[2][1] == "using the external PostgreSQL" and "\x1b[" not in done.stdout + done.stderr
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
        register_rack(region, shared, data_dir, "canary-rack")
        machines = []
        with region.api() as api:
            for n, (ptype, params) in enumerate(
                (
                    ("ipmi", ipmi.params()),
                    ("redfish", redfish.params("rf")),
                    ("redfish", {**redfish.params("rf"), "power_user": "nobody", "power_pass": wrong_canary}),
                )
            ):
                machines.append(create_machine(api, f"canary-{n}", f"52:54:00:99:00:{n:02x}", ptype, params))
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
