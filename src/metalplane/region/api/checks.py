"""What MAAS checks before an action runs, in MAAS's words: numeric ids in URIs,
mandatory parameters, resources only administrators may use at all."""

from __future__ import annotations

import re

from metalplane.region.api.context import Ctx
from metalplane.region.api.params import Params
from metalplane.region.errors import NotFound, PermissionDenied, Refused

PG_INT_MAX = 2**31 - 1  # an id beyond this names nothing (PostgreSQL integer)


def as_id(text: str | None) -> int | None:
    """A database id, or None for anything that cannot be one."""
    if text is None or not re.fullmatch(r"[0-9]{1,10}", text.strip()):
        return None
    value = int(text)
    return value if value <= PG_INT_MAX else None


def path_id(ctx: Ctx, name: str, kind: str) -> int:
    """The integer URI part `name`; MAAS's 404 for `kind` when it cannot name a row."""
    value = as_id(ctx.path.get(name))
    if value is None:
        raise NotFound(kind)
    return value


def mandatory(params: Params, name: str) -> str:
    """MAAS's get_mandatory_param: absent -> 400 "No provided NAME!"."""
    value = params.str(name)
    if value is None:
        raise Refused(f"No provided {name}!")
    return value


def admins_only(ctx: Ctx) -> None:
    """MAAS's AdminRestrictedResource (boot sources, license keys): every action, even
    a read, is refused to other users with this text."""
    if ctx.user is None or not ctx.user.is_superuser:
        raise PermissionDenied("User is not allowed access to this API.")
