"""The API from inside a lab namespace, where the test process cannot route.

Two programs, both signing requests with metalplane.client.http.MaasHttp
exactly as the CLI does (the API key comes in $METALPLANE_API_KEY):

* ``python -m tests.support.ns_api agent URL``: one request per JSON line
  on stdin (``{"method", "path", "op", "data"}``), one answer per line on
  stdout (``{"status", "body", "t0", "t1"}``; status 0 and ``error`` when no
  HTTP answer came). :class:`NsApi` drives it.
* ``python -m tests.support.ns_api loop URL --out FILE``: client traffic
  until SIGTERM. Reader threads GET ``zones/``; writer threads POST a new zone
  each (unique names). Every request becomes a JSON line in FILE:
  ``{"kind": "read"|"write", "name", "status", "t0", "t1", "error"}`` with
  CLOCK_MONOTONIC times (the same clock as the test's time.monotonic()).
  :class:`TrafficLoop` starts it and reads FILE.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.support import module_command

KEY_ENV = "METALPLANE_API_KEY"


# ----------------------------------------------------------------------------- in the namespace


def _call(api, method: str, path: str, op: str | None, data: Any) -> dict:
    t0 = time.monotonic()
    try:
        response = api.request(method, path, op, data)
        return {
            "status": response.status_code,
            "body": response.text,
            "t0": t0,
            "t1": time.monotonic(),
            "retry_after": response.headers.get("retry-after"),
        }
    except Exception as exc:  # reported to the test
        return {"status": 0, "error": f"{type(exc).__name__}: {exc}", "t0": t0, "t1": time.monotonic()}


def agent_main(url: str, timeout: float) -> int:
    from metalplane.client.http import MaasHttp

    with MaasHttp(url, os.environ.get(KEY_ENV) or None, timeout=timeout) as api:
        for line in sys.stdin:
            if not line.strip():
                continue
            req = json.loads(line)
            answer = _call(api, req["method"], req["path"], req.get("op"), req.get("data"))
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
    return 0


def loop_main(url: str, out: Path, readers: int, writers: int, interval: float, prefix: str, timeout: float) -> int:
    from metalplane.client.http import MaasHttp

    stop = threading.Event()
    lock = threading.Lock()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with open(out, "a", buffering=1) as fh:
        key = os.environ.get(KEY_ENV) or None

        def record(entry: dict) -> None:
            if entry.get("status") in (200, 204):
                entry.pop("body", None)  # a zone list: big, and not needed
            with lock:
                fh.write(json.dumps(entry) + "\n")

        def reader(index: int) -> None:
            with MaasHttp(url, key, timeout=timeout) as api:
                while not stop.is_set():
                    record({"kind": "read", "thread": f"r{index}", **_call(api, "GET", "zones/", None, None)})
                    stop.wait(interval)

        def writer(index: int) -> None:
            n = 0
            with MaasHttp(url, key, timeout=timeout) as api:
                while not stop.is_set():
                    n += 1
                    name = f"{prefix}-w{index}-{n}"
                    result = _call(api, "POST", "zones/", None, {"name": name, "description": "region-ha loop"})
                    record({"kind": "write", "thread": f"w{index}", "name": name, **result})
                    stop.wait(interval)

        threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(readers)]
        threads += [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(writers)]
        for t in threads:
            t.start()
        while not stop.is_set():
            stop.wait(0.2)
        for t in threads:
            t.join(timeout + 5)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.ns_api")
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("agent")
    a.add_argument("url")
    a.add_argument("--timeout", type=float, default=60.0)
    lp = sub.add_parser("loop")
    lp.add_argument("url")
    lp.add_argument("--out", type=Path, required=True)
    lp.add_argument("--readers", type=int, default=2)
    lp.add_argument("--writers", type=int, default=1)
    lp.add_argument("--interval", type=float, default=0.02)
    lp.add_argument("--prefix", default="ha")
    lp.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    if args.command == "agent":
        return agent_main(args.url, args.timeout)
    return loop_main(args.url, args.out, args.readers, args.writers, args.interval, args.prefix, args.timeout)


# ----------------------------------------------------------------------------- in the test


def _spawn_piped(host, cmd: list[str], env: dict[str, str]):
    """A NetnsProcess with pipes, tracked by the lab (killed at teardown)."""
    from tests.support.netlab import NetnsProcess, _proc_stat

    proc = NetnsProcess(
        host.command(cmd),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **env},
        start_new_session=True,
    )
    proc.netns, proc.log_path = host.netns, None
    proc.start_time = (_proc_stat(proc.pid) or ("", 0))[1]
    host.lab._track(proc)
    return proc


class NsApi:
    """Requests made by an agent process inside `host`'s namespace."""

    def __init__(self, host, url: str, api_key: str | None = None, timeout: float = 60.0):
        self.url = url
        cmd, env = module_command("tests.support.ns_api", "agent", url, "--timeout", str(timeout))
        self.proc = _spawn_piped(host, cmd, {**env, KEY_ENV: api_key or ""})
        self.lock = threading.Lock()

    def request(self, method: str, path: str, op: str | None = None, **data: Any) -> dict:
        line = json.dumps({"method": method, "path": path, "op": op, "data": data or None})
        with self.lock:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
            answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"API agent in {self.url} exited ({self.proc.poll()})")
        return json.loads(answer)

    def json(self, method: str, path: str, op: str | None = None, **data: Any) -> Any:
        answer = self.request(method, path, op, **data)
        if answer["status"] not in (200, 201):
            raise RuntimeError(
                f"{method} {path} op={op}: {answer['status']} {answer.get('body') or answer.get('error')}"
            )
        return json.loads(answer["body"])

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(5)
            except Exception:
                self.proc.kill()
                self.proc.wait()


class TrafficLoop:
    """The `loop` program inside `host`'s namespace, writing its records to `out`."""

    def __init__(
        self,
        host,
        url: str,
        api_key: str,
        out: Path,
        readers: int = 2,
        writers: int = 1,
        interval: float = 0.02,
        prefix: str = "ha",
    ):
        self.out = out
        cmd, env = module_command(
            "tests.support.ns_api",
            "loop",
            url,
            "--out",
            str(out),
            "--readers",
            str(readers),
            "--writers",
            str(writers),
            "--interval",
            str(interval),
            "--prefix",
            prefix,
        )
        self.proc = host.spawn(cmd, env={**env, KEY_ENV: api_key})

    def records(self) -> list[dict]:
        try:
            lines = self.out.read_text().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # a line being written
        return out

    def stop(self, timeout: float = 70.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


if __name__ == "__main__":
    raise SystemExit(main())
