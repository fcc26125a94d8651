"""The code's habits, checked with the whole suite: ruff (lint, format) and mypy.

Their configuration is in pyproject.toml; each test runs the tool as a developer
would, from the repository root, and fails with the tool's own report.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

from tests.support import REPO

PATHS = ["src", "tests", "bench"]
SETTINGS = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["metalplane"]["checks"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def report(done: subprocess.CompletedProcess[str], how: str) -> str:
    lines = (done.stdout + done.stderr).rstrip().splitlines()
    shown = lines if len(lines) <= 200 else [*lines[:200], f"... and {len(lines) - 200} more lines"]
    return f"`{' '.join(done.args[2:])}` failed ({how}):\n" + "\n".join(shown)


def test_ruff_lint() -> None:
    done = run("ruff", "check", "--no-cache", *PATHS)
    assert done.returncode == 0, report(done, "fix the findings, or `ruff check --fix` for the [*] ones")


def test_ruff_format() -> None:
    done = run("ruff", "format", "--check", "--no-cache", *PATHS)
    if not SETTINGS["tree-formatted"]:
        # Until the one-time format of the whole tree (docs/development.md): reported, not enforced.
        pytest.xfail(f"not enforced yet: {done.stdout.strip().splitlines()[-1] if done.stdout.strip() else 'clean'}")
    assert done.returncode == 0, report(done, "run `ruff format` on the files it names")


def test_mypy() -> None:
    done = run("mypy")
    assert done.returncode == 0, report(done, "fix the types it names")
