"""One log format for every metalplane process: one line per event, no secrets.

Under systemd (stderr is the journal stream named by $JOURNAL_STREAM) each
line starts with the syslog priority in angle brackets (`<6>` for info), which
journald turns into the entry's priority, and carries no timestamp (the
journal has one). Elsewhere (DATA/log/*.log, a terminal) it starts with the
time. Either way a multi-line message or a traceback stays on its one line,
its line breaks written as `\\n`, so that one event is one line to grep.

Secrets never reach a line: values registered with `never_log` (the shared
secret, the database password), `key=value` pairs whose key names a
password, secret or token, and the input values PostgreSQL quotes in its
errors are replaced with `****` after formatting, which also covers
exception texts. (The engines hide SQL parameters themselves.)
"""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path
from typing import BinaryIO

FORMAT = "%(asctime)s %(process)d %(name)s [%(levelname)s] %(message)s"
JOURNAL_FORMAT = "%(process)d %(name)s [%(levelname)s] %(message)s"
LOG_FILE_MODE = 0o640
MASK = "****"
# Python level -> syslog priority (sd-daemon(3) prefixes).
PRIORITIES = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}
# key=value and key: value pairs whose key names a credential (power_pass=..., database_pass: ..., secret=...).
SECRET_PAIR = re.compile(
    r"(?i)\b([\w-]*?(?:pass|passwd|password|secret|token|k_g|api_?key))(['\"]?\s*[=:]\s*)(['\"]?)([^\s'\",;&)}\]]+)"
)
AUTH_HEADER = re.compile(r"(?i)\b(authorization\s*[:=]\s*)([^\r\n]+)")
# PostgreSQL quotes the offending input in some errors: the values of SQL parameters by another road.
SQL_VALUES = (
    re.compile(r'(invalid input (?:syntax|value) for [^:"]*: )"(?:[^"\\]|\\.)*"'),
    re.compile(r"(Key \([^)]*\)=\()(?:[^()]|\([^)]*\))*(\))"),
    re.compile(r"(parameter \$\d+ = )'(?:[^']|'')*'"),
)

_never_log: set[str] = set()


def never_log(*values: str | None) -> None:
    """Register values (a secret, a password) that no log line of this process may contain."""
    for value in values:
        if value and len(value) >= 4:  # a 1-3 character 'secret' would mask ordinary words
            _never_log.add(value)


def redact(text: str, values: set[str] | frozenset[str] = frozenset()) -> str:
    """`text` with every registered secret value and credential-looking pair masked."""
    for value in sorted(values | _never_log, key=len, reverse=True):
        text = text.replace(value, MASK)
    text = AUTH_HEADER.sub(lambda m: m.group(1) + MASK, text)
    for pattern in SQL_VALUES:
        text = pattern.sub(lambda m: m.group(1) + MASK + (m.group(2) if m.lastindex == 2 else ""), text)
    return SECRET_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{MASK}", text)


def priority(levelno: int) -> int:
    for level in sorted(PRIORITIES, reverse=True):
        if levelno >= level:
            return PRIORITIES[level]
    return 7


def one_line(text: str) -> str:
    return text.rstrip("\n").replace("\r", "").replace("\n", "\\n")


class LineFormatter(logging.Formatter):
    """The record as one redacted line; `journal` adds the `<N>` priority prefix."""

    def __init__(self, fmt: str, journal: bool = False):
        super().__init__(fmt)
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        line = one_line(redact(super().format(record)))
        return f"<{priority(record.levelno)}>{line}" if self.journal else line


def journal_stream_matches(journal_stream: str | None, st_dev: int, st_ino: int) -> bool:
    """$JOURNAL_STREAM is "DEV:INODE" of the journal socket systemd gave the service (systemd.exec(5))."""
    if not journal_stream:
        return False
    try:
        dev, ino = (int(x) for x in journal_stream.split(":", 1))
    except ValueError:
        return False
    return (dev, ino) == (st_dev, st_ino)


def logging_to_journal(stream=None) -> bool:
    stream = stream or sys.stderr
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return journal_stream_matches(os.environ.get("JOURNAL_STREAM"), st.st_dev, st.st_ino)


def setup_logging(debug: bool = False, prefix: str = "") -> None:
    journal = logging_to_journal(sys.stderr)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LineFormatter(prefix + (JOURNAL_FORMAT if journal else FORMAT), journal=journal))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    # Library chatter that would drown ours (the API's own request lines are metalplane.region.access).
    for noisy in ("sqlalchemy.engine", "websockets", "uvicorn.access", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def open_log(path: Path) -> BinaryIO:
    """Open a log file for appending, mode 0640 whether new or not (logs name hosts and machines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, LOG_FILE_MODE)
    os.fchmod(fd, LOG_FILE_MODE)
    return os.fdopen(fd, "ab")
