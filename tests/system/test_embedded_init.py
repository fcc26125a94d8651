"""The README's first command on a fresh data dir, then the seeds' CLI steps."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from metalplane.config.rack import rack_config_path, update_rack_config
from tests.support.databases import world_traversable_tempdir
from tests.support.processes import HOST_NETWORK_SERVICES_OFF, free_port_block, wait_until

REPO = Path(__file__).resolve().parents[2]
METALPLANE = [sys.executable, "-m", "metalplane"]


def run(args: list[str], env: dict[str, str], check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def fresh():
    root = world_traversable_tempdir("mp-init-")
    env = {**os.environ, "METALPLANE_PROFILES": str(root / "profiles.json")}
    data_dir = root / "data"
    yield root, data_dir, env
    subprocess.run([*METALPLANE, "stop", "--data-dir", str(data_dir)], capture_output=True, env=env, timeout=120)
    shutil.rmtree(root, ignore_errors=True)


def cli(env, *args, check=True):
    return run([*METALPLANE, *args], env, check=check)


def test_readme_init_then_login_and_the_seeds_cli_steps(fresh):
    _root, data_dir, env = fresh
    port = free_port_block(16)
    first = run(
        [
            "./bootstrap.sh",
            "init",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--admin-password",
            "first-password",
        ],
        env,
    )
    out = first.stdout
    url = re.search(r"MAAS URL:\s+(\S+)", out).group(1)
    key = re.search(r"API key:\s+(\S+)", out).group(1)
    assert f"metalplane login admin {url} {key}" in out
    assert url == f"http://localhost:{port}/MAAS/"
    secret = data_dir / "secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE((data_dir / "regiond.conf").stat().st_mode) == 0o640
    assert cli(env, "status", "--data-dir", str(data_dir)).returncode == 0

    cli(env, "login", "admin", url, key)
    # All-in-one: the rack on this host shares the region's node (type 4) and secret.
    racks = wait_until(
        lambda: json.loads(cli(env, "admin", "rack-controllers", "read").stdout), 30, what="the local rack to register"
    )
    regions = json.loads(cli(env, "admin", "region-controllers", "read").stdout)
    assert [r["system_id"] for r in racks] == [r["system_id"] for r in regions]
    assert racks[0]["node_type_name"] == "Region and rack controller"
    # Both roles' named on one host without a clash (docs/architecture.md): the rack's resolver
    # (PORT+1) answers the host's own name from the region's zone (named on PORT+7).
    fqdn = f"{regions[0]['hostname']}.{regions[0]['domain']['name']}"

    def addresses() -> list[str]:
        out = run(
            ["dig", "@127.0.0.1", "-p", str(port + 1), "+short", "+time=1", "+tries=1", fqdn], env, check=False
        ).stdout.split()
        try:
            return [str(ipaddress.ip_address(a)) for a in out]
        except ValueError:  # ";; communications error ...": not serving yet
            return []

    assert wait_until(addresses, 30, interval=1, what=f"{fqdn} through the local rack's resolver")
    fabrics = json.loads(cli(env, "admin", "fabrics", "read").stdout)
    assert fabrics[0]["name"] == "fabric-0"  # plus any fabric the local rack's interfaces brought
    subnet = json.loads(cli(env, "admin", "subnets", "create", "cidr=10.99.0.0/24", "gateway_ip=10.99.0.1").stdout)
    assert subnet["cidr"] == "10.99.0.0/24"
    iprange = json.loads(
        cli(env, "admin", "ipranges", "create", "type=dynamic", "start_ip=10.99.0.100", "end_ip=10.99.0.199").stdout
    )
    assert iprange["subnet"]["id"] == subnet["id"]
    vid, fabric_id = subnet["vlan"]["vid"], subnet["vlan"]["fabric_id"]
    vlan = json.loads(cli(env, "admin", "vlan", "update", str(fabric_id), str(vid), "name=provisioning").stdout)
    assert vlan["name"] == "provisioning"

    # A second run destroys nothing: same key, same secret, same data, same password.
    secret_before = secret.read_text()
    config_before = (data_dir / "regiond.conf").read_text()
    second = run(
        [
            "./bootstrap.sh",
            "init",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--admin-password",
            "other-password",
        ],
        env,
    )
    assert "already initialised" in second.stdout
    assert "region: already running" in second.stdout
    assert "PostgreSQL: already running" in second.stdout
    assert re.search(r"API key:\s+(\S+)", second.stdout).group(1) == key
    assert secret.read_text() == secret_before
    assert (data_dir / "regiond.conf").read_text() == config_before
    subnets = {s["cidr"]: s for s in json.loads(cli(env, "admin", "subnets", "read").stdout)}
    assert subnets["10.99.0.0/24"]["vlan"]["name"] == "provisioning"
    assert "rack: already running" in second.stdout
    assert cli(env, "apikey", "--data-dir", str(data_dir), "--username", "admin").stdout.strip() == key


def test_init_after_stop_restarts_without_recreating(fresh):
    _root, data_dir, env = fresh
    port = free_port_block(16)
    first = cli(env, "init", "--data-dir", str(data_dir), "--port", str(port))
    generated = re.search(r"generated password: (\S+)\)", first.stdout)
    assert generated, first.stdout
    key = re.search(r"API key:\s+(\S+)", first.stdout).group(1)
    stopped = cli(env, "stop", "--data-dir", str(data_dir))
    assert "regiond: stopped" in stopped.stdout and "postgresql: stopped" in stopped.stdout
    assert "rackd: stopped" in stopped.stdout
    assert cli(env, "status", "--data-dir", str(data_dir), check=False).returncode != 0
    again = cli(env, "init", "--data-dir", str(data_dir), "--port", str(port))
    assert "PostgreSQL: started" in again.stdout and "region: started" in again.stdout
    assert "rack: started" in again.stdout
    assert "generated password" not in again.stdout
    assert re.search(r"API key:\s+(\S+)", again.stdout).group(1) == key

    made = cli(env, "createadmin", "--data-dir", str(data_dir), "--username", "ops", "--password", "pw-ops")
    ops_key = made.stdout.strip()
    cli(env, "login", "ops", f"http://localhost:{port}/MAAS/", ops_key)
    me = json.loads(cli(env, "ops", "users", "whoami").stdout)
    assert me["username"] == "ops" and me["is_superuser"] is True
    duplicate = cli(
        env, "createadmin", "--data-dir", str(data_dir), "--username", "ops", "--password", "x", check=False
    )
    assert duplicate.returncode != 0 and "already exists" in duplicate.stderr


def test_two_data_dirs_run_side_by_side(fresh):
    root, data_dir, env = fresh
    other = root / "other"
    ports = free_port_block(24)  # each uses PORT..PORT+10 with one worker (README)
    try:
        a = cli(env, "init", "--data-dir", str(data_dir), "--port", str(ports), "--num-workers", "1")
        b = cli(env, "init", "--data-dir", str(other), "--port", str(ports + 12), "--num-workers", "1")
        key_a = re.search(r"API key:\s+(\S+)", a.stdout).group(1)
        key_b = re.search(r"API key:\s+(\S+)", b.stdout).group(1)
        assert key_a != key_b
        assert (data_dir / "secret").read_text() != (other / "secret").read_text()
    finally:
        # Cleanup only. `stop` sometimes waits out its own deadline before it SIGKILLs a
        # keeper that did not pass SIGTERM on (seen once in CI, under investigation): let
        # that fallback finish instead of leaving the daemons behind.
        subprocess.run([*METALPLANE, "stop", "--data-dir", str(other)], capture_output=True, env=env, timeout=300)


def test_init_mode_rack_joins_a_region(fresh):
    root, data_dir, env = fresh
    port = free_port_block(16)
    cli(env, "init", "--data-dir", str(data_dir), "--port", str(port), "--mode", "region")
    secret = (data_dir / "secret").read_text().strip()
    rack_dir = root / "rack-only"
    # On this host's own network: loopback and free ports, no resolver, chronyd or ARP listener
    # on its interfaces (registration keeps what rackd.conf already says).
    rack_port = free_port_block(2)
    update_rack_config(
        rack_config_path(rack_dir),
        {
            "data_dir": str(rack_dir),
            "bind_address": "127.0.0.1",
            "tftp_port": rack_port,
            "http_port": rack_port + 1,
            **HOST_NETWORK_SERVICES_OFF,
            "discovery": False,
        },
    )
    try:
        joined = cli(
            env,
            "init",
            "--mode",
            "rack",
            "--maas-url",
            f"http://localhost:{port}/MAAS",
            "--secret",
            secret,
            "--data-dir",
            str(rack_dir),
        )
        assert "registered with cluster" in joined.stdout
        key = cli(env, "apikey", "--data-dir", str(data_dir), "--username", "admin").stdout.strip()
        cli(env, "login", "admin", f"http://localhost:{port}/MAAS/", key)
        racks = wait_until(
            lambda: json.loads(cli(env, "admin", "rack-controllers", "read").stdout), 30, what="the rack to register"
        )
        assert racks[0]["node_type_name"] == "Rack controller"
        bad = cli(
            env,
            "init",
            "--mode",
            "rack",
            "--maas-url",
            f"http://localhost:{port}/MAAS",
            "--secret",
            "wrong",
            "--data-dir",
            str(root / "other-rack"),
            check=False,
        )
        assert bad.returncode != 0 and "secret" in bad.stderr
    finally:
        subprocess.run([*METALPLANE, "stop", "--data-dir", str(rack_dir)], capture_output=True, env=env, timeout=60)
