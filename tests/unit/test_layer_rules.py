"""The layers' import rules, read statically from every source file (ast).

Every import counts, wherever it stands: at the top, inside a function, under
TYPE_CHECKING. (tests/unit/test_layers.py checks the same boundary at run time:
what importing the rack daemon loads.)
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import REPO

SRC = REPO / "src"
PACKAGE = SRC / "metalplane"
DATABASE = ("sqlalchemy", "psycopg", "alembic")


def module_name(path: Path, root: Path = SRC) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path = SRC) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in `path` (a module under `root`);
    `from X import y` yields X and X.y, since y may be a module."""
    tree = ast.parse(path.read_text(), str(path))
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def within(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def violations(folder: str, forbidden: Callable[[str], bool]) -> list[str]:
    """One line per offending import statement: file:line and the module it names."""
    found: dict[tuple[str, int], str] = {}
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        for line, module in imports(path):
            if forbidden(module):
                found.setdefault((str(path.relative_to(REPO)), line), module)
    return [f"{where}:{line} imports {module}" for (where, line), module in sorted(found.items())]


def report(rule: str, found: list[str]) -> str:
    return f"{rule}; found {len(found)}:\n  " + "\n  ".join(found)


def test_scanner_sees_every_kind_of_import(tmp_path: Path) -> None:
    pkg = tmp_path / "src" / "metalplane" / "rack"
    pkg.mkdir(parents=True)
    source = pkg / "x.py"
    source.write_text(
        "import a.b\nfrom . import sibling\nfrom ..region import db\ndef f():\n    from sqlalchemy import select\n"
    )
    found = {m for _, m in imports(source, tmp_path / "src")}
    assert {"a.b", "metalplane.rack.sibling", "metalplane.region", "metalplane.region.db", "sqlalchemy"} <= found


def test_ha_imports_nothing_of_metalplane_outside_itself() -> None:
    found = violations("ha", lambda m: within(m, "metalplane") and not within(m, "metalplane.ha"))
    assert not found, report("ha/ must decide from its arguments alone: no metalplane import outside ha/", found)


@pytest.mark.parametrize("folder", ["rack", "rpc"])
def test_rack_and_rpc_never_import_the_region_or_the_database(folder: str) -> None:
    found = violations(folder, lambda m: within(m, "metalplane.region", *DATABASE))
    assert not found, report(f"{folder}/ meets the region only through rpc/ and never loads the database layer", found)


def test_cli_never_imports_the_database_layer() -> None:
    found = violations("cli", lambda m: within(m, "metalplane.region.db", *DATABASE))
    assert not found, report("cli/ reaches the database only through the region's services", found)


def test_production_never_imports_the_test_house() -> None:
    found = violations(".", lambda m: within(m, "tests"))
    mentions = [f"{p.relative_to(REPO)}" for p in sorted(PACKAGE.rglob("*.py")) if "tests.support" in p.read_text()]
    assert not found + mentions, report("src/metalplane must not need tests/ (it is not installed)", found + mentions)
