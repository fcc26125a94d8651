"""The installed package holds what runs in production, and nothing of the test house.

The wheel is built from a copy of pyproject.toml and src/ (so the work tree gets
no build/ or egg-info from a test run) and installed into a fresh virtualenv,
which is what `pip install .` does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support import REPO

SRC = REPO / "src" / "metalplane"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("tree")
    shutil.copy(REPO / "pyproject.toml", tree)
    shutil.copytree(REPO / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = tmp_path_factory.mktemp("wheel")
    # As `pip wheel .` does: build isolation fetches pyproject's build requirements.
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(tree)])
    (found,) = out.glob("metalplane-*.whl")
    return found


def run(cmd: list[str]) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_wheel_holds_the_product_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"metalplane", wheel.name.split("-py3")[0] + ".dist-info"}
    assert not [n for n in names if n.startswith(("metalplane/testing/", "tests/"))]
    assert not [n for n in names if "/tests/" in n or "conftest" in n]


def test_wheel_ships_every_file_production_reads(wheel: Path) -> None:
    """Every non-Python file under src/metalplane (ephemeral image scripts, the
    migration template) is package data in the wheel, and so is every module."""
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {
        f"metalplane/{p.relative_to(SRC).as_posix()}"
        for p in SRC.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert wanted - names == set()


def test_fresh_venv_install_has_no_test_house(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)])
    # -I: only the venv's site-packages, not the work tree or PYTHONPATH.
    probe = (
        "import importlib.util as u, json, os, sysconfig\n"
        "names = ('metalplane', 'metalplane.testing', 'tests')\n"
        "print(json.dumps({'specs': [u.find_spec(m) is not None for m in names],"
        " 'installed': sorted(os.listdir(sysconfig.get_paths()['purelib']))}))"
    )
    found = json.loads(run([str(python), "-I", "-c", probe]))
    assert found["specs"] == [True, False, False]
    assert [n for n in found["installed"] if not n.startswith("metalplane")] == []
