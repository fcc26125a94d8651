"""Region HA end to end, with real processes in network namespaces.

* The seeds' "add a region host" on the embedded database: `metalplane db
  allow-region`, copy regiond.conf, `local-config-set --database-host`, start.
* Two regions behind a real HAProxy (config from `metalplane region
  haproxy-config`), PostgreSQL primary + synchronous streaming standby, two
  racks, client traffic: kill -9 region A, kill -9 the database primary and
  promote the standby, restart region A; nothing acknowledged is lost.
"""

from __future__ import annotations

import json
import shutil
import time

import pytest

from metalplane.config.region import load_region_config, update_region_config
from metalplane.identity import read_secret
from tests.support.databases import world_traversable_tempdir
from tests.support.haproxy import check_config
from tests.support.netlab import Lab
from tests.support.ns_api import NsApi
from tests.support.processes import wait_until
from tests.support.region_ha import PYTHON, RegionHaLab

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def ha():
    with Lab() as lab:
        h = RegionHaLab(lab)
        try:
            h.build()
            yield h
        finally:
            h.close()


def test_generated_haproxy_config_passes_haproxy_c(ha):
    text = ha.haproxy.config_path.read_text()
    check_config(ha.haproxy.config_path)
    for line in (
        "balance source",
        "hash-type consistent",
        "retries 3",
        "option redispatch 1",
        "option http-server-close",
        "http-check send meth GET uri /MAAS/metalplane/health",
        f"bind {ha.addr(5)}:80",
        f"server region-a {ha.addr(11)}:5240 check",
        f"server region-b {ha.addr(12)}:5240 check",
    ):
        assert line in text
    assert ha.haproxy.server_status() == {"region-a": "UP", "region-b": "UP"}


def test_second_region_shares_secret_users_objects_and_racks_find_it(ha):
    a, b = ha.regions["region-a"], ha.regions["region-b"]
    assert read_secret(a.data_dir) == read_secret(b.data_dir)
    config_a, config_b = load_region_config(a.config_path), load_region_config(b.config_path)
    assert config_b.database_hosts == config_a.database_hosts == [n.dsn_host for n in ha.pg.node_list]
    # Same users: the admin's key (made on region A) works on region B; same objects.
    zone = ha.direct["region-a"].json("POST", "zones/", name="made-on-a", description="x")
    assert zone["name"] == "made-on-a"
    assert "made-on-a" in {z["name"] for z in ha.direct["region-b"].json("GET", "zones/")}
    assert ha.direct["region-b"].json("GET", "users/", "whoami")["username"] == "admin"
    regions = ha.api.json("GET", "regioncontrollers/")
    assert sorted(r["hostname"] for r in regions) == ["region-a", "region-b"]
    # B's start-up budget check counted both registered regions: 2 x (2 workers x (8 + 1) + 2)
    # (the supervisor's connection and its LISTEN for named and chronyd).
    assert "budget OK: 2 region(s) need up to 40 connections" in b.log()
    assert all(len(r["processes"]) == ha.workers for r in regions)
    # The racks were given region A's URL only; they found region B's workers.
    data = ha.wait_balanced(30)
    for endpoints in data["racks"].values():
        assert {e.split(":")[0] for e in endpoints} == {"region-a", "region-b"}
    # Through HAProxy too, with the CLI as an operator uses it (port 80).
    assert ha.api.request("GET", "version/")["status"] == 200
    env = {"METALPLANE_PROFILES": str(ha.root / "profiles.json")}
    ha.client.run([*PYTHON, "login", "admin", ha.lb_url, ha.api_key], env=env)
    zones = json.loads(ha.client.run([*PYTHON, "admin", "zones", "read"], env=env).stdout)
    assert "made-on-a" in {z["name"] for z in zones}


def test_region_kill_database_failover_and_region_restart_under_traffic(ha):
    loop = ha.start_traffic()
    time.sleep(2)

    # kill -9 of region A, which serves the client and is the only region the racks were told
    # about: no read fails (HAProxy replays the ones in flight on B), racks are on B within 3 s.
    kill = ha.kill_region_phase(loop, victim="region-a")
    print("region kill:", json.dumps({k: v for k, v in kill.items() if not k.endswith("failures")}))
    assert kill["victim_served_client"]
    assert kill["reads"] > 50
    assert not kill["read_failures"], kill["read_failures"][:5]
    assert kill["racks_reachable_s"] is not None and kill["racks_reachable_s"] < 3.0
    assert kill["racks_on_survivor_s"] is not None and kill["racks_on_survivor_s"] < 3.0
    for failure in kill["write_failures"]:  # a write in flight to the dead region: outcome unknown, never a 5xx body
        assert failure["status"] in (0, 502, 503), failure

    # kill -9 of the PostgreSQL primary; the standby is promoted 3 s later.
    failover = ha.db_failover_phase(loop, promote_after=3.0)
    print("database failover:", json.dumps({k: v for k, v in failover.items() if not k.endswith("failures")}))
    assert failover["write_back_after_promotion_s"] < 15.0
    for failure in failover["write_failures"] + failover["read_failures"]:
        assert failure["status"] in (0, 502, 503), failure
        if failure["status"] == 503 and failure.get("retry_after") is None:
            assert "No server is available" in failure.get("body", ""), failure  # HAProxy's own 503
    assert not ha.pg.nodes["db2"].in_recovery()

    # Region A comes back (its first database host is the dead one): it rejoins and rack
    # connections rebalance.
    restart = ha.restart_region_phase("region-a")
    print("region restart:", json.dumps({k: v for k, v in restart.items() if k != "workers"}))
    assert restart["max_over_mean"] <= 1.25
    assert {w["hostname"] for w in restart["workers"]} == {"region-a", "region-b"}
    # Every worker, region B's included, listens for notifications on the new primary again.
    listening = "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'metalplane-listen-%';"
    wait_until(
        lambda: int(ha.pg.nodes["db2"].psql(listening)) == 2 * ha.workers,
        10,
        what="every worker's LISTEN connection on the new primary",
    )
    assert ha.api.request("POST", "zones/", name="after-restart", description="")["status"] == 200
    assert "after-restart" in {z["name"] for z in ha.direct["region-a"].json("GET", "zones/")}

    loop.stop()
    acknowledged, missing = ha.missing_acknowledged_writes(loop)
    assert acknowledged > 100
    assert not missing, f"{len(missing)} acknowledged writes lost: {sorted(missing)[:10]}"

    # The connection budget held under all this: no region ever needs more than the formula says.
    needed = load_region_config(ha.regions["region-a"].config_path).connections_needed()
    per_region = ha.pg.nodes["db2"].psql(
        "SELECT string_agg(n::text, ',') FROM (SELECT count(*) AS n "
        "FROM pg_stat_activity WHERE datname = 'maasdb' GROUP BY client_addr) c;"
    )
    assert per_region and all(0 < int(n) <= needed for n in per_region.split(",")), (per_region, needed)


def test_add_region_host_on_the_embedded_database():
    """The seeds' steps with `metalplane db allow-region` doing the pg_hba.conf part."""
    root = world_traversable_tempdir("mp-ha-embedded-")
    try:
        with Lab() as lab:
            lab.add_network("lan", "10.73.0.0/24")
            host_a = lab.add_host("ra", {"lan": "10.73.0.11/24"})
            host_b = lab.add_host("rb", {"lan": "10.73.0.12/24"})
            dir_a, dir_b = root / "a", root / "b"
            try:
                _embedded_second_region(lab, host_a, host_b, dir_a, dir_b)
            finally:
                host_a.run([*PYTHON, "stop", "--data-dir", str(dir_a)], check=False, timeout=90)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _embedded_second_region(lab, host_a, host_b, dir_a, dir_b):
    url_a, url_b = "http://10.73.0.11:5240/MAAS/", "http://10.73.0.12:5240/MAAS/"
    host_a.run(
        [
            *PYTHON,
            "init",
            "--mode",
            "region",
            "--data-dir",
            str(dir_a),
            "--num-workers",
            "1",
            "--maas-url",
            url_a.rstrip("/"),
            "--admin-password",
            "pw",
        ],
        timeout=180,
    )
    key = host_a.run([*PYTHON, "apikey", "--data-dir", str(dir_a), "--username", "admin"]).stdout.strip()
    listen = host_a.run(["ss", "-ltnH", "sport = :5432"]).stdout
    assert listen.strip() == "", "the embedded cluster starts on its unix socket only"

    out = host_a.run([*PYTHON, "db", "allow-region", "10.73.0.12", "--data-dir", str(dir_a)]).stdout
    assert 'added "host maasdb maas 10.73.0.12/32 scram-sha-256"' in out
    assert "listen_addresses: '' -> '10.73.0.11'" in out and "restarted" in out
    assert "10.73.0.11:5432" in host_a.run(["ss", "-ltnH", "sport = :5432"]).stdout
    hba = (dir_a / "db" / "data" / "pg_hba.conf").read_text()
    assert hba.count("host maasdb maas 10.73.0.12/32 scram-sha-256") == 1
    again = host_a.run([*PYTHON, "db", "allow-region", "10.73.0.12", "--data-dir", str(dir_a)]).stdout
    assert "already has" in again and "unchanged" in again and "restarted" not in again

    # Region A lived through the restart: its workers reconnect by themselves.
    api_a = NsApi(host_b, url_a, key)
    wait_until(lambda: api_a.request("GET", "zones/")["status"] == 200, 20, what="region A after the restart")
    api_a.json("POST", "zones/", name="before-b", description="")

    # The seeds: copy regiond.conf, local-config-set --database-host PRIMARY, start.
    dir_b.mkdir()
    shutil.copy2(dir_a / "regiond.conf", dir_b / "regiond.conf")
    update_region_config(dir_b / "regiond.conf", {"data_dir": str(dir_b)})  # lab only: one shared filesystem
    host_b.run(
        [
            *PYTHON,
            "region",
            "local-config-set",
            "--data-dir",
            str(dir_b),
            "--database-host",
            "10.73.0.11",
            "--maas-url",
            url_b.rstrip("/"),
            "--hostname",
            "region-b",
        ]
    )
    proc = host_b.spawn([*PYTHON, "region", "run", "--data-dir", str(dir_b)], log=dir_b / "regiond.log")
    api_b = NsApi(host_a, url_b, key)
    wait_until(
        lambda: api_b.request("GET", "version/")["status"] == 200 or proc.poll() is not None, 60, what="region B"
    )
    assert proc.poll() is None, proc.log()[-3000:]
    # Same secret, same users (A's key works on B), same objects, both regions registered.
    wait_until(lambda: read_secret(dir_b), 10, what="region B's copy of the secret")
    assert read_secret(dir_b) == read_secret(dir_a)
    assert "before-b" in {z["name"] for z in api_b.json("GET", "zones/")}
    api_b.json("POST", "zones/", name="made-on-b", description="")
    assert "made-on-b" in {z["name"] for z in api_a.json("GET", "zones/")}
    hostnames = {r["hostname"] for r in api_a.json("GET", "regioncontrollers/")}
    assert "region-b" in hostnames and len(hostnames) == 2
    host_b.stop(proc, timeout=15)
