"""MAAS-style handlers: a path, restful actions and `op=` actions, and their describe/.

A handler module declares a `Handler` and decorates async functions with
`@handler.read`, `@handler.create`, `@handler.action("POST", "op_name")`...
The docstring of each function is the action's `doc` that describe/ serves, so
its `:param name:` lines are what clients may pass.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from metalplane.region.errors import Refused

if TYPE_CHECKING:
    from metalplane.region.api.context import Ctx

API_PREFIX = "/MAAS/api/2.0/"
RESTFUL_NAMES = {"GET": "read", "POST": "create", "PUT": "update", "DELETE": "delete"}

ActionFunc = Callable[["Ctx"], Awaitable[Any]]


@dataclass(frozen=True)
class Action:
    method: str
    op: str | None
    func: ActionFunc
    admin: bool

    @property
    def name(self) -> str:
        return self.op or RESTFUL_NAMES[self.method]

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.func) or ""

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "method": self.method,
            "op": self.op,
            "restful": self.op is None,
            "doc": self.doc,
        }


@dataclass
class Handler:
    """One MAAS handler: `name` such as "FabricsHandler", `path` below the API prefix."""

    name: str
    path: str
    doc: str
    anon: bool = False
    described: bool = True  # False for a second route of a described handler
    actions: list[Action] = field(default_factory=list)

    @property
    def full_path(self) -> str:
        return API_PREFIX + self.path

    @property
    def uri_params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    def action(self, method: str, op: str | None = None, admin: bool = False) -> Callable[[ActionFunc], ActionFunc]:
        method = method.upper()
        if method not in RESTFUL_NAMES:
            raise ValueError(f"unsupported method {method}")

        def register(func: ActionFunc) -> ActionFunc:
            if self.find(method, op) is not None:
                raise ValueError(f"{self.name}: duplicate action {method} op={op}")
            self.actions.append(Action(method, op, func, admin))
            return func

        return register

    def read(self, func: ActionFunc) -> ActionFunc:
        return self.action("GET")(func)

    def create(self, func: ActionFunc) -> ActionFunc:
        return self.action("POST")(func)

    def update(self, func: ActionFunc) -> ActionFunc:
        return self.action("PUT")(func)

    def delete(self, func: ActionFunc) -> ActionFunc:
        return self.action("DELETE")(func)

    def find(self, method: str, op: str | None) -> Action | None:
        for action in self.actions:
            if action.method == method and action.op == (op or None):
                return action
        return None

    def resolve(self, method: str, op: str | None) -> Action:
        action = self.find(method, op)
        if action is None:
            raise Refused(f"Unrecognised signature: method={method} op={op}")
        return action

    def describe(self, site: str) -> dict[str, Any]:
        """`site` is scheme://host[:port] as the client reached us."""
        return {
            "name": self.name,
            "doc": self.doc,
            "params": self.uri_params,
            "path": self.full_path,
            "uri": site + self.full_path,
            "actions": sorted((a.describe() for a in self.actions), key=lambda a: a["name"]),
        }


def describe_api(handlers: list[Handler], site: str) -> dict[str, Any]:
    """MAAS's shape: resources sorted by name; `handlers` lists anon ones, then auth ones."""
    described = sorted((h for h in handlers if h.described), key=lambda h: h.name)
    pairs = [(h, h.describe(site)) for h in described]
    resources = [
        {"name": h.name, "anon": d if h.anon else None, "auth": None if h.anon else d}
        for h, d in pairs
    ]
    legacy = [d for h, d in pairs if h.anon] + [d for h, d in pairs if not h.anon]
    # Clients compare this hash only for equality; it changes when the API does.
    shape = json.dumps([h.describe("") for h in described], sort_keys=True).encode()
    digest = hashlib.sha1(shape, usedforsecurity=False).hexdigest()
    return {"doc": "MAAS API", "hash": digest, "handlers": legacy, "resources": resources}
