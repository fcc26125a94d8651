"""The seeds' command names, as thin entry points onto `metalplane`:

    maas-region local_config_set|local_config_get|local_config_reset [MAAS's --flags]
    maas-region dbupgrade | createadmin | apikey
    maas-rack register [--url URL ...] [--secret SECRET]
    maas-rack config [--region-url URL] [--debug true|false] ...

`metalplane` stays the main command; these exist so that an operator's
MAAS habits and scripts work. `maas-rack register` asks for what is missing
when it runs on a terminal, as MAAS's does; elsewhere the secret may come on
stdin (`echo $SECRET | maas-rack register --url URL`) and the URL must be given.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable

from metalplane.cli.main import main as metalplane

REGION_COMMANDS = {
    "local_config_set": ["region", "local-config-set"],
    "local_config_get": ["region", "local-config-get"],
    "local_config_reset": ["region", "local-config-reset"],
    "dbupgrade": ["region", "dbupgrade"],
    "createadmin": ["createadmin"],
    "apikey": ["apikey"],
}
RACK_COMMANDS = {"register": ["rack", "register"], "config": ["rack", "config"], "reset": ["rack", "reset"]}
# MAAS's prompts (provisioningserver/rack_script.py words them the same way).
URL_PROMPT = "MAAS region controller URL: "
SECRET_PROMPT = "Secret (hex/base16 encoded): "


def _usage(prog: str, commands: dict[str, list[str]]) -> int:
    print(
        f"usage: {prog} {{{','.join(commands)}}} [options]   (compatibility names for `metalplane`; "
        f"see `metalplane --help`)",
        file=sys.stderr,
    )
    return 2


def translate(argv: list[str], commands: dict[str, list[str]]) -> list[str] | None:
    """`maas-X sub --flags` -> metalplane's argv (None for an unknown sub-command)."""
    if not argv or argv[0] not in commands:
        return None
    return [*commands[argv[0]], *argv[1:]]


def has_flag(argv: list[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in argv)


def complete_register(
    argv: list[str],
    interactive: bool,
    ask: Callable[[str], str],
    ask_secret: Callable[[str], str],
    read_stdin: Callable[[], str],
) -> list[str]:
    """Add --url/--secret when missing, as MAAS's register does: on a terminal by asking; otherwise
    the secret may come on stdin but the URL must be given. ValueError says what is missing."""
    argv = list(argv)
    if not has_flag(argv, "--url"):
        if not interactive:
            raise ValueError(
                "--url URL is required when stdin is not a terminal (only the secret may come "
                "on stdin): maas-rack register --url URL --secret SECRET"
            )
        url = ask(URL_PROMPT).strip()
        if not url:
            raise ValueError("a region controller URL is required")
        argv += ["--url", url]
    if not has_flag(argv, "--secret"):
        secret = (ask_secret(SECRET_PROMPT) if interactive else read_stdin()).strip()
        if not secret:
            raise ValueError(
                "a shared secret is required: --secret SECRET, typed at the prompt, or on stdin "
                "(the region's DATA_DIR/secret)"
            )
        argv += ["--secret", secret]
    return argv


def maas_region(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    translated = translate(argv, REGION_COMMANDS)
    if translated is None:
        return _usage("maas-region", REGION_COMMANDS)
    return metalplane(translated)


def maas_rack(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    translated = translate(argv, RACK_COMMANDS)
    if translated is None:
        return _usage("maas-rack", RACK_COMMANDS)
    if argv[0] == "register" and not has_flag(argv, "--help") and not has_flag(argv, "-h"):
        try:
            translated = complete_register(
                translated, sys.stdin.isatty(), input, getpass.getpass, lambda: sys.stdin.readline()
            )
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except (EOFError, KeyboardInterrupt):
            return 130
    return metalplane(translated)
