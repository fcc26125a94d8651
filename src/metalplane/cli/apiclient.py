"""Placeholder: the describe-driven API client lands next."""

from metalplane.cli.errors import CliError


def main(argv: list[str]) -> int:
    raise CliError("API client not yet available")
