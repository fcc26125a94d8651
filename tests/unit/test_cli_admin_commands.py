"""The admin command table and the admin parser name the same commands."""

from __future__ import annotations

import argparse

import pytest

from metalplane.cli import api_session
from metalplane.cli.admin_commands import ADMIN_COMMANDS
from metalplane.cli.errors import CliError
from metalplane.cli.main import build_parser


def test_table_matches_the_parser():
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(sub.choices) == ADMIN_COMMANDS


@pytest.mark.parametrize("name", sorted(ADMIN_COMMANDS))
def test_no_profile_takes_an_admin_command_name(name):
    with pytest.raises(CliError, match="is a metalplane command"):
        api_session.check_profile_name(name)
