"""Help text for `metalplane PROFILE [HANDLER [ACTION]] --help`. Pure: returns strings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from metalplane.cli.describe_commands import ActionSpec, HandlerSpec

KEYWORD_HELP = (
    "This method accepts keyword arguments. Pass each argument as a key-value pair\n"
    "with an equals sign between the key and the value: key1=value1 key2=value2.\n"
    "Use key@=FILE to send a file's content. Keyword arguments come after any\n"
    "positional arguments, and a key may be repeated."
)
COMMON_OPTIONS = (
    "Common command-line options:\n"
    "  -h, --help      show this help message and exit\n"
    "  -d, --debug     print the response status line and headers on stderr\n"
    "  -k, --insecure  do not verify the server's TLS certificate"
)


def _listing(rows: Iterable[tuple[str, str]]) -> list[str]:
    rows = list(rows)
    width = max((len(name) for name, _ in rows), default=0)
    return [f"  {name.ljust(width)}  {title}".rstrip() for name, title in rows]


def profile_help(profile: str, url: str, handlers: Mapping[str, HandlerSpec]) -> str:
    lines = [
        f"usage: metalplane {profile} HANDLER ACTION [ARGS] [key=value ...]",
        "",
        f"Issue commands to the MAAS region controller at {url}.",
        "",
        "handlers:",
        *_listing((h.name, h.title) for h in handlers.values()),
        "",
        f"For a handler's actions: metalplane {profile} HANDLER --help",
        "These commands come from the server's API description; after an upgrade, run `metalplane refresh`.",
    ]
    return "\n".join(lines)


def action_usage(profile: str, handler: HandlerSpec, action: ActionSpec) -> str:
    words = ["metalplane", profile, handler.name, action.name, "[-h] [-d] [-k]"]
    words += [p.upper() for p in handler.params]
    words.append("[key=value ...]")
    return "usage: " + " ".join(words)


def handler_help(profile: str, handler: HandlerSpec) -> str:
    lines = [f"usage: metalplane {profile} {handler.name} ACTION [ARGS]", "", handler.title]
    if handler.body.strip():
        lines += ["", handler.body.rstrip()]
    lines += ["", "actions:", *_listing((a.name, a.title) for a in handler.actions.values())]
    lines += ["", f"For an action's arguments: metalplane {profile} {handler.name} ACTION --help"]
    return "\n".join(lines)


def action_help(profile: str, handler: HandlerSpec, action: ActionSpec) -> str:
    lines = [action_usage(profile, handler, action), "", action.title]
    if handler.params:
        lines += ["", "Positional arguments:", *(f"  {p.upper()}" for p in handler.params)]
    if action.takes_keywords:
        lines += ["", KEYWORD_HELP]
    if action.body.strip():
        lines += ["", action.body.rstrip()]
    lines += ["", COMMON_OPTIONS]
    return "\n".join(lines)
