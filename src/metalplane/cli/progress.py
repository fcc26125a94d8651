"""Progress of long CLI work: a bar redrawn in place on a terminal, plain lines elsewhere.

Steps (`init`'s: "[3/6] starting PostgreSQL") and amounts (an upload's
bytes) share one object. When `stream` (stderr) is a terminal the bar lives
on its last line and `say` prints a message above it; otherwise every step
is a line on `out`, and an amount a line at each tenth of the way.
"""

from __future__ import annotations

import sys
from typing import TextIO

BAR_WIDTH = 28
CLEAR_LINE = "\r\x1b[K"


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def bar_line(done: float, total: float, label: str, width: int = BAR_WIDTH) -> str:
    fraction = min(max(done / total, 0.0), 1.0) if total > 0 else 0.0
    filled = round(fraction * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:3.0f}% {label}".rstrip()


def step_line(number: int, total: int, label: str) -> str:
    return f"[{number}/{total}] {label}"


def tenths_crossed(before: float, after: float, total: float) -> list[int]:
    """The 10 % marks passed going from `before` to `after` (to print one line at each)."""
    if total <= 0:
        return []
    first, last = int(before * 10 // total), int(min(after, total) * 10 // total)
    return [mark * 10 for mark in range(first + 1, last + 1)]


class Progress:
    def __init__(
        self,
        total: float,
        *,
        steps: bool = False,
        bytes_: bool = False,
        stream: TextIO | None = None,
        out: TextIO | None = None,
        tty: bool | None = None,
    ):
        self.total = total
        self.steps = steps
        self.bytes = bytes_
        self.stream = stream or sys.stderr
        self.out = out or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.done = 0.0
        self.label = ""
        self.drawn = False

    def _amount(self) -> str:
        if self.steps:
            return ""
        if self.bytes:
            return f" ({human_bytes(self.done)} of {human_bytes(self.total)})"
        return f" ({self.done:.0f}/{self.total:.0f})"

    def _draw(self) -> None:
        if self.tty:
            label = step_line(int(self.done), int(self.total), self.label) if self.steps else self.label
            self.stream.write(CLEAR_LINE + bar_line(self.done, self.total, label + self._amount()))
            self.stream.flush()
            self.drawn = True

    def _clear(self) -> None:
        if self.tty and self.drawn:
            self.stream.write(CLEAR_LINE)
            self.stream.flush()
            self.drawn = False

    def step(self, label: str) -> None:
        """The next step begins."""
        self.done = min(self.done + 1, self.total)
        self.label = label
        if self.tty:
            self._draw()
        else:
            print(step_line(int(self.done), int(self.total), label), file=self.out, flush=True)

    def update(self, done: float, label: str | None = None) -> None:
        """An amount reached `done` (of `total`)."""
        before, self.done = self.done, done
        if label is not None:
            self.label = label
        if self.tty:
            self._draw()
            return
        for mark in tenths_crossed(before, done, self.total):
            print(f"{self.label}: {mark}%{self._amount()}", file=self.out, flush=True)

    def say(self, line: str) -> None:
        """A message (on stdout), above the bar."""
        self._clear()
        print(line, file=self.out, flush=True)
        if self.tty and self.label:
            self._draw()

    def finish(self) -> None:
        if self.tty and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False
