"""What can go wrong in a region action, in the domain's words.

Services raise these; each front end renders them its own way from one rule:
the MAAS API turns each kind into a status and MAAS's body shape in exactly one
place (`region/api/errors.py`), and the metadata API answers the same statuses
in plain text. The messages are MAAS's, word for word: clients and tests compare
them, so a service chooses the words and no renderer changes them.
"""

from __future__ import annotations

FieldErrors = dict[str, list[str]]


class RegionError(Exception):
    """A request the region will not or cannot carry out; `detail` says why."""

    def __init__(self, detail: str | FieldErrors):
        super().__init__(detail if isinstance(detail, str) else repr(detail))
        self.detail = detail


class Invalid(RegionError):
    """Input that breaks a field's rule, per field: {"field": ["reason", ...]}.
    Nothing was written."""

    def __init__(self, errors: FieldErrors):
        super().__init__(errors)
        self.errors = errors

    @classmethod
    def field(cls, name: str, reason: str) -> Invalid:
        return cls({name: [reason]})


class Refused(RegionError):
    """The request as a whole cannot be done (the object's state, a malformed request)."""


class TooLarge(Refused):
    """The request is bigger than the endpoint takes (a body over its limit)."""


class NotFound(RegionError):
    """The object named does not exist. `kind` is MAAS's model name ("Machine", "VLAN")."""

    def __init__(self, kind: str, message: str | None = None):
        super().__init__(f"No {kind} matches the given query." if message is None else message)
        self.kind = kind


class Unauthenticated(RegionError):
    """The caller did not say who it is, or said it wrongly."""


class PermissionDenied(RegionError):
    """The caller is known but may not do this."""


class Conflict(RegionError):
    """Another action holds what this one needs (an import running, a file being written)."""


class Throttled(RegionError):
    """Too many attempts (failed logins) in a short time; `retry_after`: seconds to wait."""

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(RegionError):
    """The region cannot do it now (the database is away, a BMC did not answer).
    `retry_after`: seconds a client should wait, when there is a sensible figure."""

    retry_after: int | None = 5


def raise_if(errors: FieldErrors) -> None:
    if errors:
        raise Invalid(errors)
