"""Errors that services raise and the API renders the way MAAS does (status + body)."""

from __future__ import annotations



class ApiError(Exception):
    status = 500
    retry_after: int | None = None

    def __init__(self, message: str | dict[str, list[str]]):
        super().__init__(message if isinstance(message, str) else repr(message))
        self.body = message


class BadRequest(ApiError):
    status = 400


class ValidationFailed(BadRequest):
    """MAAS's form-error shape: {"field": ["reason", ...]}."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(errors)
        self.errors = errors

    @classmethod
    def field(cls, name: str, reason: str) -> ValidationFailed:
        return cls({name: [reason]})


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class MethodNotAllowed(ApiError):
    status = 405


class Conflict(ApiError):
    status = 409


class ServiceUnavailable(ApiError):
    status = 503
    retry_after = 5


def merge_errors(*groups: dict[str, list[str]]) -> dict[str, list[str]]:
    merged: dict[str, list[str]] = {}
    for group in groups:
        for key, reasons in group.items():
            merged.setdefault(key, []).extend(reasons)
    return merged


def raise_if(errors: dict[str, list[str]]) -> None:
    if errors:
        raise ValidationFailed(errors)
