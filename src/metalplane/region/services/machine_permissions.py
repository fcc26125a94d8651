"""Who may do what to a machine: one table of rules for the lifecycle actions. Pure.

MAAS's node permissions (maasserver NodePermission and api/machines.py, 3.7):

- view:  the machine has no owner, or the caller owns it, or is an admin;
- edit:  as view, and the machine is not locked;
- admin: the caller is an admin, and the machine is not locked;
- lock:  as view, and the machine is in a resource pool (every machine is);
- owner: edit, and the machine is the caller's or nobody's (mark_broken,
  set_owner_data: admins are refused another user's machine, as MAAS refuses them).

A refusal is MAAS's 403 with an empty body. `allocate` and `list_allocated` act on
the caller's own choice of machines (AUTHENTICATED): who may take which machine is
the allocation's rule (unowned, unlocked, Ready).

The power and commissioning rules of issue 12 are kept beside these by the
hardening work (services/permissions.py); the two tables are one table's halves.
"""

from __future__ import annotations

from typing import Any, Protocol

from metalplane.region.errors import PermissionDenied

VIEW = "view"
EDIT = "edit"
ADMIN = "admin"
LOCK = "lock"
OWNER = "owner"
AUTHENTICATED = "authenticated"

LIFECYCLE_RULES: dict[str, str] = {
    "allocate": AUTHENTICATED,
    "list_allocated": AUTHENTICATED,
    "deploy": EDIT,
    "release": EDIT,
    "abort": EDIT,
    "mark_broken": OWNER,
    "mark_fixed": ADMIN,
    "rescue_mode": ADMIN,
    "exit_rescue_mode": ADMIN,
    "lock": LOCK,
    "unlock": LOCK,
    "set_owner_data": OWNER,
    "set_workload_annotations": OWNER,
}


class Actor(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def is_superuser(self) -> bool: ...


def allowed(rule: str, actor: Actor | None, owner_id: int | None, locked: bool) -> bool:
    if actor is None:
        return False
    mine_or_free = owner_id is None or owner_id == actor.id or actor.is_superuser
    if rule == AUTHENTICATED:
        return True
    if rule == VIEW or rule == LOCK:
        return mine_or_free
    if rule == EDIT:
        return mine_or_free and not locked
    if rule == OWNER:
        return (owner_id is None or owner_id == actor.id) and not locked
    if rule == ADMIN:
        return actor.is_superuser and not locked
    raise ValueError(f"unknown rule {rule!r}")


def require(actor: Actor | None, action: str, machine: dict[str, Any]) -> None:
    """PermissionDenied (MAAS's empty 403) unless `actor` may do `action` to `machine`."""
    if not allowed(LIFECYCLE_RULES[action], actor, machine.get("owner_id"), bool(machine.get("locked"))):
        raise PermissionDenied("")
