"""MAAS-style handlers: a path, restful actions and `op=` actions, and their describe/.

A handler module declares a `Handler` and decorates async functions with
`@handler.read`, `@handler.create`, `@handler.action("POST", "op_name")`...
The docstring of each function is the action's `doc` that describe/ serves, so
its `:param name:` lines are what clients may pass; `action(..., doc=...)` gives the
doc instead, where several actions share their `:param` lines (param_doc writes one
parameter's lines).
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
DEFAULT_MAX_BODY = 2 * 1024 * 1024  # bytes of an API call's body (see params.read_body)

# The model a URI parameter names whatever the handler ("No Fabric matches the given query.").
PARAM_MODELS = {"fabric_id": "Fabric", "vlan_id": "VLAN", "vid": "VLAN", "username": "User"}
# Handlers whose model is not their name without "Handler" (MAAS's 404 wording).
HANDLER_MODELS = {
    "Vlan": "VLAN",
    "File": "FileStorage",
    "DNSResourceRecord": "DNSData",
    "NodeScriptResult": "ScriptSet",
    "Discovery": "Discovery",
}
NODE_MODELS = frozenset({"Machine", "Node", "Device", "RackController", "RegionController"})

ActionFunc = Callable[["Ctx"], Awaitable[Any]]


def param_doc(name: str, text: str, kind: str = "unicode") -> str:
    """One parameter as an action's doc lists it (MAAS's `:param` and `:type` lines)."""
    return f":param {name}: {text}\n:type {name}: {kind}\n"


def params_text(*params: tuple[str, str] | tuple[str, str, str]) -> str:
    """Each (name, text[, kind]) parameter as an action's doc lists it."""
    return "".join(param_doc(*p) for p in params)


def params_doc(summary: str, *params: tuple[str, str] | tuple[str, str, str]) -> str:
    """An action's doc: its summary, then each (name, text[, kind]) parameter."""
    return summary + "\n\n" + params_text(*params)


def name_and_description_doc(noun: str) -> str:
    """The name and description of a named object (a fabric, a space, a VLAN)."""
    return param_doc("name", f"Name of the {noun}.") + param_doc("description", f"Description of the {noun}.")


@dataclass(frozen=True)
class Action:
    method: str
    op: str | None
    func: ActionFunc
    admin: bool
    text: str | None = None  # the doc when not the function's docstring

    @property
    def name(self) -> str:
        return self.op or RESTFUL_NAMES[self.method]

    @property
    def doc(self) -> str:
        if self.text is not None:
            return inspect.cleandoc(self.text)
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
    model: str | None = None  # MAAS's model name in 404s; default: the name without "Handler"
    # Bodies above DEFAULT_MAX_BODY (file uploads) are only read once the caller is authenticated
    # as an admin (every action of such a handler that takes a body is an admin's).
    max_body: int = DEFAULT_MAX_BODY

    @property
    def full_path(self) -> str:
        return API_PREFIX + self.path

    @property
    def uri_params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    def model_for(self, param: str) -> str:
        """The model a URI parameter names, for MAAS's "No <Model> matches the given query."."""
        if param in PARAM_MODELS:
            return PARAM_MODELS[param]
        own = self.model or HANDLER_MODELS.get(self.name.removesuffix("Handler"), self.name.removesuffix("Handler"))
        if param == "system_id" and own not in NODE_MODELS:
            return "Node"
        return own

    def action(
        self, method: str, op: str | None = None, admin: bool = False, doc: str | None = None
    ) -> Callable[[ActionFunc], ActionFunc]:
        method = method.upper()
        if method not in RESTFUL_NAMES:
            raise ValueError(f"unsupported method {method}")

        def register(func: ActionFunc) -> ActionFunc:
            if self.find(method, op) is not None:
                raise ValueError(f"{self.name}: duplicate action {method} op={op}")
            self.actions.append(Action(method, op, func, admin, doc))
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

    def describe(self, site: str | None) -> dict[str, Any]:
        """`site` is scheme://host[:port] as the client reached us; None leaves out `uri`
        (the form MAAS hashes)."""
        out = {
            "name": self.name,
            "doc": self.doc,
            "params": self.uri_params,
            "path": self.full_path,
            "actions": sorted((a.describe() for a in self.actions), key=lambda a: a["name"]),
        }
        if site is not None:
            out["uri"] = site + self.full_path
        return out


def _description(handlers: list[Handler], site: str | None) -> dict[str, Any]:
    """MAAS's shape: resources sorted by name; `handlers` lists anon ones, then auth ones."""
    described = sorted((h for h in handlers if h.described), key=lambda h: h.name)
    pairs = [(h, h.describe(site)) for h in described]
    resources = [{"name": h.name, "anon": d if h.anon else None, "auth": None if h.anon else d} for h, d in pairs]
    legacy = [d for h, d in pairs if h.anon] + [d for h, d in pairs if not h.anon]
    return {"doc": "MAAS API", "resources": resources, "handlers": legacy}


def _canonical(value: Any) -> Any:
    """MAAS's canonical form for hashing: lists sorted, dicts as sorted (key, value) pairs."""
    if isinstance(value, dict):
        return tuple(sorted(((k, _canonical(v)) for k, v in value.items()), key=_order))
    if isinstance(value, (list, tuple)):
        return tuple(sorted((_canonical(v) for v in value), key=_order))
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value


def _order(value: Any) -> tuple:
    """Python 2's order of mixed types, as MAAS sorts: None < numbers < str < tuple."""
    if value is None:
        return (0,)
    if isinstance(value, (bool, int, float)):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, tuple(_order(v) for v in value))


def api_hash(handlers: list[Handler]) -> str:
    """X-MAAS-API-Hash: the sha1 of the canonical description without absolute URIs."""
    canonical = _canonical(_description(handlers, None))
    return hashlib.sha1(json.dumps(canonical).encode("ascii"), usedforsecurity=False).hexdigest()


def describe_api(handlers: list[Handler], site: str, digest: str | None = None) -> dict[str, Any]:
    """describe/: `digest` is api_hash(handlers) when the caller has it already."""
    return {**_description(handlers, site), "hash": digest or api_hash(handlers)}
