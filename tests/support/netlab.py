"""Network labs for system tests: several "hosts" on one machine, isolated from it.

A :class:`Lab` builds its networks only out of network namespaces, veth pairs
and bridges that it creates itself (DESIGN.md §7)::

    with Lab() as lab:
        lab.add_network("pxe", "10.50.0.0/24")
        lab.add_network("bmc", "10.51.0.0/24")
        rack1 = lab.add_host("rack1", {"pxe": "10.50.0.2/24", "bmc": "10.51.0.2/24"})
        client = lab.add_host("client1", {"pxe": None})        # no address: for DHCP
        rack1.run(["ip", "-j", "addr"])                        # CompletedProcess
        kea = rack1.spawn(["kea-dhcp4", "-c", conf], env=...)  # Popen, tracked
        lease = client.dhcp_udhcpc("pxe", timeout=10)           # Lease(ip=..., server_id=...)

Layout:

* one *fabric* namespace ``<prefix>-fabric`` holds a bridge ``br-<net>`` per
  network (and TAP devices for VMs, :meth:`Lab.add_tap`);
* each host is a namespace ``<prefix>-<host>`` with ``lo`` up and, for each of
  its networks, an interface named like the network (``pxe``), the peer of a
  veth ``v<N>-<net>`` that is a port of the network's bridge.

Veth pairs are created from inside the fabric namespace with their peer placed
straight into the host namespace, so no interface, address, route or bridge
ever exists in the machine's own namespace. Interface names are private to
their namespace, so parallel labs never clash on them; namespace names carry
the lab's unique prefix (``mpl`` + 5 random characters).

Processes run through ``ip netns exec NS`` (which execs the command, so the
Popen's PID is the command's) in a new session, so each is a process group
leader. Teardown, which also runs on exceptions and at interpreter exit:

1. SIGTERM to each tracked process group, SIGKILL after a short grace;
2. SIGKILL to every process still inside one of the lab's namespaces (found by
   comparing ``/proc/PID/ns/net`` with the namespace files, as ``ip netns pids``
   does), which catches daemons that left their process group;
3. ``ip netns del`` for every namespace, then the work dir and the state file.

Each lab records its owner (PID, start time, boot id), namespaces, PIDs and
work dir in ``/run/metalplane-netlab/<prefix>.json``. :func:`cleanup_stale`,
called when a lab starts, removes the namespaces, processes and work dirs of
labs whose owner is gone (a crashed or SIGKILLed test run), and never those of
a lab whose owner still runs (a parallel test run).

Note: the machine's PID 1 does not reap orphans, so a process that escapes its
parent (a double-forking daemon) stays a zombie after it is killed. Zombies
hold no namespace; prefer foreground modes (``-f``, ``-d``) anyway.
"""

from __future__ import annotations

import atexit
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import string
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tests.support import dhcp_clients
from tests.support.dhcp_clients import DhcpClient, Lease

NETNS_DIR = Path("/run/netns")
STATE_DIR = Path("/run/metalplane-netlab")
PREFIX_START = "mpl"
#: Namespaces whose names match this belong to some lab (``<prefix>-<name>``).
DEFAULT_PATTERN = r"^mpl[0-9a-z]{2,9}-"
PREFIX_RE = re.compile(r"^mpl[0-9a-z]{2,9}$")
NETWORK_RE = re.compile(r"^[a-z][a-z0-9]{0,9}$")  # host-side ifname = network name (<= 10)
HOST_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
FABRIC = "fabric"
IFNAMSIZ = 16  # including the NUL
_ALPHABET = string.ascii_lowercase + string.digits


class LabError(RuntimeError):
    """A lab operation failed (with the failing command's output)."""


# --------------------------------------------------------------------------- helpers


def _ip(
    args: Sequence[str], *, netns: str | None = None, batch: Iterable[str] | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """Run iproute2's ``ip`` (``-n NETNS`` if given; ``-batch -`` with `batch` lines)."""
    cmd = ["ip"]
    if netns is not None:
        cmd += ["-n", netns]
    cmd += list(args)
    stdin = None
    if batch is not None:
        cmd += ["-batch", "-"]
        stdin = "".join(line + "\n" for line in batch)
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        detail = f"\nbatch:\n{stdin}" if stdin else ""
        raise LabError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()}{detail}")
    return proc


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks) of `pid`, or None if it does not exist."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    return fields[0], int(fields[19])


def pid_alive(pid: int) -> bool:
    """True if `pid` exists and is not a zombie."""
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def _owner_alive(owner: Mapping[str, Any]) -> bool:
    if owner.get("boot_id") != _boot_id():
        return False
    pid = owner.get("pid")
    if not isinstance(pid, int):
        return False
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X") and stat[1] == owner.get("start")


def list_netns() -> list[str]:
    """Names of the named network namespaces (``ip netns list``), without touching any."""
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def netns_pids(names: Iterable[str]) -> dict[int, str]:
    """PIDs of the processes inside the named namespaces: {pid: namespace}."""
    inodes: dict[tuple[int, int], str] = {}
    for name in names:
        try:
            st = os.stat(NETNS_DIR / name)
        except OSError:
            continue
        inodes[(st.st_dev, st.st_ino)] = name
    found: dict[int, str] = {}
    if not inodes:
        return found
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        owner = inodes.get((st.st_dev, st.st_ino))
        if owner is not None and int(entry) != os.getpid():
            found[int(entry)] = owner
    return found


def _kill_netns_processes(names: Sequence[str], timeout: float = 5.0) -> list[int]:
    """SIGKILL every process inside the namespaces until none is left."""
    killed: list[int] = []
    deadline = time.monotonic() + timeout
    while True:
        pids = [pid for pid in netns_pids(names) if pid_alive(pid)]
        if not pids:
            return killed
        if time.monotonic() > deadline:
            raise LabError(f"processes {pids} survive SIGKILL in namespaces {list(names)}")
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.02)


def _kill_recorded(pids: Iterable[Any]) -> None:
    """SIGKILL the process groups a dead lab recorded, if still the same processes.

    A process spawned just before its lab's owner died may not have entered its
    namespace yet (``ip netns exec`` still running), so the namespace scan would
    miss it. Same PID and same start time means the same process.
    """
    for entry in pids:
        if not (isinstance(entry, list) and len(entry) == 2):
            continue
        pid, start = entry
        stat = _proc_stat(pid)
        if stat is None or stat[1] != start or stat[0] in ("Z", "X"):
            continue
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _delete_netns(names: Sequence[str]) -> None:
    existing = [n for n in names if (NETNS_DIR / n).exists()]
    if existing:
        proc = _ip([], batch=[f"netns del {n}" for n in existing], check=False)
        left = [n for n in existing if (NETNS_DIR / n).exists()]
        if left:
            raise LabError(f"could not delete namespaces {left}: {proc.stderr.strip()}")


def _write_json_atomic(path: Path, data: Mapping[str, Any], exclusive: bool = False) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    tmp.write_text(json.dumps(data, indent=1))
    try:
        if exclusive:
            os.link(tmp, path)  # fails if `path` exists: claims the prefix
        else:
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _remove_workdir(path: str | None, prefix: str) -> None:
    if not path:
        return
    p = Path(path)
    if p.name.startswith(prefix + "-") and p.is_dir():
        shutil.rmtree(p, ignore_errors=True)


def cleanup_stale(pattern: str = DEFAULT_PATTERN) -> list[str]:
    """Remove what crashed earlier labs left: namespaces, their processes, work dirs.

    Considers namespaces whose names match the regex `pattern` (``<prefix>-...``)
    and state files in STATE_DIR. A lab counts as stale when its state file is
    missing (labs write it before creating any namespace) or names an owner
    process that is gone (different boot, PID gone or reused). Labs whose owner
    still runs are left alone. Returns the namespaces removed.
    """
    regex = re.compile(pattern)
    by_prefix: dict[str, list[str]] = {}
    for name in list_netns():
        if regex.search(name) and "-" in name:
            by_prefix.setdefault(name.split("-", 1)[0], []).append(name)
    states: dict[str, Path] = {}
    if STATE_DIR.is_dir():
        for state_file in STATE_DIR.glob("*.json"):
            if regex.search(state_file.stem + "-"):
                states[state_file.stem] = state_file
    removed: list[str] = []
    for prefix in sorted(set(by_prefix) | set(states)):
        if not prefix.startswith(PREFIX_START):
            continue
        state: dict[str, Any] = {}
        path = states.get(prefix)
        if path is not None:
            try:
                state = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # being written, or unreadable: leave it be
            if _owner_alive(state.get("owner", {})):
                continue
        names = sorted(
            set(by_prefix.get(prefix, [])) | {n for n in state.get("namespaces", []) if n.startswith(prefix + "-")}
        )
        names = [n for n in names if (NETNS_DIR / n).exists()]
        if state.get("owner", {}).get("boot_id") == _boot_id():
            _kill_recorded(state.get("pids", []))
        _kill_netns_processes(names)
        _delete_netns(names)
        removed += names
        _remove_workdir(state.get("workdir"), prefix)
        if path is not None:
            path.unlink(missing_ok=True)
    return removed


# --------------------------------------------------------------------------- model


@dataclass
class Network:
    """A bridge in the fabric namespace."""

    name: str
    bridge: str
    subnet: ipaddress.IPv4Network | None
    index: int


@dataclass
class Interface:
    """A host's interface on one network."""

    network: str
    ifname: str  #: name inside the host namespace
    peer: str  #: bridge port in the fabric namespace
    mac: str
    address: ipaddress.IPv4Interface | None  #: static address given at creation


class NetnsProcess(subprocess.Popen):
    """A Popen started in a lab namespace; the lab kills it at teardown."""

    netns: str
    log_path: Path | None
    start_time: int  #: in clock ticks since boot, as in /proc/PID/stat (tells PID reuse apart)

    def log(self) -> str:
        if self.log_path is None:
            return ""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


class Netns:
    """A namespace of the lab: run and spawn commands inside it."""

    def __init__(self, lab: Lab, name: str, netns: str):
        self.lab = lab
        self.name = name
        self.netns = netns

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} netns={self.netns}>"

    def command(self, cmd: Sequence[str]) -> list[str]:
        """`cmd` prefixed to run in this namespace."""
        if isinstance(cmd, str):
            raise TypeError("pass the command as a list of arguments")
        return ["ip", "netns", "exec", self.netns, *map(str, cmd)]

    def run(
        self,
        cmd: Sequence[str],
        *,
        check: bool = True,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        cwd: str | Path | None = None,
    ) -> subprocess.CompletedProcess:
        """Run `cmd` inside the namespace and wait (text output captured).

        check=True raises LabError with the output on a non-zero exit. On
        timeout the command's whole process group is killed.
        """
        self.lab._check_open()
        full = self.command(cmd)
        proc = subprocess.Popen(
            full,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            text=True,
            env=_env(env),
            cwd=cwd,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except BaseException:
            _killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        result = subprocess.CompletedProcess(list(map(str, cmd)), proc.returncode, out, err)
        if check and proc.returncode != 0:
            raise LabError(
                f"{self.name}: {' '.join(result.args)} exited {proc.returncode}\nstdout:\n{out}\nstderr:\n{err}"
            )
        return result

    def spawn(
        self,
        cmd: Sequence[str],
        *,
        log: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        stdin: int | IO[Any] | None = subprocess.DEVNULL,
        pass_fds: Sequence[int] = (),
    ) -> NetnsProcess:
        """Start `cmd` in the namespace, in a new session; the lab tracks and kills it.

        stdout and stderr go to `log` (appended), by default a file in the
        lab's work dir (see ``process.log_path`` / ``process.log()``). `env`
        is added to this process's environment.
        """
        self.lab._check_open()
        if log is None:
            base = Path(str(cmd[0])).name or "proc"
            log = self.lab.workdir / "logs" / f"{self.name}-{base}-{self.lab._next_id()}.log"
        log = Path(log)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            proc = NetnsProcess(
                self.command(cmd),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=stdin,
                env=_env(env),
                cwd=cwd,
                start_new_session=True,
                pass_fds=tuple(pass_fds),
            )
        proc.netns = self.netns
        proc.log_path = log
        proc.start_time = (_proc_stat(proc.pid) or ("", 0))[1]
        self.lab._track(proc)
        return proc

    def kill(self, proc: subprocess.Popen, sig: int = signal.SIGKILL, wait: float | None = 10.0) -> None:
        """Send `sig` to `proc`'s process group; for SIGKILL, reap it (waiting up to `wait`)."""
        if proc.poll() is None:
            _killpg(proc.pid, sig)
            if sig == signal.SIGKILL and wait is not None:
                proc.wait(wait)

    def stop(self, proc: subprocess.Popen, timeout: float = 5.0) -> int | None:
        """SIGTERM to `proc`'s group, SIGKILL after `timeout`; returns its exit status."""
        if proc.poll() is None:
            _killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        return proc.returncode

    def pids(self) -> list[int]:
        """Live processes inside this namespace (tracked or not)."""
        return sorted(pid for pid in netns_pids([self.netns]) if pid_alive(pid))

    def sysctl(self, key: str, value: str | int) -> None:
        """Set a per-namespace sysctl (``net.*``) inside this namespace."""
        self.run(["sysctl", "-q", "-w", f"{key}={value}"])


class Fabric(Netns):
    """The namespace holding the bridges (and TAP devices for VMs)."""


class Host(Netns):
    """A lab host: its own namespace, one interface per network it is on."""

    def __init__(self, lab: Lab, name: str, netns: str, index: int):
        super().__init__(lab, name, netns)
        self.index = index
        self.interfaces: dict[str, Interface] = {}

    def interface(self, network: str) -> Interface:
        try:
            return self.interfaces[network]
        except KeyError:
            raise KeyError(f"host {self.name} is not on network {network!r}") from None

    def ifname(self, network: str) -> str:
        """The interface's name inside this host's namespace."""
        return self.interface(network).ifname

    def mac(self, network: str) -> str:
        return self.interface(network).mac

    def ip(self, network: str) -> str:
        """The static address given at creation, without prefix length ("10.50.0.2")."""
        address = self.interface(network).address
        if address is None:
            raise LabError(f"{self.name} has no static address on {network}; see addresses()")
        return str(address.ip)

    def addresses(self, network: str) -> list[ipaddress.IPv4Interface]:
        """The IPv4 addresses the interface has now (static or from DHCP)."""
        out = self.run(["ip", "-j", "-4", "addr", "show", "dev", self.ifname(network)]).stdout
        return [
            ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}")
            for link in json.loads(out or "[]")
            for a in link.get("addr_info", [])
            if a.get("scope") == "global"
        ]

    def add_address(self, network: str, address: str) -> None:
        self.run(["ip", "addr", "add", address, "dev", self.ifname(network)])

    def add_route(self, destination: str, via: str) -> None:
        """A route in this host's namespace only (e.g. "default" via a lab router)."""
        self.run(["ip", "route", "replace", destination, "via", via])

    def set_link(self, network: str, up: bool) -> None:
        """Plug or unplug the "cable": the bridge-side end of the veth goes up/down."""
        _ip(["link", "set", self.interface(network).peer, "up" if up else "down"], netns=self.lab.fabric.netns)

    # DHCP clients (see tests.support.dhcp_clients)

    def start_udhcpc(
        self,
        network: str,
        *,
        timeout: float = 20.0,
        once: bool = False,
        set_route: bool = False,
        extra_args: Sequence[str] = (),
    ) -> DhcpClient:
        """A running busybox udhcpc on `network` (keeps renewing unless once=True)."""
        return dhcp_clients.start_udhcpc(
            self, network, timeout=timeout, once=once, set_route=set_route, extra_args=extra_args
        )

    def start_dhclient(
        self,
        network: str,
        *,
        timeout: float = 20.0,
        once: bool = False,
        set_route: bool = False,
        config: str = "",
        extra_args: Sequence[str] = (),
    ) -> DhcpClient:
        """A running ISC dhclient on `network` (keeps renewing until stopped)."""
        return dhcp_clients.start_dhclient(
            self, network, timeout=timeout, once=once, set_route=set_route, config=config, extra_args=extra_args
        )

    def start_dhclient6(self, network: str, *, timeout: float = 20.0) -> DhcpClient:
        """A running ISC dhclient -6 on `network` (an IPv6 address from DHCPv6)."""
        return dhcp_clients.start_dhclient6(self, network, timeout=timeout)

    def dhcp_udhcpc(
        self,
        network: str,
        *,
        timeout: float = 20.0,
        keep: bool = False,
        set_route: bool = False,
        extra_args: Sequence[str] = (),
    ) -> Lease:
        """Get a lease with udhcpc (``-q``: it exits; the address stays on the
        interface), or keep it running with keep=True. Raises TimeoutError."""
        client = self.start_udhcpc(network, timeout=timeout, once=not keep, set_route=set_route, extra_args=extra_args)
        return dhcp_clients.one_lease(client, timeout + 5, keep)

    def dhcp_dhclient(
        self,
        network: str,
        *,
        timeout: float = 20.0,
        keep: bool = False,
        set_route: bool = False,
        config: str = "",
        extra_args: Sequence[str] = (),
    ) -> Lease:
        """Get a lease with dhclient; stops it afterwards (SIGTERM: no release, the
        address stays on the interface) unless keep=True."""
        client = self.start_dhclient(
            network, timeout=timeout, once=True, set_route=set_route, config=config, extra_args=extra_args
        )
        return dhcp_clients.one_lease(client, timeout + 5, keep)


def _env(extra: Mapping[str, str] | None) -> dict[str, str] | None:
    if not extra:
        return None
    return {**os.environ, **{k: str(v) for k, v in extra.items()}}


def _killpg(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# --------------------------------------------------------------------------- the lab

_LIVE: dict[str, Lab] = {}
_LIVE_LOCK = threading.Lock()


@atexit.register
def _close_live_labs() -> None:
    for lab in list(_LIVE.values()):
        if lab.owner_pid == os.getpid():
            try:
                lab.close()
            except Exception:  # best effort at exit
                pass


@dataclass
class Timings:
    """Wall-clock seconds spent building and tearing down (for reports)."""

    start: float = 0.0
    build: float = 0.0
    teardown: float = 0.0


class Lab:
    """A set of namespaces, bridges and veths, and the processes run in them.

    prefix: ``mpl`` + 2..9 lowercase letters/digits; random when None.
    workdir_base: where the lab's work dir (logs, client scripts) goes.
    keep_workdir: leave the work dir after teardown (also METALPLANE_NETLAB_KEEP=1).
    clean_stale: run :func:`cleanup_stale` first.
    grace: seconds between SIGTERM and SIGKILL for tracked processes at teardown.
    """

    def __init__(
        self,
        prefix: str | None = None,
        *,
        workdir_base: str | Path | None = None,
        keep_workdir: bool = False,
        clean_stale: bool = True,
        grace: float = 1.0,
    ):
        if prefix is not None and not PREFIX_RE.match(prefix):
            raise ValueError(f"lab prefix must match {PREFIX_RE.pattern}: {prefix!r}")
        self._requested_prefix = prefix
        self.prefix = prefix or ""
        self.workdir_base = Path(workdir_base) if workdir_base else Path(tempfile.gettempdir())
        self.keep_workdir = keep_workdir or os.environ.get("METALPLANE_NETLAB_KEEP") == "1"
        self.clean_stale = clean_stale
        self.grace = grace
        self.owner_pid = os.getpid()
        self.networks: dict[str, Network] = {}
        self.hosts: dict[str, Host] = {}
        self.taps: dict[str, str] = {}  # tap name -> network
        self.namespaces: list[str] = []  # every namespace created, in order
        self.processes: list[NetnsProcess] = []
        self.fabric: Fabric
        self.workdir: Path
        self.timings = Timings()
        self._counter = 0
        self._lock = threading.RLock()
        self._state_path: Path | None = None
        self._started = False
        self._closed = False

    # lifecycle

    def __enter__(self) -> Lab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> Lab:
        """Claim a prefix, write the state file, create the fabric namespace."""
        if self._started:
            raise LabError("lab already started")
        t0 = time.monotonic()
        if self.clean_stale:
            cleanup_stale()
        STATE_DIR.mkdir(mode=0o700, exist_ok=True)
        self._started = True
        with _LIVE_LOCK:
            self._claim_prefix()
            _LIVE[self.prefix] = self
        try:
            self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-", dir=self.workdir_base))
            self._save_state()
            ns = f"{self.prefix}-{FABRIC}"
            self._add_netns(ns)
            self.fabric = Fabric(self, FABRIC, ns)
            _ip([], netns=ns, batch=["link set lo up"])
        except BaseException:
            self.close()
            raise
        self.timings.start = time.monotonic() - t0
        return self

    def _claim_prefix(self) -> None:
        owner = {"pid": self.owner_pid, "start": (_proc_stat(self.owner_pid) or ("", 0))[1], "boot_id": _boot_id()}
        for _ in range(20):
            prefix = self._requested_prefix or PREFIX_START + "".join(secrets.choice(_ALPHABET) for _ in range(5))
            if any(n.startswith(prefix + "-") for n in list_netns()):
                if self._requested_prefix:
                    raise LabError(f"namespaces with prefix {prefix} exist and belong to a live lab")
                continue
            path = STATE_DIR / f"{prefix}.json"
            try:
                _write_json_atomic(
                    path,
                    {"prefix": prefix, "owner": owner, "namespaces": [], "pids": [], "workdir": None},
                    exclusive=True,
                )
            except FileExistsError:
                if self._requested_prefix:
                    raise LabError(f"lab prefix {prefix} is in use ({path})") from None
                continue
            self.prefix = prefix
            self._state_path = path
            self._owner = owner
            return
        raise LabError("could not find a free lab prefix")

    def _save_state(self) -> None:
        if self._state_path is None:
            return
        _write_json_atomic(
            self._state_path,
            {
                "prefix": self.prefix,
                "owner": self._owner,
                "namespaces": list(self.namespaces),
                "pids": [[p.pid, p.start_time] for p in self.processes],
                "workdir": str(getattr(self, "workdir", "")) or None,
            },
        )

    def _check_open(self) -> None:
        if not self._started or self._closed:
            raise LabError("lab is not running (use `with Lab() as lab:` or lab.start())")
        if os.getpid() != self.owner_pid:
            raise LabError("lab used from a forked process")

    def _next_id(self) -> int:
        with self._lock:
            self._counter += 1
            return self._counter

    def _add_netns(self, name: str) -> None:
        # Record first: if `ip netns add` half-succeeds, teardown still removes it.
        self.namespaces.append(name)
        self._save_state()
        _ip(["netns", "add", name])

    def _track(self, proc: NetnsProcess) -> None:
        with self._lock:
            self.processes.append(proc)
            self._save_state()

    def new_workdir(self, name: str) -> Path:
        """A fresh directory under the lab's work dir."""
        self._check_open()
        path = self.workdir / f"{name}-{self._next_id()}"
        path.mkdir(parents=True)
        return path

    # building

    def add_network(self, name: str, subnet: str | None = None) -> Network:
        """A bridge ``br-<name>`` in the fabric namespace; `subnet` is informational
        (static host addresses without a prefix length take its length)."""
        self._check_open()
        t0 = time.monotonic()
        if not NETWORK_RE.match(name) or name == "lo":
            raise ValueError(f"network name must match {NETWORK_RE.pattern}: {name!r}")
        if name in self.networks:
            raise ValueError(f"network {name} exists")
        bridge = f"br-{name}"
        _ip(
            [],
            netns=self.fabric.netns,
            batch=[
                f"link add {bridge} type bridge stp_state 0 forward_delay 0 mcast_snooping 0",
                f"link set {bridge} up",
            ],
        )
        net = Network(name, bridge, ipaddress.IPv4Network(subnet) if subnet else None, len(self.networks))
        self.networks[name] = net
        self.timings.build += time.monotonic() - t0
        return net

    def add_host(self, name: str, networks: Mapping[str, str | None], *, macs: Mapping[str, str] | None = None) -> Host:
        """A host namespace ``<prefix>-<name>`` with ``lo`` up and an interface per network.

        networks: {network: "10.50.0.2/24" | "10.50.0.2" | None}; None leaves the
        interface up without an address (for DHCP clients).
        macs: optional {network: "02:..."}; otherwise the kernel picks random ones.
        """
        self._check_open()
        t0 = time.monotonic()
        if not HOST_RE.match(name) or name == FABRIC:
            raise ValueError(f"host name must match {HOST_RE.pattern} and not be {FABRIC!r}: {name!r}")
        if name in self.hosts:
            raise ValueError(f"host {name} exists")
        for wanted in networks:
            if wanted not in self.networks:
                raise KeyError(f"no network {wanted!r}; add_network() first")
        for wanted in macs or {}:
            if wanted not in networks:
                raise KeyError(f"mac given for {wanted!r}, which host {name} is not on")
        index = len(self.hosts) + 1
        netns = f"{self.prefix}-{name}"
        host = Host(self, name, netns, index)
        self._add_netns(netns)
        self.hosts[name] = host
        fabric_cmds: list[str] = []
        host_cmds = ["link set lo up"]
        for net_name, spec in networks.items():
            net = self.networks[net_name]
            peer, ifname = f"v{index}-{net_name}", net_name
            assert len(peer) < IFNAMSIZ and len(ifname) < IFNAMSIZ
            mac = (macs or {}).get(net_name)
            mac_arg = f" address {mac}" if mac else ""
            fabric_cmds += [
                f"link add {peer} type veth peer name {ifname}{mac_arg} netns {netns}",
                f"link set {peer} master {net.bridge} up",
            ]
            address = _parse_address(spec, net)
            if address is not None:
                host_cmds.append(f"addr add {address.with_prefixlen} dev {ifname}")
            host_cmds.append(f"link set {ifname} up")
            host.interfaces[net_name] = Interface(net_name, ifname, peer, mac or "", address)
        _ip([], netns=self.fabric.netns, batch=fabric_cmds)
        _ip([], netns=netns, batch=host_cmds)
        if any(not i.mac for i in host.interfaces.values()):
            links = json.loads(_ip(["-j", "link", "show"], netns=netns).stdout)
            by_name = {link["ifname"]: link.get("address", "") for link in links}
            for iface in host.interfaces.values():
                iface.mac = iface.mac or by_name.get(iface.ifname, "")
        self.timings.build += time.monotonic() - t0
        return host

    def add_tap(self, network: str, name: str | None = None, *, mac: str | None = None) -> str:
        """A persistent TAP device in the fabric namespace, a port of `network`'s bridge.

        For a VM run in the fabric namespace, e.g.
        ``lab.fabric.spawn(["qemu-system-x86_64", "-accel", "tcg", "-boot", "n",
        "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no",
        "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56", ...])``.
        `mac` sets the TAP's own address (not the VM's). Returns the TAP's name.
        """
        self._check_open()
        if network not in self.networks:
            raise KeyError(f"no network {network!r}")
        name = name or f"t{len(self.taps) + 1}-{network}"
        if len(name) >= IFNAMSIZ:
            raise ValueError(f"interface name too long: {name}")
        cmds = [f"tuntap add dev {name} mode tap"]
        if mac:
            cmds.append(f"link set {name} address {mac}")
        cmds.append(f"link set {name} master {self.networks[network].bridge} up")
        _ip([], netns=self.fabric.netns, batch=cmds)
        self.taps[name] = network
        return name

    # teardown

    def close(self) -> None:
        """Kill every process, delete every namespace and the work dir. Idempotent."""
        with self._lock:
            if self._closed or not self._started:
                return
            if os.getpid() != self.owner_pid:
                return
            t0 = time.monotonic()
            errors: list[str] = []
            # 1. tracked process groups: SIGTERM, then SIGKILL after the grace period.
            live = [p for p in self.processes if p.poll() is None]
            for p in live:
                _killpg(p.pid, signal.SIGTERM)
            deadline = time.monotonic() + self.grace
            for p in live:
                try:
                    p.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    _killpg(p.pid, signal.SIGKILL)
            for p in live:
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    errors.append(f"process {p.pid} did not die")
            # 2. anything else still inside the lab's namespaces.
            try:
                _kill_netns_processes(self.namespaces)
            except LabError as e:
                errors.append(str(e))
            # 3. the namespaces (their interfaces, bridges, taps go with them).
            try:
                _delete_netns(self.namespaces)
            except LabError as e:
                errors.append(str(e))
            self._closed = True
            if not errors:
                if not self.keep_workdir and getattr(self, "workdir", None):
                    shutil.rmtree(self.workdir, ignore_errors=True)
                if self._state_path is not None:
                    self._state_path.unlink(missing_ok=True)
            with _LIVE_LOCK:
                _LIVE.pop(self.prefix, None)
            self.timings.teardown = time.monotonic() - t0
            if errors:
                # The state file stays, so the next lab's cleanup_stale() retries.
                raise LabError("lab teardown incomplete: " + "; ".join(errors))


def _parse_address(spec: str | None, net: Network) -> ipaddress.IPv4Interface | None:
    if spec is None:
        return None
    if "/" not in spec:
        if net.subnet is None:
            raise ValueError(f"address {spec} needs a prefix length (network {net.name} has no subnet)")
        spec = f"{spec}/{net.subnet.prefixlen}"
    address = ipaddress.IPv4Interface(spec)
    if net.subnet is not None and address.ip not in net.subnet:
        raise ValueError(f"{spec} is not in network {net.name} ({net.subnet})")
    return address
