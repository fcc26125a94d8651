"""HTTP BMC emulators for tests and benchmarks: Redfish BMCs and webhook power servers.

One process (Starlette on uvicorn) serves any number of emulated BMCs, each on
its own listening socket (address:port): a farm of hundreds costs one process.
A request is routed to the BMC that owns the socket it arrived on.

    emu = HttpBmcEmulator(workdir, [
        HttpBmc("bmc1", "127.0.0.5", 8443, username="root", password="s3cret", systems=["1", "2"]),
        HttpBmc("hook1", "127.0.0.5", 8444, kind="webhook", token="t0k3n"),
    ], tls=False)
    emu.start()                   # python -m tests.support.bmc_redfish CONFIG (or host=lab_host)
    emu.state("bmc1")             # {"systems": {"1": {"PowerState": "Off", ...}}, "requests": ...}
    emu.set_power("bmc1", "1", "On")
    emu.stop()                    # by PID

Redfish BMC (basic auth on everything but the service root):

* ``GET /redfish/v1``, ``GET /redfish/v1/Systems`` (Members),
* ``GET|PATCH /redfish/v1/Systems/{id}`` (PowerState, Boot.BootSourceOverride*),
* ``POST /redfish/v1/Systems/{id}/Actions/ComputerSystem.Reset`` with ResetType
  On, ForceOff, GracefulShutdown, ForceRestart, GracefulRestart, PowerCycle
  (``allowable`` narrows the list; On when on or ForceOff when off answer 409,
  as some BMCs do, unless ``lenient``).

Webhook server (Bearer token or basic auth): ``POST /machines/{id}/on``,
``POST /machines/{id}/off``, ``GET /machines/{id}/status`` ->
``{"status": "running"}`` / ``{"status": "stopped"}``.

Control API, no auth, for the tests (``/_emulator/...`` on every BMC socket):
``GET state`` (this BMC), ``POST state`` ({"system", "PowerState"} or
{"delay"} or {"reset_counters": true}), ``GET all`` (every BMC of the process).
Counters per BMC: requests, unauthorized (401s), max_in_flight (most
requests served at once), request_times (monotonic, per request).

``delay`` (seconds) slows every BMC request down, to make concurrency visible.
With ``tls=True`` all sockets serve HTTPS with a self-signed certificate made
at start (clients need ``power_verify_ssl=n``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import datetime
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import module_command

RESET_TYPES = ["On", "ForceOff", "GracefulShutdown", "ForceRestart", "GracefulRestart", "PowerCycle"]


@dataclass
class EmulatedSystem:
    id: str
    power_state: str = "Off"
    boot_target: str = "None"
    boot_enabled: str = "Disabled"
    resets: list[str] = field(default_factory=list)

    def resource(self, allowable: list[str]) -> dict[str, Any]:
        path = f"/redfish/v1/Systems/{self.id}"
        return {
            "@odata.id": path,
            "@odata.type": "#ComputerSystem.v1_13_0.ComputerSystem",
            "Id": self.id,
            "Name": f"System {self.id}",
            "PowerState": self.power_state,
            "Boot": {
                "BootSourceOverrideTarget": self.boot_target,
                "BootSourceOverrideEnabled": self.boot_enabled,
                "BootSourceOverrideTarget@Redfish.AllowableValues": ["None", "Pxe", "Hdd"],
            },
            "Actions": {
                "#ComputerSystem.Reset": {
                    "target": f"{path}/Actions/ComputerSystem.Reset",
                    "ResetType@Redfish.AllowableValues": allowable,
                }
            },
        }


@dataclass
class HttpBmc:
    """One emulated BMC (kind "redfish") or webhook server (kind "webhook") on address:port."""

    name: str
    address: str = "127.0.0.1"
    port: int = 0
    kind: str = "redfish"
    username: str = "admin"
    password: str = "password"
    token: str = ""
    systems: list[str] = field(default_factory=lambda: ["1"])
    allowable: list[str] = field(default_factory=lambda: list(RESET_TYPES))
    lenient: bool = False
    delay: float = 0.0
    # runtime state
    machines: dict[str, EmulatedSystem] = field(default_factory=dict)
    requests: int = 0
    unauthorized: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    request_times: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.machines:
            self.machines = {sid: EmulatedSystem(sid) for sid in self.systems}

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "port": self.port,
            "kind": self.kind,
            "username": self.username,
            "password": self.password,
            "token": self.token,
            "systems": list(self.systems),
            "allowable": self.allowable,
            "lenient": self.lenient,
            "delay": self.delay,
        }

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "port": self.port,
            "kind": self.kind,
            "systems": {
                sid: {
                    "PowerState": m.power_state,
                    "BootSourceOverrideTarget": m.boot_target,
                    "BootSourceOverrideEnabled": m.boot_enabled,
                    "resets": list(m.resets),
                }
                for sid, m in self.machines.items()
            },
            "requests": self.requests,
            "unauthorized": self.unauthorized,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "request_times": list(self.request_times),
            "delay": self.delay,
        }

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"

    def params(self, system: str | None = None, *, scheme: str = "http", **extra: str) -> dict[str, str]:
        """metalplane power parameters that reach this BMC (type redfish or webhook)."""
        if self.kind == "webhook":
            sid = system or self.systems[0]
            base = f"{scheme}://{self.url}/machines/{sid}"
            out = {"power_on_uri": f"{base}/on", "power_off_uri": f"{base}/off", "power_query_uri": f"{base}/status"}
            if self.token:
                out["power_token"] = self.token
            else:
                out.update(power_user=self.username, power_pass=self.password)
        else:
            out = {"power_address": f"{scheme}://{self.url}", "power_user": self.username, "power_pass": self.password}
            if system is not None:
                out["node_id"] = system
        out.update(extra)
        return out


# --------------------------------------------------------------------------- the app


def _error(status: int, message: str, headers: dict[str, str] | None = None):
    from starlette.responses import JSONResponse

    body = {
        "error": {
            "code": "Base.1.0.GeneralError",
            "message": message,
            "@Message.ExtendedInfo": [{"MessageId": "Base.1.0.GeneralError", "Message": message}],
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _authorized(bmc: HttpBmc, request) -> bool:
    header = request.headers.get("authorization", "")
    if bmc.kind == "webhook" and bmc.token:
        return secrets.compare_digest(header, f"Bearer {bmc.token}")
    if not header.lower().startswith("basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return secrets.compare_digest(user, bmc.username) and secrets.compare_digest(password, bmc.password)


def make_app(bmcs: dict[tuple[str, int], HttpBmc]):
    """A Starlette app serving every BMC of `bmcs` ({(address, port): bmc}) by local socket."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    by_port: dict[int, list[HttpBmc]] = {}
    for bmc in bmcs.values():
        by_port.setdefault(bmc.port, []).append(bmc)

    def bmc_of(request: Request) -> HttpBmc | None:
        server = request.scope.get("server") or ("", 0)
        host, port = server[0], server[1]
        bmc = bmcs.get((host, port))
        if bmc is None and len(by_port.get(port, [])) == 1:  # e.g. a wildcard bind
            bmc = by_port[port][0]
        return bmc

    async def control(request: Request) -> Response:
        bmc = bmc_of(request)
        what = request.path_params["what"]
        if what == "all":
            return JSONResponse({b.name: b.snapshot() for b in bmcs.values()})
        if bmc is None:
            return _error(404, "no BMC on this socket")
        if what != "state":
            return _error(404, "unknown control endpoint")
        if request.method == "POST":
            body = await request.json()
            if body.get("reset_counters"):
                bmc.requests = bmc.unauthorized = bmc.max_in_flight = 0
                bmc.request_times.clear()
            if "delay" in body:
                bmc.delay = float(body["delay"])
            if "system" in body:
                machine = bmc.machines.get(str(body["system"]))
                if machine is None:
                    return _error(404, "no such system")
                if "PowerState" in body:
                    machine.power_state = str(body["PowerState"])
            for key in ("username", "password", "token"):
                if key in body:
                    setattr(bmc, key, str(body[key]))
        return JSONResponse(bmc.snapshot())

    async def handle(request: Request) -> Response:
        bmc = bmc_of(request)
        if bmc is None:
            return _error(404, "no BMC on this socket")
        bmc.requests += 1
        bmc.request_times.append(time.monotonic())
        bmc.in_flight += 1
        bmc.max_in_flight = max(bmc.max_in_flight, bmc.in_flight)
        try:
            if bmc.delay:
                await asyncio.sleep(bmc.delay)
            path = "/" + request.path_params["path"].rstrip("/")
            if bmc.kind == "redfish" and path == "/redfish/v1" and request.method == "GET":
                return JSONResponse(
                    {
                        "@odata.id": "/redfish/v1",
                        "Id": "RootService",
                        "RedfishVersion": "1.11.0",
                        "Systems": {"@odata.id": "/redfish/v1/Systems"},
                    }
                )
            if not _authorized(bmc, request):
                bmc.unauthorized += 1
                return _error(
                    401,
                    "Authentication required: invalid user name or password",
                    {"WWW-Authenticate": 'Basic realm="emulated BMC"'},
                )
            if bmc.kind == "webhook":
                return await webhook(bmc, request, path)
            return await redfish(bmc, request, path)
        finally:
            bmc.in_flight -= 1

    async def redfish(bmc: HttpBmc, request: Request, path: str) -> Response:
        parts = path.strip("/").split("/")
        if parts == ["redfish", "v1", "Systems"] and request.method == "GET":
            return JSONResponse(
                {
                    "@odata.id": "/redfish/v1/Systems",
                    "Name": "Systems",
                    "Members@odata.count": len(bmc.machines),
                    "Members": [{"@odata.id": f"/redfish/v1/Systems/{sid}"} for sid in bmc.machines],
                }
            )
        if len(parts) >= 4 and parts[:3] == ["redfish", "v1", "Systems"]:
            machine = bmc.machines.get(parts[3])
            if machine is None:
                return _error(404, f"Resource {path} not found")
            if len(parts) == 4 and request.method == "GET":
                return JSONResponse(machine.resource(bmc.allowable))
            if len(parts) == 4 and request.method == "PATCH":
                body = await request.json()
                boot = body.get("Boot") or {}
                target = boot.get("BootSourceOverrideTarget")
                if target is not None and target not in ("None", "Pxe", "Hdd"):
                    return _error(400, f"BootSourceOverrideTarget {target} is not supported")
                machine.boot_target = target or machine.boot_target
                machine.boot_enabled = boot.get("BootSourceOverrideEnabled") or machine.boot_enabled
                return Response(status_code=204)
            if parts[4:] == ["Actions", "ComputerSystem.Reset"] and request.method == "POST":
                try:
                    body = await request.json()
                except ValueError:
                    return _error(400, "malformed JSON")
                reset = body.get("ResetType") if isinstance(body, dict) else None
                if reset not in bmc.allowable:
                    return _error(
                        400, f"The value {reset} for the property ResetType is not in the list of acceptable values"
                    )
                on = machine.power_state == "On"
                if not bmc.lenient and ((reset == "On" and on) or (reset == "ForceOff" and not on)):
                    return _error(409, f"The system is already {'on' if on else 'off'}")
                machine.resets.append(reset)
                if reset == "On":
                    machine.power_state = "On"
                elif reset in ("ForceOff", "GracefulShutdown"):
                    machine.power_state = "Off"
                elif reset in ("ForceRestart", "GracefulRestart", "PowerCycle"):
                    if reset != "PowerCycle" and not on:
                        return _error(409, "The system is off")
                    machine.power_state = "On"
                return Response(status_code=204)
        return _error(404 if request.method == "GET" else 405, f"{request.method} {path} is not supported")

    async def webhook(bmc: HttpBmc, request: Request, path: str) -> Response:
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "machines":
            machine = bmc.machines.get(parts[1])
            if machine is None:
                return _error(404, "no such machine")
            if parts[2] == "status" and request.method == "GET":
                status = "running" if machine.power_state == "On" else "stopped"
                return JSONResponse({"status": status})
            if parts[2] in ("on", "off") and request.method == "POST":
                machine.resets.append(parts[2])
                machine.power_state = "On" if parts[2] == "on" else "Off"
                return JSONResponse({"result": "ok"})
        return _error(404, f"{request.method} {path} is not supported")

    methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
    return Starlette(
        routes=[
            Route("/_emulator/{what}", control, methods=["GET", "POST"]),
            Route("/{path:path}", handle, methods=methods),
        ]
    )


# --------------------------------------------------------------------------- serving


def _bind(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Inherited by accepted connections: without it a kept-alive connection waits ~40 ms per
    # response (Nagle + delayed ACK: uvicorn writes headers and body separately).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((address, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


def self_signed_cert(directory: Path, hosts: Sequence[str]) -> tuple[Path, Path]:
    """A throwaway self-signed certificate (and key) for the emulator's HTTPS."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "emulated-bmc")])
    alt: list[x509.GeneralName] = []
    for host in sorted(set(hosts)):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "bmc-cert.pem", directory / "bmc-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


async def serve(
    bmcs: list[HttpBmc],
    *,
    tls: bool = False,
    workdir: Path | None = None,
    ready: Path | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve `bmcs` until `stop` is set (or forever). Port 0 picks a free port (written back)."""
    import uvicorn

    sockets = []
    for bmc in bmcs:
        sock = _bind(bmc.address, bmc.port)
        bmc.port = sock.getsockname()[1]
        sockets.append(sock)
    app = make_app({(b.address, b.port): b for b in bmcs})
    ssl_args: dict[str, Any] = {}
    if tls:
        cert, key = self_signed_cert(workdir or Path("."), [b.address for b in bmcs])
        ssl_args = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    config = uvicorn.Config(
        app, lifespan="off", log_level="warning", access_log=False, timeout_keep_alive=30, **ssl_args
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]

    async def announce() -> None:
        while not server.started:
            await asyncio.sleep(0.01)
        if ready is not None:
            tmp = ready.with_suffix(".tmp")
            tmp.write_text(json.dumps({b.name: b.port for b in bmcs}))
            tmp.replace(ready)
        if stop is not None:
            await stop.wait()
            server.should_exit = True

    waiter = asyncio.ensure_future(announce())
    try:
        await server.serve(sockets=sockets)
    finally:
        waiter.cancel()
        for sock in sockets:
            sock.close()


class HttpBmcEmulator:
    """The emulator as a separate process (default) or a thread in this one; always stopped by us."""

    def __init__(self, workdir: str | Path, bmcs: Sequence[HttpBmc], *, tls: bool = False):
        self.workdir = Path(workdir)
        self.bmcs = {b.name: b for b in bmcs}
        self.tls = tls
        self.proc: subprocess.Popen | None = None
        self._host: Any = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._client: Any = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def ready_file(self) -> Path:
        return self.workdir / "ready.json"

    @property
    def log_path(self) -> Path:
        return self.workdir / "emulator.log"

    def write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        path = self.workdir / "bmcs.json"
        path.write_text(json.dumps({"tls": self.tls, "bmcs": [b.config() for b in self.bmcs.values()]}))
        path.chmod(0o600)
        return path

    def start(self, host: Any = None, timeout: float = 30.0) -> HttpBmcEmulator:
        """Run ``python -m tests.support.bmc_redfish`` (in netlab `host`'s namespace if given)."""
        config = self.write_config()
        self.ready_file.unlink(missing_ok=True)
        cmd, env = module_command("tests.support.bmc_redfish", str(config), "--ready", str(self.ready_file))
        if host is not None:
            self._host = host
            self.proc = host.spawn(cmd, log=self.log_path, cwd=str(self.workdir), env=env)
        else:
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    cmd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=str(self.workdir),
                    env={**os.environ, **env},
                    start_new_session=True,
                )
        self._wait_ready(timeout, lambda: self.proc is not None and self.proc.poll() is None)
        return self

    def start_in_thread(self, timeout: float = 30.0) -> HttpBmcEmulator:
        """Serve from a thread of this process (state shared with the caller's HttpBmc objects)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ready_file.unlink(missing_ok=True)
        started = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._stop = asyncio.Event()
            started.set()
            loop.run_until_complete(
                serve(
                    list(self.bmcs.values()), tls=self.tls, workdir=self.workdir, ready=self.ready_file, stop=self._stop
                )
            )
            loop.close()

        self._thread = threading.Thread(target=main, name="http-bmc-emulator", daemon=True)
        self._thread.start()
        started.wait(timeout)
        self._wait_ready(timeout, lambda: self._thread is not None and self._thread.is_alive())
        return self

    def _wait_ready(self, timeout: float, alive) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready_file.exists():
            if not alive():
                raise RuntimeError(f"BMC emulator exited: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"BMC emulator not ready after {timeout}s: {self.log_tail()}")
            time.sleep(0.02)
        for name, port in json.loads(self.ready_file.read_text()).items():
            self.bmcs[name].port = port

    def stop(self, timeout: float = 3.0) -> None:
        """Stop what start() started: SIGTERM, then SIGKILL after `timeout` (an emulator keeps nothing)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._thread is not None:
            if self._loop is not None and self._stop is not None:
                self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)
            self._thread = None
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            if self._host is not None:
                self._host.stop(proc, timeout)
                return
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def __enter__(self) -> HttpBmcEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    # -- control API (works for the process and the thread modes) -------------

    def _control(self, name: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        import httpx

        if self._client is None:
            self._client = httpx.Client(verify=False, timeout=10.0)
        bmc = self.bmcs[name]
        url = f"{self.scheme}://{bmc.url}/_emulator/state"
        response = self._client.post(url, json=body) if body is not None else self._client.get(url)
        response.raise_for_status()
        return response.json()

    def state(self, name: str) -> dict[str, Any]:
        return self._control(name)

    def power_state(self, name: str, system: str = "1") -> str:
        return self.state(name)["systems"][system]["PowerState"]

    def set_power(self, name: str, system: str, state: str) -> None:
        self._control(name, {"system": system, "PowerState": state})

    def set_delay(self, name: str, delay: float) -> None:
        self._control(name, {"delay": delay})

    def reset_counters(self, name: str) -> None:
        self._control(name, {"reset_counters": True})

    def set_password(self, name: str, password: str) -> None:
        """The BMC's password changes under its users: it answers them 401 until set back."""
        self._control(name, {"password": password})

    def all_states(self) -> dict[str, Any]:
        first = next(iter(self.bmcs))
        import httpx

        if self._client is None:
            self._client = httpx.Client(verify=False, timeout=10.0)
        response = self._client.get(f"{self.scheme}://{self.bmcs[first].url}/_emulator/all")
        response.raise_for_status()
        return response.json()

    def params(self, name: str, system: str | None = None, **extra: str) -> dict[str, str]:
        return self.bmcs[name].params(system, scheme=self.scheme, **extra)


def farm(
    count: int,
    *,
    first_address: str = "127.0.1.1",
    port: int = 0,
    kind: str = "redfish",
    username: str = "admin",
    password: str = "password",
    systems_per_bmc: int = 1,
) -> list[HttpBmc]:
    """`count` BMCs on consecutive addresses (127.0.1.1, 127.0.1.2, ...) sharing one port number."""
    import ipaddress

    base = ipaddress.ip_address(first_address)
    return [
        HttpBmc(
            f"bmc{i}",
            str(base + i),
            port,
            kind=kind,
            username=username,
            password=password,
            systems=[str(n + 1) for n in range(systems_per_bmc)],
        )
        for i in range(count)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.bmc_redfish", description="Serve emulated Redfish BMCs / webhook servers."
    )
    parser.add_argument(
        "config",
        help='JSON: {"tls": false, "bmcs": [{"name", "address", "port", "kind", '
        '"username", "password", "token", "systems": [...]}]}',
    )
    parser.add_argument("--ready", help="file to write {name: port} to once listening")
    args = parser.parse_args(argv)
    data = json.loads(Path(args.config).read_text())
    bmcs = [HttpBmc(**b) for b in data["bmcs"]]
    stop = asyncio.Event()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(
            bmcs,
            tls=bool(data.get("tls")),
            workdir=Path(args.config).parent,
            ready=Path(args.ready) if args.ready else None,
            stop=stop,
        )

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
