"""What the scripts under bench/ share: docs/benchmarks.md holds one `## ` section per
benchmark (each script replaces only its own), and the facts they report about the machine."""

from __future__ import annotations

import re
from pathlib import Path

HEADER = "# Benchmarks\n\nResults of the scripts under `bench/`, one section per benchmark.\n"


def write_section(path: Path, section: str) -> None:
    """Replace the section whose heading is `section`'s first line (or add it at the end)."""
    heading = section.split("\n", 1)[0]
    if not heading.startswith("## "):
        raise ValueError(f"a benchmark section starts with a '## ' heading, not {heading!r}")
    text = path.read_text() if path.exists() else HEADER
    body = section.rstrip("\n") + "\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if pattern.search(text):
        text = pattern.sub(lambda _: body + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + body
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n")


def publish(section: str, write: str | None) -> None:
    """Print a benchmark's section, and write it into the file `write` when given."""
    print()
    print(section)
    if write:
        write_section(Path(write), section)
        print(f"written to {write}")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, for a benchmark's machine line."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (servers that fork per transfer or per worker)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found.append(child)
            todo.append(child)
    return found
