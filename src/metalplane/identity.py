"""A node's identity: new system_ids, and a controller's on disk, kept across restarts."""

from __future__ import annotations

import os
import secrets
import socket
import string
from pathlib import Path

MAAS_ID_FILE = "maas_id"
SYSTEM_ID_CHARS = string.ascii_lowercase + string.digits


def new_system_id() -> str:
    """A fresh six-character system_id, as MAAS makes them (machines and controllers alike)."""
    return "".join(secrets.choice(SYSTEM_ID_CHARS) for _ in range(6))


def read_system_id(data_dir: Path) -> str | None:
    try:
        value = (data_dir / MAAS_ID_FILE).read_text().strip()
    except FileNotFoundError:
        return None
    return value or None


def write_system_id(data_dir: Path, system_id: str) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f".{MAAS_ID_FILE}.tmp"
    tmp.write_text(system_id + "\n")
    os.replace(tmp, data_dir / MAAS_ID_FILE)


def clear_system_id(data_dir: Path) -> None:
    (data_dir / MAAS_ID_FILE).unlink(missing_ok=True)


def local_hostname(configured: str | None = None) -> str:
    return configured or socket.gethostname().split(".")[0]


SECRET_FILE = "secret"


def secret_path(data_dir: Path) -> Path:
    return data_dir / SECRET_FILE


def read_secret(data_dir: Path) -> str | None:
    try:
        return secret_path(data_dir).read_text().strip() or None
    except FileNotFoundError:
        return None


def write_secret(data_dir: Path, secret: str) -> None:
    """Mode 0600 from the start: the secret is never briefly world-readable."""
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f".{SECRET_FILE}.tmp"
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    os.replace(tmp, secret_path(data_dir))
