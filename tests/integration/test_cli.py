"""`metalplane login ...` and `metalplane PROFILE HANDLER ACTION ...` as real processes
against the shared region. Every test removes what it creates; CIDRs 10.201.x.0/24 are ours.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from metalplane.client.http import MaasHttp
from tests.support.processes import free_port_block


class Cli:
    def __init__(self, profiles: Path):
        self.profiles = profiles

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "METALPLANE_PROFILES": str(self.profiles)}
        return subprocess.run(
            [sys.executable, "-m", "metalplane", *args],
            input=input,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            **({} if input is not None else {"stdin": subprocess.DEVNULL}),
        )

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def json(self, *args: str):
        return json.loads(self.ok(*args))

    def stored(self) -> dict:
        return json.loads(self.profiles.read_text())["profiles"]


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def fresh_cli(tmp_path) -> Cli:
    return Cli(tmp_path / "profiles.json")


@pytest.fixture(scope="module")
def cli(shared_region, tmp_path_factory) -> Cli:
    """Logged in as the shared region's admin under the profile name `admin`."""
    cli = Cli(tmp_path_factory.mktemp("cli") / "profiles.json")
    cli.ok("login", "admin", shared_region.url, shared_region.api_key)
    return cli


def test_login_list_logout(fresh_cli, shared_region):
    out = fresh_cli.ok("login", "mp", shared_region.url, shared_region.api_key)
    root = shared_region.url.rstrip("/") + "/api/2.0/"
    assert "logged in" in out and root in out
    assert stat.S_IMODE(fresh_cli.profiles.stat().st_mode) == 0o600
    profile = fresh_cli.stored()["mp"]
    assert profile["url"] == root
    assert profile["credentials"] == shared_region.api_key.split(":")
    assert any(r["name"] == "RackControllersHandler" for r in profile["description"]["resources"])
    fresh_cli.ok("login", "anon", root.rstrip("/"))  # no key, stdin not a terminal: anonymous
    assert fresh_cli.ok("list").splitlines() == [f"anon {root}", f"mp {root} {shared_region.api_key}"]
    fresh_cli.ok("logout", "mp")
    assert fresh_cli.ok("list").splitlines() == [f"anon {root}"]
    assert "no profile named 'mp'" in one_line_error(fresh_cli.run("logout", "mp"))


def test_login_key_from_stdin(fresh_cli, shared_region):
    result = fresh_cli.run("login", "mp", shared_region.url, "-", input=shared_region.api_key + "\n")
    assert result.returncode == 0, result.stderr
    assert fresh_cli.stored()["mp"]["credentials"] == shared_region.api_key.split(":")


@pytest.mark.parametrize(
    "bad_key", ["aaaaaaaaaaaaaaaaaa:bbbbbbbbbbbbbbbbbb:cccccccccccccccccccccccccccccccc", "WRONG-SECRET"]
)
def test_login_rejected_key(fresh_cli, shared_region, bad_key):
    if bad_key == "WRONG-SECRET":  # real consumer and token, wrong secret: the signature must be checked
        ck, tk, _ = shared_region.api_key.split(":")
        bad_key = f"{ck}:{tk}:{'x' * 32}"
    result = fresh_cli.run("login", "bad", shared_region.url, bad_key)
    assert one_line_error(result) == "error: The MAAS server rejected your API key."
    assert not fresh_cli.profiles.exists() or "bad" not in fresh_cli.stored()


def test_login_malformed_key_and_unreachable_url(fresh_cli, shared_region):
    assert "consumer_key:token_key:token_secret" in one_line_error(
        fresh_cli.run("login", "p", shared_region.url, "nope")
    )
    port = free_port_block(1)
    line = one_line_error(fresh_cli.run("login", "p", f"http://127.0.0.1:{port}/MAAS/", shared_region.api_key))
    assert "cannot reach" in line
    assert "metalplane command" in one_line_error(fresh_cli.run("login", "status", shared_region.url))


def test_refresh_refetches_descriptions(fresh_cli, shared_region):
    fresh_cli.ok("login", "mp", shared_region.url, shared_region.api_key)
    data = json.loads(fresh_cli.profiles.read_text())
    good = data["profiles"]["mp"]["description"]
    data["profiles"]["mp"]["description"] = {"hash": "stale", "resources": []}
    fresh_cli.profiles.write_text(json.dumps(data))
    assert "no handler" in one_line_error(fresh_cli.run("mp", "fabrics", "read"))
    fresh_cli.ok("refresh")
    assert fresh_cli.stored()["mp"]["description"]["hash"] == good["hash"]
    assert isinstance(fresh_cli.json("mp", "fabrics", "read"), list)


def test_fabrics_read_is_json(cli):
    fabrics = cli.json("admin", "fabrics", "read")
    default = next(f for f in fabrics if f["id"] == 0)
    assert default["name"] == "fabric-0"
    assert {"vid": 0, "fabric_id": 0}.items() <= default["vlans"][0].items()
    assert cli.ok("admin", "fabrics", "read").startswith("[\n    {\n        ")  # indent 4


def test_subnets_create_then_read(cli, api):
    created = cli.json(
        "admin",
        "subnets",
        "create",
        "cidr=10.201.1.0/24",
        "name=cli-subnet",
        "dns_servers=10.201.1.2",
        "dns_servers=10.201.1.3",
    )
    try:
        assert created["cidr"] == "10.201.1.0/24" and created["name"] == "cli-subnet"
        assert created["vlan"]["fabric_id"] == 0
        listed = {s["cidr"]: s for s in cli.json("admin", "subnets", "read")}
        assert listed["10.201.1.0/24"]["id"] == created["id"]
        assert cli.json("admin", "subnet", "read", str(created["id"]))["name"] == "cli-subnet"
    finally:
        assert api.delete(f"subnets/{created['id']}/").status_code == 204


def test_value_from_file_and_validation_error(cli, api, tmp_path):
    created = cli.json("admin", "subnets", "create", "cidr=10.201.3.0/24")
    try:
        (tmp_path / "desc.txt").write_text("described from a file")
        updated = cli.json("admin", "subnet", "update", str(created["id"]), f"description@={tmp_path / 'desc.txt'}")
        assert updated["description"] == "described from a file"
        dup = cli.run("admin", "subnets", "create", "cidr=10.201.3.0/24")
        assert dup.returncode == 2
        assert "cidr" in json.loads(dup.stdout)  # the server's validation errors, as JSON
        missing = one_line_error(cli.run("admin", "subnet", "update", str(created["id"]), "description@=/no/such/file"))
        assert "cannot read" in missing
    finally:
        assert api.delete(f"subnets/{created['id']}/").status_code == 204


def test_ipranges_create_dynamic(cli, api):
    subnet = cli.json("admin", "subnets", "create", "cidr=10.201.2.0/24")
    try:
        created = cli.json(
            "admin", "ipranges", "create", "type=dynamic", "start_ip=10.201.2.100", "end_ip=10.201.2.150"
        )
        try:
            assert created["type"] == "dynamic"
            assert (created["start_ip"], created["end_ip"]) == ("10.201.2.100", "10.201.2.150")
            assert created["subnet"]["id"] == subnet["id"]
            ids = [r["id"] for r in cli.json("admin", "ipranges", "read")]
            assert created["id"] in ids
        finally:
            api.delete(f"ipranges/{created['id']}/")
    finally:
        assert api.delete(f"subnets/{subnet['id']}/").status_code == 204


def test_vlan_update_with_positional_params(cli, api):
    fabric = cli.json("admin", "fabrics", "create", f"name=cli-{uuid.uuid4().hex[:8]}")
    try:
        vlan = cli.json("admin", "vlan", "update", str(fabric["id"]), "0", "name=cli-renamed", "mtu=9000")
        assert (vlan["fabric_id"], vlan["vid"], vlan["mtu"]) == (fabric["id"], 0, 9000)
        assert cli.json("admin", "vlan", "read", str(fabric["id"]), "0")["mtu"] == 9000
        created = cli.json("admin", "vlans", "create", str(fabric["id"]), "vid=2010", "name=cli-vlan")
        assert (created["vid"], created["name"]) == (2010, "cli-vlan")
        cli.ok("admin", "vlan", "delete", str(fabric["id"]), "2010")
    finally:
        assert api.delete(f"fabrics/{fabric['id']}/").status_code == 204


def test_controllers_read(cli):
    racks = cli.json("admin", "rack-controllers", "read")
    assert isinstance(racks, list)
    regions = cli.json("admin", "region-controllers", "read")
    assert any(r["node_type"] in (3, 4) and r["system_id"] for r in regions)
    # GET data goes in the query string: a filter that matches nothing
    assert cli.json("admin", "region-controllers", "read", "hostname=no-such-host") == []


def test_account_create_authorisation_token(cli, shared_region):
    token = cli.json("admin", "account", "create-authorisation-token", "name=cli-token")
    key = f"{token['consumer_key']}:{token['token_key']}:{token['token_secret']}"
    with MaasHttp(shared_region.url, key) as http:
        assert http.get("users/", op="whoami").json()["username"] == "admin"
    result = cli.run("admin", "account", "delete-authorisation-token", f"token_key={token['token_key']}")
    assert result.returncode == 0, result.stdout
    with MaasHttp(shared_region.url, key) as http:
        assert http.get("users/", op="whoami").status_code == 401


def test_http_error_prints_server_message_exit_2(cli, api):
    result = cli.run("admin", "fabric", "read", "9999")
    expected = api.get("fabrics/9999/")
    assert expected.status_code == 404
    assert result.returncode == 2
    assert result.stdout.strip() == expected.text.strip()
    assert "404" in result.stderr


def test_usage_errors_are_one_line(cli):
    assert "no handler 'fabricz'" in one_line_error(cli.run("admin", "fabricz", "read"))
    assert "no action 'rea'" in one_line_error(cli.run("admin", "fabric", "rea"))
    assert "missing ID" in one_line_error(cli.run("admin", "fabric", "read"))
    assert "key=value" in one_line_error(cli.run("admin", "fabrics", "read", "oops"))
    assert "neither a metalplane command nor a profile" in one_line_error(cli.run("nosuchprofile", "fabrics", "read"))


def test_connection_failure_is_one_line(cli, tmp_path):
    data = json.loads(cli.profiles.read_text())
    data["profiles"]["admin"]["url"] = f"http://127.0.0.1:{free_port_block(1)}/MAAS/api/2.0/"
    broken = Cli(tmp_path / "profiles.json")
    broken.profiles.write_text(json.dumps(data))
    assert "cannot reach" in one_line_error(broken.run("admin", "fabrics", "read"))


def test_help_at_every_level(cli):
    top = cli.ok("admin", "--help")
    assert "rack-controllers" in top and "Manage rack controllers" in top and "ipranges" in top
    handler = cli.ok("admin", "account", "-h")
    assert "create-authorisation-token" in handler
    action = cli.ok("admin", "vlan", "update", "--help")
    assert "usage: metalplane admin vlan update" in action and "FABRIC_ID VID" in action
    assert "keyword arguments" in action
    incomplete = cli.run("admin")
    assert incomplete.returncode == 2 and "handlers:" in incomplete.stderr


def test_anonymous_profile_sees_anon_handlers_only(fresh_cli, shared_region):
    fresh_cli.ok("login", "anon", shared_region.url, "")
    assert fresh_cli.json("anon", "version", "read")["subversion"] == "metalplane"
    assert "no handler 'fabrics'" in one_line_error(fresh_cli.run("anon", "fabrics", "read"))
