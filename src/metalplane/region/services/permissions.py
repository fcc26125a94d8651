"""Who may act on a machine: one table of rules, for the API and the UI alike. Pure.

MAAS's node permissions (maasserver NodePermission, 3.7), which metalplane's
rules are named after:

- view:  the machine has no owner, or the caller owns it, or is an admin;
- edit:  as view (and the machine is not locked);
- admin: the caller is an admin (and the machine is not locked).

A refusal is 403 with an empty body, as MAAS answers node permission failures.

Where metalplane is stricter than MAAS, on purpose (issue 12):

- power_on, power_off and power_cycle are **owner-or-admin**: MAAS's `edit` lets
  any user power off a machine nobody owns, and answers power_on of a machine
  nobody owns with 409 "Can't start node: it hasn't been allocated." (admins
  included). Here nobody but an admin switches a pool machine on or off, and
  an admin may (metalplane has no allocation yet to give machines owners).
- metalplane has no machine locks yet, so `locked` never refuses anything.

Adding an action (allocate, deploy, release...) is one line in MACHINE_RULES and
its row in tests/integration/test_permissions.py's table.
"""

from __future__ import annotations

from typing import Any, Protocol

from metalplane.region.errors import PermissionDenied

VIEW = "view"  # unowned, owner or admin
OWNER_OR_ADMIN = "owner-or-admin"
ADMIN = "admin"

MACHINE_RULES: dict[str, str] = {
    "query_power_state": VIEW,
    "commissioning_results": VIEW,
    "power_on": OWNER_OR_ADMIN,
    "power_off": OWNER_OR_ADMIN,
    "power_cycle": OWNER_OR_ADMIN,
    "commission": ADMIN,
}


class Actor(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def is_superuser(self) -> bool: ...


def allowed(rule: str, actor: Actor | None, owner_id: int | None) -> bool:
    if actor is None:
        return False
    if actor.is_superuser:
        return True
    if rule == ADMIN:
        return False
    if rule == OWNER_OR_ADMIN:
        return owner_id is not None and owner_id == actor.id
    if rule == VIEW:
        return owner_id is None or owner_id == actor.id
    raise ValueError(f"unknown rule {rule!r}")


def require(actor: Actor | None, action: str, machine: dict[str, Any]) -> None:
    """Raise PermissionDenied (MAAS's empty 403) unless `actor` may do `action` to `machine`."""
    if not allowed(MACHINE_RULES[action], actor, machine.get("owner_id")):
        raise PermissionDenied("")
