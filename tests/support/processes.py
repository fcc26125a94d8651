"""Real metalplane processes for tests: started, waited for, and always stopped by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from metalplane.config.region import RegionConfig, save_region_config

_handed_out: set[int] = set()


def free_port_block(count: int = 1, start: int = 20000, end: int = 60000) -> int:
    """First port of `count` consecutive ports free on 127.0.0.1 (TCP and UDP) and not
    handed out before by this process (the caller may not have bound them yet)."""
    port = start + (os.getpid() * 37) % (end - start - 200)
    while port + count < end:
        if _handed_out & set(range(port, port + count)):
            port += count + 1
            continue
        socks = []
        try:
            for p in range(port, port + count):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", p))
                socks.append(s)
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                u.bind(("127.0.0.1", p))
                socks.append(u)
            _handed_out.update(range(port, port + count))
            return port
        except OSError:
            port += count + 1
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port block")


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class MetalplaneProcess:
    """`python -m metalplane ARGS` with its log in a file; killed by PID only."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None):
        self.args = args
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "metalplane", *self.args],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(self.env or {})},
            start_new_session=True,
        )
        log.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            os.kill(self.proc.pid, sig)
            if sig == signal.SIGKILL:
                self.proc.wait()

    def stop(self, timeout: float = 20.0) -> None:
        if not self.alive():
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


#: A region or rack on this host's own network (not in a lab namespace) runs no named or
#: chronyd unless the test asks: their ports are the host's, shared with parallel test runs.
HOST_NETWORK_SERVICES_OFF = {"dns_port": 0, "ntp_port": 0}


class RegionProcess(MetalplaneProcess):
    def __init__(self, config: RegionConfig, workdir: Path):
        off = {k: v for k, v in HOST_NETWORK_SERVICES_OFF.items() if k not in config.model_fields_set}
        config = config.model_copy(update=off)
        self.config = config
        self.config_path = workdir / "regiond.conf"
        workdir.mkdir(parents=True, exist_ok=True)
        save_region_config(self.config_path, config)
        super().__init__(["region", "run", "--config", str(self.config_path)], workdir / "regiond.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.config.port}/MAAS/"

    def answering(self) -> bool:
        try:
            return httpx.get(self.url + "api/2.0/version/", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def start_and_wait(self, timeout: float = 60.0) -> None:
        self.start()
        try:
            wait_until(lambda: self.answering() or not self.alive(), timeout, what="region API")
        finally:
            if not self.alive():
                raise RuntimeError(f"region exited during start-up:\n{self.log()[-3000:]}")
        if not self.answering():
            raise RuntimeError(f"region not answering:\n{self.log()[-3000:]}")

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True).stdout
        return sorted(int(p) for p in out.split())


class RackProcess(MetalplaneProcess):
    """`metalplane rack run` in the foreground, with its own data dir."""

    def __init__(self, data_dir: Path, urls: list[str], secret: str, hostname: str, **settings):
        from metalplane.config.rack import rack_config_path, update_rack_config
        from metalplane.identity import write_secret

        self.data_dir = data_dir
        self.hostname = hostname
        data_dir.mkdir(parents=True, exist_ok=True)
        write_secret(data_dir, secret)
        # On this host's own network: loopback only, on free ports, never 69/5248 on real interfaces.
        port = free_port_block(2)
        settings = {
            "bind_address": "127.0.0.1",
            "tftp_port": port,
            "http_port": port + 1,
            **HOST_NETWORK_SERVICES_OFF,
            "discovery": False,
            **settings,
        }
        update_rack_config(
            rack_config_path(data_dir), {"maas_url": urls, "data_dir": str(data_dir), "hostname": hostname, **settings}
        )
        super().__init__(["rack", "run", "--data-dir", str(data_dir)], data_dir / "rackd.log")

    @property
    def system_id(self) -> str | None:
        from metalplane.identity import read_system_id

        return read_system_id(self.data_dir)
