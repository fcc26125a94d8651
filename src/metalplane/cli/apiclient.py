"""The MAAS CLI grammar: `metalplane login|logout|list|refresh ...` and
`metalplane PROFILE HANDLER ACTION [URI PARAMS] [key=value ...]`, built from the
profile's stored describe/ exactly as the `maas` command builds its own.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Iterable

import httpx

from metalplane.cli.api_help import action_help, handler_help, profile_help
from metalplane.cli.api_output import render_body, response_summary
from metalplane.cli.api_session import COMMANDS, connection_error
from metalplane.cli.describe_commands import (
    ActionSpec,
    DataItem,
    DescribeError,
    FileArg,
    HandlerSpec,
    Invocation,
    action_url,
    build_handlers,
    parse_action_args,
)
from metalplane.cli.errors import CliError
from metalplane.cli.profiles import Profile, ProfileStore, api_key
from metalplane.client.http import MaasHttp

HELP = ("-h", "--help")


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def main(argv: list[str]) -> int:
    if not argv:
        raise CliError("usage: metalplane PROFILE HANDLER ACTION [ARGS] (see `metalplane --help`)")
    word, rest = argv[0], argv[1:]
    if word in COMMANDS:
        return COMMANDS[word](rest)
    profiles = ProfileStore().load()
    profile = profiles.get(word)
    if profile is None:
        known = ", ".join(sorted(profiles)) or "none"
        raise CliError(
            f"{word!r} is neither a metalplane command nor a profile{_suggest(word, profiles)}; "
            f"profiles: {known}; log in with `metalplane login PROFILE URL KEY`"
        )
    return run_profile(word, profile, rest)


def run_profile(name: str, profile: Profile, args: list[str]) -> int:
    try:
        handlers = build_handlers(profile.get("description") or {}, anonymous=api_key(profile) is None)
    except DescribeError as exc:
        raise CliError(f"profile {name!r}: {exc}") from None
    if not args or args[0] in HELP:
        return _show(profile_help(name, profile.get("url", ""), handlers), ok=bool(args))
    handler = handlers.get(args[0])
    if handler is None:
        raise CliError(
            f"profile {name!r} has no handler {args[0]!r}{_suggest(args[0], handlers)}; see `metalplane {name} --help`"
        )
    rest = args[1:]
    if not rest or rest[0] in HELP:
        return _show(handler_help(name, handler), ok=bool(rest))
    action = handler.actions.get(rest[0])
    if action is None:
        raise CliError(
            f"{handler.name} has no action {rest[0]!r}{_suggest(rest[0], handler.actions)}; "
            f"see `metalplane {name} {handler.name} --help`"
        )
    try:
        invocation = parse_action_args(handler.params, rest[1:])
    except DescribeError as exc:
        raise CliError(
            f"metalplane {name} {handler.name} {action.name}: {exc} "
            f"(see `metalplane {name} {handler.name} {action.name} --help`)"
        ) from None
    if invocation.help:
        return _show(action_help(name, handler, action), ok=True)
    return call(profile, handler, action, invocation)


def _show(text: str, ok: bool) -> int:
    """Help asked for goes to stdout (exit 0); help for a command left incomplete to stderr (exit 2)."""
    print(text, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 2


def read_data(items: list[DataItem], as_text: bool) -> list[tuple[str, str | bytes]]:
    """key@=FILE becomes the file's content: text in a query string, bytes in a body (as maascli)."""
    out: list[tuple[str, str | bytes]] = []
    for key, value in items:
        if isinstance(value, FileArg):
            try:
                with open(value.path, "r" if as_text else "rb") as f:
                    value = f.read()
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or str(exc)
                raise CliError(f"cannot read {value.path!r} for {key}: {reason}") from None
        out.append((key, value))
    return out


def call(profile: Profile, handler: HandlerSpec, action: ActionSpec, invocation: Invocation) -> int:
    root = profile["url"]
    try:
        url = action_url(root, handler, invocation.positional)
    except DescribeError as exc:
        raise CliError(str(exc)) from None
    data = read_data(invocation.data, as_text=action.data_in_query)
    try:
        with MaasHttp(root, api_key(profile), verify=not invocation.insecure) as http:
            response = http.request(action.method, url, action.op, data)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise connection_error(root, exc) from None
    if invocation.debug:
        sys.stderr.write(response_summary(response.status_code, response.reason_phrase, dict(response.headers)))
    warn_if_stale(profile, response)
    write_stdout(render_body(response.headers.get("content-type"), response.content))
    if not response.is_success:
        print(f"error: {response.status_code} {response.reason_phrase}", file=sys.stderr)
        return 2
    return 0


def warn_if_stale(profile: Profile, response: httpx.Response) -> None:
    served = response.headers.get("x-maas-api-hash")
    stored = (profile.get("description") or {}).get("hash")
    if served and served != stored:
        print(
            "warning: the server's API differs from this profile's stored description; run `metalplane refresh`",
            file=sys.stderr,
        )


def write_stdout(data: bytes) -> None:
    try:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): stop writing, quietly, as other CLIs do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
