"""The test house: labs, emulators, databases and processes that tests and bench/ build on.

It lives beside the tests, not in the product: the installed `metalplane` package
holds only what runs in production.  pytest puts the repository root on
``sys.path`` (``pythonpath`` in pyproject.toml); bench scripts insert it
themselves; a helper that runs one of these modules in a child process gets the
root onto the child's ``PYTHONPATH`` with :func:`pythonpath_env`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def pythonpath_env() -> dict[str, str]:
    """The environment entry a child Python needs to import ``tests.support`` from any
    working directory (merge it into the child's env)."""
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO)}


def module_command(module: str, *args: str) -> tuple[list[str], dict[str, str]]:
    """``python -m MODULE ARGS`` for a child process, and the environment entries it needs."""
    return [sys.executable, "-m", module, *args], pythonpath_env()
