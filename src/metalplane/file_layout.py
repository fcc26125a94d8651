"""Where a service keeps its files, declared: ``conf = Under("named.conf")``.

An ``Under`` class attribute reads as ``instance.<base> / name``: the layouts of
named, chronyd and the embedded PostgreSQL list their files this way rather than
as one property per file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, overload


class Under:
    """A read-only path attribute: the instance's `base` attribute (a Path) / `name`."""

    def __init__(self, name: str, base: str = "directory"):
        self.name = name
        self.base = base

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> Under: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> Path: ...

    def __get__(self, instance: Any, owner: type | None = None) -> Path | Under:
        if instance is None:
            return self
        base: Path = getattr(instance, self.base)
        return base / self.name
