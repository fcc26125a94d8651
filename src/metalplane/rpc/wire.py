"""Typed values on the wire: decoding validates, encoding gives msgpack-ready data.

Every message and reply of the contract is a pydantic dataclass (see
docs/architecture.md, "The region-rack contract", for why pydantic). Decoding
(`decode`) checks types, lengths and bounds and runs the types' own
validators; it reports *every* problem at once, each with the path of the
faulty field (``vlans[0].subnets[0].pools: ...``), by raising the type's
`InvalidMessage` class. Encoding (`encode`) turns a value into plain maps,
lists, strings and numbers.

Validators that find several problems, or problems in a sub-field, raise
`Problems` so each lands at its own path.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, ClassVar, TypeVar

from pydantic import TypeAdapter, ValidationError

T = TypeVar("T")
Path = tuple[str | int, ...]
_MAX_SHOWN = 80  # characters of a refused value quoted in an error


class InvalidMessage(ValueError):
    """A value that does not decode; `errors` lists every problem, each "path: reason".

    `code` is the RPC error code a peer answers with when it cannot build or
    read such a value, so the caller raises the same class again.
    """

    code: ClassVar[str] = "invalid-message"
    what: ClassVar[str] = "message"

    def __init__(self, errors: Sequence[str], subject: str | None = None):
        self.errors = list(errors)
        super().__init__(f"invalid {subject or self.what}:\n  " + "\n  ".join(self.errors))


class Problems(ValueError):
    """Raised by a validator: problems at paths relative to the field it validates."""

    def __init__(self, items: Sequence[tuple[Path, str]]):
        self.items = list(items)
        super().__init__("; ".join(message for _, message in self.items))


def problem(message: str, *path: str | int) -> Problems:
    return Problems([(path, message)])


def path_text(path: Path) -> str:
    """("vlans", 0, "subnets", 1, "pools") -> "vlans[0].subnets[1].pools"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def describe(exc: ValidationError, root: str) -> list[str]:
    """pydantic's errors as "path: reason" lines; `root` names the value itself."""
    out: list[str] = []
    for error in exc.errors():
        loc: Path = tuple(error["loc"])
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, Problems):
            out += [f"{path_text(loc + sub) or root}: {message}" for sub, message in cause.items]
        elif error["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
            out.append(f"{path_text(loc[:-1]) or root}: unknown field {loc[-1]!r}")
        elif error["type"] in ("missing", "missing_argument"):
            out.append(f"{path_text(loc) or root}: required")
        elif isinstance(cause, ValueError):
            out.append(f"{path_text(loc) or root}: {cause}")
        else:
            out.append(
                f"{path_text(loc) or root}: {error['msg'][:1].lower()}{error['msg'][1:]}, got {_shown(error['input'])}"
            )
    return out


@cache
def _adapter(tp: Any) -> TypeAdapter[Any]:
    return TypeAdapter(tp)


def adapter(tp: Any) -> TypeAdapter[Any]:
    """One TypeAdapter per type (building one compiles a validator)."""
    return _adapter(tp)


def decode(tp: type[T] | Any, data: Any, root: str | None = None) -> T:
    """`data` (maps and lists, as msgpack gives them) as a `tp`; raises the type's
    InvalidMessage class (its `invalid` attribute, else InvalidMessage) listing every problem."""
    try:
        return adapter(tp).validate_python(data)  # type: ignore[no-any-return]
    except ValidationError as exc:
        root = root or getattr(tp, "wire_root", None) or _name(tp)
        invalid: type[InvalidMessage] | None = getattr(tp, "invalid", None)
        if invalid is not None:
            raise invalid(describe(exc, root)) from None
        raise InvalidMessage(describe(exc, root), root) from None


def encode(value: Any, tp: Any = None) -> Any:
    """`value` (of type `tp`, by default its own) as plain data for msgpack."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return adapter(type(value) if tp is None else tp).dump_python(value, mode="json")


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp)
