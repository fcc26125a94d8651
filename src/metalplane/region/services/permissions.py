"""Who may act on a machine: one table of rules, for the API and the UI alike. Pure.

MAAS's node permissions (maasserver NodePermission, 3.7), which metalplane's
rules are named after:

- view:  the machine has no owner, or the caller owns it, or is an admin;
- edit:  as view, and the machine is not locked;
- admin: the caller is an admin, and the machine is not locked;
- lock:  as view (lock and unlock themselves);
- owner: the machine is the caller's or nobody's, and not locked (mark_broken,
  set_owner_data: admins are refused another user's machine, as MAAS refuses them).

A refusal is 403 with an empty body, as MAAS answers node permission failures.

Where metalplane answers otherwise than MAAS, on purpose (issues 12 and 15):

- power_on, power_off and power_cycle are **owner-or-admin**: MAAS's `edit` lets
  any user power off a machine nobody owns, and answers power_on of a machine
  nobody owns with 409 "Can't start node: it hasn't been allocated." (admins
  included). Here nobody but an admin switches a pool machine on or off, and
  an admin may (admins power pool machines for maintenance).
- a locked machine refuses every rule but view and lock, admins included.
- mark_broken and set_owner_data on a machine nobody owns: MAAS requires the caller
  to be the owner (403, or 409 "Cannot set workload annotation: it hasn't been
  acquired."); metalplane lets a user act on a pool machine (python-libmaas's
  Machine.save() of a new machine's owner_data needs it).

Adding an action is one line in MACHINE_RULES and its row in
tests/integration/test_permissions.py's table.
"""

from __future__ import annotations

from typing import Any, Protocol

from metalplane.region.errors import PermissionDenied

VIEW = "view"  # unowned, owner or admin
EDIT = "edit"  # as view, not locked
OWNER_OR_ADMIN = "owner-or-admin"
ADMIN = "admin"
LOCK = "lock"
OWNER = "owner"

MACHINE_RULES: dict[str, str] = {
    "query_power_state": VIEW,
    "commissioning_results": VIEW,
    "power_on": OWNER_OR_ADMIN,
    "power_off": OWNER_OR_ADMIN,
    "power_cycle": OWNER_OR_ADMIN,
    "commission": ADMIN,
    # The lifecycle (services/lifecycle.py). allocate and list_allocated need only a user:
    # which machines one may take is allocation's rule (unowned or one's own, Ready, unlocked).
    "deploy": EDIT,
    "release": EDIT,
    "abort": EDIT,
    "mark_broken": OWNER,
    "mark_fixed": ADMIN,
    "lock": LOCK,
    "unlock": LOCK,
    "set_owner_data": OWNER,
    "rescue_mode": ADMIN,  # MAAS's API asks NodePermission.admin for both
    "exit_rescue_mode": ADMIN,
}


class Actor(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def is_superuser(self) -> bool: ...

    @property
    def username(self) -> str: ...


def allowed(rule: str, actor: Actor | None, owner_id: int | None, locked: bool = False) -> bool:
    if actor is None:
        return False
    mine_or_free = owner_id is None or owner_id == actor.id
    if rule in (VIEW, LOCK):
        return actor.is_superuser or mine_or_free
    if locked:
        return False
    if rule == EDIT:
        return actor.is_superuser or mine_or_free
    if rule == OWNER:
        return mine_or_free
    if rule == OWNER_OR_ADMIN:
        return actor.is_superuser or (owner_id is not None and owner_id == actor.id)
    if rule == ADMIN:
        return actor.is_superuser
    raise ValueError(f"unknown rule {rule!r}")


def permitted(actor: Actor | None, action: str, machine: Any) -> bool:
    """Whether `actor` may do `action` to `machine` (a page offers the action only then)."""
    return allowed(MACHINE_RULES[action], actor, machine.get("owner_id"), bool(machine.get("locked")))


def require(actor: Actor | None, action: str, machine: dict[str, Any]) -> None:
    """Raise PermissionDenied (MAAS's empty 403) unless `actor` may do `action` to `machine`."""
    if not permitted(actor, action, machine):
        raise PermissionDenied("")
