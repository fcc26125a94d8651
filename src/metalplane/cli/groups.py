"""Commands with subcommands: `metalplane NAME COMMAND ...`."""

from __future__ import annotations

import argparse


def command_group(sub: argparse._SubParsersAction, name: str, help: str) -> argparse._SubParsersAction:
    """Add command `name`, which needs one of the subcommands added to what this returns
    (their choice lands in `args.<name>_command`)."""
    group = sub.add_parser(name, help=help)
    return group.add_subparsers(dest=f"{name}_command", metavar="COMMAND", required=True)
