"""The `PROFILE HANDLER ACTION` commands, derived from a describe/ document as maascli does.

Pure: no I/O. Names, docstrings, argument splitting and URL building follow
maascli (`maascli/utils.py`, `maascli/api.py`) so that `metalplane P ...` and
`maas P ...` accept the same words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from inspect import cleandoc
from typing import Any
from urllib.parse import quote

RE_CAMELCASE = re.compile(r"([A-Z]*[a-z0-9]+|[A-Z]+)(?:(?=[^a-z0-9])|\Z)")
RE_PARAGRAPH = re.compile(r"(?:\r\n){2,}|\r{2,}|\n{2,}", re.MULTILINE)
RE_API_PREFIX = re.compile(r"^.*?/api/[0-9.]+/")
RE_PLACEHOLDER = re.compile(r"\{(\w+)\}")
QUERY_METHODS = frozenset({"GET", "DELETE"})


class DescribeError(ValueError):
    """The describe document, or the words given for it, do not fit."""


def safe_name(name: str) -> str:
    """maascli's action name: camel-case/underscore parts joined by '-', case kept."""
    return "-".join(RE_CAMELCASE.findall(name))


def handler_command_name(name: str) -> str:
    """maascli's handler name: RackControllersHandler -> rack-controllers."""
    parts = (part.lower() for part in RE_CAMELCASE.findall(name))
    return "-".join(part for part in parts if part != "handler")


def parse_docstring(doc: str | None) -> tuple[str, str]:
    """(title, body): the first paragraph on one line, and the rest."""
    text = cleandoc(doc) if doc else ""
    parts = RE_PARAGRAPH.split(text, maxsplit=1)
    title = " ".join(line.strip() for line in parts[0].splitlines())
    body = parts[1] if len(parts) == 2 else ""
    return title, body.replace("\r\n", "\n").replace("\r", "\n")


@dataclass(frozen=True)
class ActionSpec:
    name: str
    api_name: str
    method: str
    op: str | None
    title: str
    body: str

    @property
    def takes_keywords(self) -> bool:
        return ":param " in self.body

    @property
    def data_in_query(self) -> bool:
        return self.method in QUERY_METHODS


@dataclass(frozen=True)
class HandlerSpec:
    name: str
    api_name: str
    title: str
    body: str
    params: tuple[str, ...]
    path: str
    uri: str
    actions: dict[str, ActionSpec] = field(default_factory=dict)


def _action(raw: Mapping[str, Any]) -> ActionSpec:
    title, body = parse_docstring(raw.get("doc"))
    return ActionSpec(
        name=safe_name(raw["name"]),
        api_name=raw["name"],
        method=str(raw["method"]).upper(),
        op=raw.get("op") or None,
        title=title,
        body=body,
    )


def build_handlers(description: Mapping[str, Any], anonymous: bool) -> dict[str, HandlerSpec]:
    """CLI name -> handler, as maascli's register_resources builds its sub-commands.

    Authenticated profiles merge the auth handler's actions with the anon
    handler's (auth first); anonymous profiles see the anon actions only. The
    handler is represented by auth (else anon) under the resource's name, and a
    resource with no actions has no command.
    """
    resources = description.get("resources") if isinstance(description, Mapping) else None
    if not isinstance(resources, list):
        raise DescribeError("the stored API description has no resources; run `metalplane refresh`")
    handlers: dict[str, HandlerSpec] = {}
    try:
        for resource in sorted(resources, key=lambda r: r["name"]):
            sources = [resource.get("anon")] if anonymous else [resource.get("auth"), resource.get("anon")]
            actions: dict[str, ActionSpec] = {}
            for source in sources:
                for raw in (source or {}).get("actions") or []:
                    action = _action(raw)
                    actions.setdefault(action.name, action)
            represent = resource.get("auth") or resource.get("anon")
            if not actions or not represent:
                continue
            title, body = parse_docstring(represent.get("doc"))
            name = handler_command_name(resource["name"])
            handlers.setdefault(
                name,
                HandlerSpec(
                    name=name,
                    api_name=resource["name"],
                    title=title,
                    body=body,
                    params=tuple(represent.get("params") or ()),
                    path=represent.get("path") or "",
                    uri=represent.get("uri") or "",
                    actions=dict(sorted(actions.items())),
                ),
            )
    except (KeyError, TypeError, AttributeError) as exc:
        raise DescribeError(f"the stored API description is malformed ({exc!r}); run `metalplane refresh`") from None
    return handlers


@dataclass(frozen=True)
class FileArg:
    """`key@=filename`: the file's content is the value."""

    path: str


DataItem = tuple[str, str | FileArg]


def parse_data_item(text: str) -> DataItem:
    """`key=value` or `key@=filename`, split at the first `=` or `@=` (as maascli)."""
    match = re.search(r"@=|=", text)
    if match is None or match.start() == 0:
        raise DescribeError(f"{text!r} is not a key=value or key@=filename pair")
    key, value = text[: match.start()], text[match.end() :]
    return (key, FileArg(value)) if match.group() == "@=" else (key, value)


@dataclass
class Invocation:
    positional: dict[str, str] = field(default_factory=dict)
    data: list[DataItem] = field(default_factory=list)
    debug: bool = False
    insecure: bool = False
    help: bool = False


FLAGS = {"-h": "help", "--help": "help", "-d": "debug", "--debug": "debug", "-k": "insecure", "--insecure": "insecure"}


def _flags(arg: str) -> list[str] | None:
    """The flag names `arg` sets (`-dk` sets two), or None when it is not a flag."""
    if arg in FLAGS:
        return [FLAGS[arg]]
    if re.fullmatch(r"-[hdk]{2,}", arg):
        return [FLAGS["-" + ch] for ch in arg[1:]]
    return None


def parse_action_args(params: Sequence[str], args: Sequence[str]) -> Invocation:
    """Positional URI params in order, then key=value data; -h/-d/-k anywhere, `--` ends flags."""
    inv = Invocation()
    words: list[str] = []
    flags_done = False
    for arg in args:
        names = None if flags_done else _flags(arg)
        if names is not None:
            for name in names:
                setattr(inv, name, True)
        elif arg == "--" and not flags_done:
            flags_done = True
        elif not flags_done and arg.startswith("-") and "=" not in arg and not re.match(r"-\d", arg):
            if inv.help:
                continue
            raise DescribeError(f"unknown option {arg!r} (options: -h/--help, -d/--debug, -k/--insecure)")
        else:
            words.append(arg)
    if inv.help:
        return inv
    if len(words) < len(params):
        missing = " ".join(p.upper() for p in params[len(words) :])
        raise DescribeError(f"missing {missing}")
    inv.positional = dict(zip(params, words))
    inv.data = [parse_data_item(word) for word in words[len(params) :]]
    return inv


def action_url(api_root: str, handler: HandlerSpec, values: Mapping[str, str]) -> str:
    """The action's URL under the profile's API root, placeholders filled in.

    The template is the handler's path below `/api/X.Y/`, so the host and
    prefix the user logged in with are kept (describe's `uri` carries whatever
    Host header the describe request had). Falls back to `uri`.
    """
    match = RE_API_PREFIX.match(handler.path)
    template = api_root.rstrip("/") + "/" + handler.path[match.end() :] if match else handler.uri
    if not template:
        raise DescribeError(f"handler {handler.api_name} has no path in the stored API description")

    def fill(m: re.Match[str]) -> str:
        try:
            return quote(str(values[m.group(1)]), safe="/:@+,;=!$&'()*")
        except KeyError:
            raise DescribeError(f"no value for {m.group(1).upper()}") from None

    return RE_PLACEHOLDER.sub(fill, template)
