"""The `metalplane` command.

Daemon and admin sub-commands (init, status, stop, region ..., rack ...) come
first; anything else is the MAAS CLI grammar: `login`, `logout`, `list`,
`refresh`, or `PROFILE HANDLER ACTION ...` built from the region's describe/.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from metalplane import __version__
from metalplane.cli import apiclient
from metalplane.cli.admin_commands import ADMIN_COMMANDS
from metalplane.cli.errors import CliError
from metalplane.config.files import ConfigError
from metalplane.config.region import DEFAULT_DATA_DIR

CommandFunc = Callable[[argparse.Namespace], int]


def data_dir_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, help=f"where state lives (default {DEFAULT_DATA_DIR})"
    )


def build_parser() -> argparse.ArgumentParser:
    from metalplane.cli import admin, db_cmd, ops_cmd, rack_cmd, region_cmd

    parser = argparse.ArgumentParser(
        prog="metalplane",
        description="metalplane: bare-metal provisioning control plane (MAAS 2.0 API).",
        epilog="API commands: metalplane login PROFILE URL [KEY]; metalplane PROFILE HANDLER ACTION [args]",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    admin.register(sub, data_dir_arg)
    region_cmd.register(sub, data_dir_arg)
    rack_cmd.register_commands(sub, data_dir_arg)
    from metalplane.cli import images_cmd

    images_cmd.register(sub)
    db_cmd.register(sub, data_dir_arg)
    ops_cmd.register(sub, data_dir_arg)
    v = sub.add_parser("version", help="print metalplane's version")
    v.set_defaults(func=lambda args: print(__version__) or 0)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] not in ADMIN_COMMANDS and not argv[0].startswith("-"):
            return apiclient.main(argv)
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return args.func(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.status
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
