"""A real HAProxy for tests: a generated config, checked with `haproxy -c`, run
in the foreground (`-db`) in a netlab host's namespace, stopped by PID.

The config should have a stats socket (`render_config(stats_socket=...)`):
`stats()` reads `show stat` through it (a unix socket is a file, so this works
from outside the namespace) to see which servers are up and who served what.
"""

from __future__ import annotations

import csv
import io
import shutil
import socket
import subprocess
import time
from pathlib import Path


class HaproxyError(RuntimeError):
    pass


def haproxy_binary() -> str:
    path = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(path).exists():
        raise HaproxyError("haproxy is not installed (apt install haproxy)")
    return path


def check_config(path: Path) -> str:
    """`haproxy -c -f PATH`; raises with HAProxy's complaint, returns its output."""
    proc = subprocess.run([haproxy_binary(), "-c", "-f", str(path)], check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise HaproxyError(f"haproxy -c refused {path}:\n{proc.stdout}{proc.stderr}")
    return (proc.stdout + proc.stderr).strip()


class Haproxy:
    def __init__(self, config_path: Path, stats_socket: Path | None, host):
        """host: the netlab Host to run in."""
        self.config_path = config_path
        self.stats_socket = stats_socket
        self.host = host
        self.log_path = config_path.with_suffix(".log")
        self.proc = None

    def start(self, timeout: float = 10.0) -> None:
        check_config(self.config_path)
        self.proc = self.host.spawn([haproxy_binary(), "-db", "-f", str(self.config_path)], log=self.log_path)
        deadline = time.monotonic() + timeout
        while self.stats_socket is not None:
            if not self.alive():
                raise HaproxyError(f"haproxy exited:\n{self.proc.log()[-2000:]}")
            try:
                self.command("show info")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise HaproxyError(f"haproxy stats socket never answered:\n{self.proc.log()[-2000:]}") from None
                time.sleep(0.05)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.alive() else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc is not None:
            self.host.stop(self.proc, timeout)

    # -- the stats socket --------------------------------------------------------------

    def command(self, line: str, timeout: float = 2.0) -> str:
        if self.stats_socket is None:
            raise HaproxyError("no stats socket configured")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(self.stats_socket))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def stats(self) -> list[dict[str, str]]:
        """`show stat` as dicts (pxname, svname, status, stot, ...)."""
        text = self.command("show stat").lstrip("# ")
        return list(csv.DictReader(io.StringIO(text)))

    def servers(self, backend: str = "maas") -> dict[str, dict[str, str]]:
        return {
            row["svname"]: row
            for row in self.stats()
            if row["pxname"] == backend and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def server_status(self, backend: str = "maas") -> dict[str, str]:
        """{server: "UP" | "DOWN" | "UP 1/2" | ...}"""
        return {name: row["status"] for name, row in self.servers(backend).items()}
