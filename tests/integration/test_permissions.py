"""Who may act on a machine (issue 12): every machine action by every kind of caller,
against a real region, beside what MAAS 3.7.3 answers (maasserver's NodePermission
and api/machines.py: the permission each action checks and its 403 body).

The rules live in the service layer (region/services/permissions.py), so the web UI
gets the same answers. To add an action (allocate, deploy, release...): one line in
permissions.MACHINE_RULES, one entry in ACTIONS and its row in TABLE.

The owner is set in the database (allocation itself is test_machine_lifecycle.py's).
"""

from __future__ import annotations

import shutil
import uuid

import pytest
from sqlalchemy import update

from metalplane.client.http import MaasHttp
from metalplane.region.api.handlers import all_handlers
from metalplane.region.bootstrap import run_db
from metalplane.region.db.tables import nodes, users
from metalplane.region.services.permissions import MACHINE_RULES
from tests.conftest import RunningRegion, create_admin, create_user, make_region_config
from tests.support.databases import world_traversable_tempdir
from tests.support.processes import RegionProcess

# action: (HTTP method, op)
ACTIONS = {
    "power_on": ("POST", "power_on"),
    "power_off": ("POST", "power_off"),
    "power_cycle": ("POST", "power_cycle"),
    "query_power_state": ("GET", "query_power_state"),
    "commission": ("POST", "commission"),
    "commissioning_results": ("GET", "commissioning_results"),
    "deploy": ("POST", "deploy"),
    "release": ("POST", "release"),
    "abort": ("POST", "abort"),
    "mark_broken": ("POST", "mark_broken"),
    "mark_fixed": ("POST", "mark_fixed"),
    "lock": ("POST", "lock"),
    "unlock": ("POST", "unlock"),
    "set_owner_data": ("POST", "set_owner_data"),
    "rescue_mode": ("POST", "rescue_mode"),
    "exit_rescue_mode": ("POST", "exit_rescue_mode"),
    # The same rule as set_owner_data (MAAS's newer name for it).
    "set_workload_annotations": ("POST", "set_workload_annotations"),
    # Decided by the handler before any rule of MACHINE_RULES: admins only (MAAS asks
    # NodePermission.admin; the body is the API's "reserved for admin users"), or reads that
    # find only the machines the caller may view.
    "read": ("GET", None),
    "details": ("GET", "details"),
    "update": ("PUT", None),
    "delete": ("DELETE", None),
    "power_parameters": ("GET", "power_parameters"),
}
ALIASES = {"set_workload_annotations": "set_owner_data"}
HANDLER_ACTIONS = {"read", "details", "update", "delete", "power_parameters"}

# Callers. "owner"/"other"/"admin" act on a machine owned by the user "owner";
# "user, unowned"/"admin, unowned" on a machine nobody owns.
ROLES = ("admin", "owner", "other", "anonymous", "user, unowned", "admin, unowned")

# (action, role) -> (metalplane's status, MAAS 3.7's status). MAAS's rules: view =
# unowned, owner or admin; edit = the same and not locked; admin = admins. 403 bodies
# are empty. None: MAAS has no such action.
TABLE: dict[str, dict[str, tuple[int, int | None]]] = {
    #                    admin       owner       other       anonymous   user,unowned admin,unowned
    "power_on": dict(zip(ROLES, [(200, 200), (200, 200), (403, 403), (401, 401), (403, 409), (200, 409)])),
    "power_off": dict(zip(ROLES, [(200, 200), (200, 200), (403, 403), (401, 401), (403, 200), (200, 200)])),
    "power_cycle": dict(zip(ROLES, [(200, None), (200, None), (403, None), (401, None), (403, None), (200, None)])),
    "query_power_state": dict(zip(ROLES, [(200, 200), (200, 200), (403, 403), (401, 401), (200, 200), (200, 200)])),
    "commission": dict(zip(ROLES, [(200, 200), (403, 403), (403, 403), (401, 401), (403, 403), (200, 200)])),
    "commissioning_results": dict(zip(ROLES, [(200, 200), (200, 200), (403, 403), (401, 401), (200, 200), (200, 200)])),
    # The lifecycle, on a New machine: allowed callers get the state's 409.
    "deploy": dict(zip(ROLES, [(409, 409), (409, 409), (403, 403), (401, 401), (409, 409), (409, 409)])),
    "release": dict(zip(ROLES, [(409, 409), (409, 409), (403, 403), (401, 401), (409, 409), (409, 409)])),
    "abort": dict(zip(ROLES, [(409, 409), (409, 409), (403, 403), (401, 401), (409, 409), (409, 409)])),
    "mark_broken": dict(zip(ROLES, [(403, 403), (200, 200), (403, 403), (401, 401), (200, 403), (200, 403)])),
    "mark_fixed": dict(zip(ROLES, [(409, 409), (403, 403), (403, 403), (401, 401), (403, 403), (409, 409)])),
    "lock": dict(zip(ROLES, [(409, 409), (409, 409), (403, 403), (401, 401), (409, 409), (409, 409)])),
    "unlock": dict(zip(ROLES, [(409, 409), (409, 409), (403, 403), (401, 401), (409, 409), (409, 409)])),
    "set_owner_data": dict(zip(ROLES, [(403, 403), (200, 200), (403, 403), (401, 401), (200, 409), (200, 409)])),
    # Rescue mode: admins (MAAS asks NodePermission.admin); a New machine may enter it, not exit it.
    "rescue_mode": dict(zip(ROLES, [(200, 200), (403, 403), (403, 403), (401, 401), (403, 403), (200, 200)])),
    "exit_rescue_mode": dict(zip(ROLES, [(409, 409), (403, 403), (403, 403), (401, 401), (403, 403), (409, 409)])),
    "set_workload_annotations": dict(
        zip(ROLES, [(403, 403), (200, 200), (403, 403), (401, 401), (200, 409), (200, 409)])
    ),
    "read": dict(zip(ROLES, [(200, 200), (200, 200), (404, 403), (401, 401), (200, 200), (200, 200)])),
    "details": dict(zip(ROLES, [(200, 200), (200, 200), (404, 403), (401, 401), (200, 200), (200, 200)])),
    "update": dict(zip(ROLES, [(200, 200), (403, 403), (403, 403), (401, 401), (403, 403), (200, 200)])),
    "delete": dict(zip(ROLES, [(204, 204), (403, 403), (403, 403), (401, 401), (403, 403), (204, 204)])),
    "power_parameters": dict(zip(ROLES, [(200, 200), (403, 403), (403, 403), (401, 401), (403, 403), (200, 200)])),
}
# What a machine's status is after an action that was allowed (others leave it New).
STATUS_AFTER = {"commission": "Commissioning", "mark_broken": "Broken", "rescue_mode": "Entering rescue mode"}

# Where metalplane answers otherwise than MAAS, and why (docs/security.md, "API").
DEVIATIONS = {
    ("power_on", "user, unowned"): "MAAS: 409 \"Can't start node: it hasn't been allocated.\"; a pool machine "
    "is no user's to power: 403",
    ("power_on", "admin, unowned"): "MAAS refuses admins too (409); metalplane has no allocation yet, and admins "
    "power pool machines for maintenance",
    ("power_off", "user, unowned"): "MAAS's edit permission lets any user power off a machine nobody owns",
    ("mark_broken", "user, unowned"): "MAAS: only the owner; a pool machine may be marked broken by a user here",
    ("mark_broken", "admin, unowned"): "MAAS: only the owner, admins included",
    ("set_owner_data", "user, unowned"): "MAAS: 409 \"it hasn't been acquired\"; python-libmaas's save() of a "
    "new machine's owner_data needs it",
    ("set_owner_data", "admin, unowned"): "as for a user",
    ("set_workload_annotations", "user, unowned"): "as set_owner_data",
    ("set_workload_annotations", "admin, unowned"): "as set_owner_data",
    ("read", "other"): "MAAS: 403 (get_node_or_404 with the view permission); here another user's machine "
    "is not found, as it is absent from that user's machines/ list",
    ("details", "other"): "as read",
}


@pytest.fixture(scope="module")
def lab(databases):
    root = world_traversable_tempdir("mp-perms-")
    dbname = databases.new_database()
    config = make_region_config(databases, dbname, root / "data")
    keys = {"admin": create_admin(config), "owner": create_user(config, "owner"), "other": create_user(config, "other")}
    keys["user, unowned"] = keys["other"]
    keys["admin, unowned"] = keys["admin"]
    process = RegionProcess(config, root / "region")
    process.start_and_wait()
    yield RunningRegion(process, keys["admin"]), keys
    process.stop()
    databases.drop_database(dbname)
    shutil.rmtree(root, ignore_errors=True)


def new_machine(region: RunningRegion, owner: str | None) -> str:
    digits = uuid.uuid4().hex[:6]
    mac = "52:54:02:" + ":".join(digits[i : i + 2] for i in range(0, 6, 2))
    with region.api() as api:
        response = api.post(
            "machines/", mac_addresses=mac, power_type="manual", architecture="amd64/generic", commission="false"
        )
        assert response.status_code == 200, response.text
        system_id = response.json()["system_id"]
    if owner is not None:

        async def own(conn) -> None:
            user_id = users.select().where(users.c.username == owner).with_only_columns(users.c.id).scalar_subquery()
            await conn.execute(update(nodes).where(nodes.c.system_id == system_id).values(owner_id=user_id))

        run_db(region.config, own)
    return system_id


def test_every_rule_has_a_row_and_every_row_a_rule():
    assert set(TABLE) == set(ACTIONS)
    assert set(MACHINE_RULES) == set(ACTIONS) - HANDLER_ACTIONS - set(ALIASES)
    assert all(TABLE[alias] == TABLE[rule] for alias, rule in ALIASES.items())
    assert all(set(row) == set(ROLES) for row in TABLE.values())


def test_every_machine_action_of_the_api_has_a_row():
    """What describe/ lists for MachineHandler is exactly what the table checks."""
    (handler,) = [h for h in all_handlers() if h.name == "MachineHandler"]
    assert {(a.method, a.op) for a in handler.actions} == set(ACTIONS.values())


def test_deviations_from_maas_are_exactly_the_listed_ones():
    differing = {
        (action, role)
        for action, row in TABLE.items()
        for role, (ours, maas) in row.items()
        if maas is not None and ours != maas
    }
    assert differing == set(DEVIATIONS)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(ACTIONS))
def test_permission_table(lab, action, role):
    region, keys = lab
    expected, _ = TABLE[action][role]
    system_id = new_machine(region, None if "unowned" in role else "owner")
    method, op = ACTIONS[action]
    with MaasHttp(region.url, keys.get(role)) as api:
        response = api.request(method, f"machines/{system_id}/", op)
    assert response.status_code == expected, (action, role, response.text)
    if expected == 403:
        # MAAS's empty body for node permission failures; the API's words for admin-only actions
        assert response.text == ("This method is reserved for admin users." if action in HANDLER_ACTIONS else "")
    with region.api() as api:
        after = api.get(f"machines/{system_id}/")
    if action == "delete" and expected == 204:
        assert after.status_code == 404
        return
    assert after.json()["status_name"] == (STATUS_AFTER.get(action, "New") if expected == 200 else "New")
