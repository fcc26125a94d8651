"""The database tells the regions what changed (migration 0010's triggers), and only that:
heartbeats and upserts that change nothing stay silent, so open pages are not redrawn
every second and NOTIFY costs nothing on the hot paths."""

from __future__ import annotations

import time

import psycopg

from metalplane.region.bootstrap import run_db
from metalplane.region.changes import CHANNEL
from metalplane.region.db.engine import conninfo
from metalplane.region.services import racks, settings
from metalplane.region.services.controllers import new_system_id
from metalplane.region.services.nodes import interfaces_of
from tests.support.processes import wait_until


def drain(conn: psycopg.Connection, seconds: float) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        got.extend(n.payload for n in conn.notifies(timeout=left, stop_after=1))
    return got


def workers_up(region) -> bool:
    with region.api() as api:
        (found,) = api.get("regioncontrollers/").json()
    return len(found["processes"]) == region.config.num_workers


def test_changes_are_notified_and_heartbeats_are_not(shared_region):
    config = shared_region.config
    wait_until(lambda: workers_up(shared_region), 20, what="every worker registered")
    with psycopg.connect(conninfo(config, "notification-test"), autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        # The region's workers and supervisor heartbeat every second meanwhile.
        assert drain(listener, 2.5) == []

        system_id = new_system_id()
        services = [{"name": "tftp", "status": "running", "status_info": "ok"}]

        async def register(conn):
            node_id = await racks.register_rack(
                conn,
                system_id,
                f"notify-{system_id}",
                "0.1.0",
                [{"name": "eth0", "mac": "52:54:00:cc:00:01", "addresses": ["10.204.0.2/24"]}],
            )
            await racks.update_services(conn, node_id, services)
            return node_id

        node_id = run_db(config, register)
        assert {"nodes.controller", "controller_info", "interfaces", "ip_addresses", "service_status"} <= set(
            drain(listener, 1.0)
        )

        # The rack's 5-second report, unchanged: silent. Changed: the status, and the
        # event that records the change (issue 16), one notification each.
        run_db(config, lambda conn: racks.update_services(conn, node_id, services))
        assert drain(listener, 1.0) == []
        changed = [{"name": "tftp", "status": "dead", "status_info": "port in use"}]
        run_db(config, lambda conn: racks.update_services(conn, node_id, changed))
        assert sorted(drain(listener, 1.0)) == ["events", "service_status"]

        run_db(config, lambda conn: settings.set_setting(conn, "maas_name", "notified"))
        assert drain(listener, 1.0) == ["config"]
        run_db(config, lambda conn: settings.set_setting(conn, "maas_name", "metalplane"))

        run_db(config, lambda conn: racks.delete_rack(conn, system_id, force=True))
        assert "nodes.controller" in drain(listener, 1.0)


def test_a_rack_registering_again_unchanged_writes_no_interface(shared_region):
    """Every link of a rack registers, and reconnects register again: an unchanged report
    leaves its interfaces alone (no write, no cluster-wide registration lock); a changed one
    is written."""
    config = shared_region.config
    system_id = new_system_id()
    eth0 = {"name": "eth0", "mac": "52:54:00:cc:00:02", "addresses": ["10.205.0.2/24", "fe80::1/64"]}
    bond = {"name": "bond0", "mac": "52:54:00:cc:00:03", "type": "bond", "addresses": []}

    def register(reported):
        return run_db(
            config, lambda conn: racks.register_rack(conn, system_id, f"again-{system_id}", "0.1.0", reported)
        )

    node_id = register([eth0, bond])
    with psycopg.connect(conninfo(config, "notification-test"), autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        register([bond, eth0])  # the same, in another order
        assert not {"interfaces", "ip_addresses"} & set(drain(listener, 1.0))
        register([{**eth0, "addresses": ["10.205.0.3/24"]}, bond])
        assert {"ip_addresses"} <= set(drain(listener, 1.0))
        register([{**eth0, "addresses": ["10.205.0.3/24"]}])
        assert "interfaces" in drain(listener, 1.0)
    found = run_db(config, lambda conn: interfaces_of(conn, [node_id]))[node_id]
    assert [(i["name"], [link["ip"] for link in i["links"]]) for i in found] == [("eth0", ["10.205.0.3"])]
    run_db(config, lambda conn: racks.delete_rack(conn, system_id, force=True))
