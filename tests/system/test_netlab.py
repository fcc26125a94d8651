"""The network lab: hosts in namespaces that reach each other and nothing else,
real DHCP clients against a real kea-dhcp4, and teardown that leaves nothing."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import netlab
from tests.support.netlab import Host, Lab, LabError, cleanup_stale, list_netns, pid_alive

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]

REPO = Path(__file__).resolve().parents[2]


def lab_namespaces(prefix: str) -> list[str]:
    return [n for n in list_netns() if n.startswith(prefix + "-")]


def root_links() -> set[str]:
    """Interface names in the machine's own namespace (read only)."""
    out = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True, check=True).stdout
    return {link["ifname"] for link in json.loads(out)}


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)
    return result


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab() as lab:
        yield lab
    assert lab_namespaces(lab.prefix) == []


def ping(host: Host, ip: str) -> subprocess.CompletedProcess:
    return host.run(["busybox", "ping", "-c", "1", "-W", "1", ip], check=False, timeout=10)


# --------------------------------------------------------------------------- connectivity


def test_hosts_on_a_network_reach_each_other_and_only_it(lab: Lab):
    links_before = root_links()
    lab.add_network("pxe", "10.50.0.0/24")
    lab.add_network("bmc", "10.51.0.0/24")
    rack1 = lab.add_host("rack1", {"pxe": "10.50.0.2/24", "bmc": "10.51.0.2/24"})
    node = lab.add_host("node1", {"pxe": "10.50.0.10"}, macs={"pxe": "52:54:00:aa:bb:01"})
    bmc = lab.add_host("bmc1", {"bmc": "10.51.0.10/24"})

    assert lab.namespaces == [
        f"{lab.prefix}-fabric",
        f"{lab.prefix}-rack1",
        f"{lab.prefix}-node1",
        f"{lab.prefix}-bmc1",
    ]
    assert sorted(lab_namespaces(lab.prefix)) == sorted(lab.namespaces)
    assert root_links() == links_before, "the lab put an interface in the machine's namespace"

    assert rack1.ifname("pxe") == "pxe" and rack1.ip("bmc") == "10.51.0.2"
    assert node.mac("pxe") == "52:54:00:aa:bb:01"
    assert len({rack1.mac("pxe"), rack1.mac("bmc"), node.mac("pxe"), bmc.mac("bmc")}) == 4
    links = json.loads(node.run(["ip", "-j", "link", "show", "pxe"]).stdout)
    assert links[0]["address"] == "52:54:00:aa:bb:01" and "UP" in links[0]["flags"]
    assert node.addresses("pxe") == [netlab.ipaddress.IPv4Interface("10.50.0.10/24")]
    assert "UP" in json.loads(node.run(["ip", "-j", "link", "show", "lo"]).stdout)[0]["flags"]

    assert ping(rack1, "10.50.0.10").returncode == 0
    assert ping(node, "10.50.0.2").returncode == 0
    assert ping(bmc, "10.51.0.2").returncode == 0
    assert ping(rack1, "10.51.0.10").returncode == 0
    # No route between networks: node1 (pxe only) cannot reach bmc1 (bmc only).
    assert ping(node, "10.51.0.10").returncode != 0
    assert ping(bmc, "10.50.0.10").returncode != 0

    # Unplugging the cable cuts the host off; plugging it back restores it.
    node.set_link("pxe", up=False)
    assert ping(rack1, "10.50.0.10").returncode != 0
    node.set_link("pxe", up=True)
    wait_for(lambda: ping(rack1, "10.50.0.10").returncode == 0, 10, "link back")


def test_a_host_binds_its_address_and_serves_another(lab: Lab):
    lab.add_network("pxe", "10.50.0.0/24")
    server = lab.add_host("server", {"pxe": "10.50.0.2/24"})
    client = lab.add_host("client", {"pxe": "10.50.0.3/24"})
    code = (
        "import socket; s = socket.socket(); s.bind(('10.50.0.2', 8080)); s.listen(); print('ready', flush=True);"
        "c, a = s.accept(); c.sendall(('hello ' + a[0]).encode()); c.close()"
    )
    proc = server.spawn([sys.executable, "-c", code])
    wait_for(lambda: "ready" in proc.log(), 10, "listener")
    reply = client.run(
        [
            sys.executable,
            "-c",
            "import socket; s = socket.create_connection(('10.50.0.2', 8080), 5);print(s.recv(100).decode())",
        ]
    ).stdout
    assert reply.strip() == "hello 10.50.0.3"
    assert proc.wait(5) == 0


def test_a_host_cannot_reach_the_machine_namespace(lab: Lab):
    lab.add_network("pxe", "10.50.0.0/24")
    host = lab.add_host("h1", {"pxe": "10.50.0.2/24"})
    # The machine's own addresses (read, never changed).
    out = subprocess.run(["ip", "-j", "-4", "addr", "show"], capture_output=True, text=True, check=True).stdout
    machine_ips = [
        a["local"] for link in json.loads(out) for a in link["addr_info"] if not a["local"].startswith("127.")
    ]
    routes = json.loads(host.run(["ip", "-j", "-4", "route", "show"]).stdout)
    assert [r["dst"] for r in routes] == ["10.50.0.0/24"], routes
    for ip in machine_ips:
        assert ping(host, ip).returncode != 0, f"lab host reached the machine's {ip}"
        unreachable = host.run(["ip", "route", "get", ip], check=False)
        assert unreachable.returncode != 0 and "unreachable" in unreachable.stderr
    # A listener on the machine's loopback is not the host's loopback.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        port = listener.getsockname()[1]
        probe = host.run(
            [sys.executable, "-c", f"import socket; socket.create_connection(('127.0.0.1', {port}), 2)"], check=False
        )
        assert probe.returncode != 0 and "ConnectionRefusedError" in probe.stderr
    finally:
        listener.close()


# --------------------------------------------------------------------------- teardown


def _spawn_victims(lab: Lab, tmp: Path) -> tuple[list[int], int]:
    """A tracked sleeper, and a daemon that left its process group (found via the netns)."""
    lab.add_network("pxe", "10.50.0.0/24")
    host = lab.add_host("h1", {"pxe": "10.50.0.2/24"})
    sleeper = host.spawn(["sleep", "1000"])
    pidfile = tmp / "escaped.pid"
    parent = host.spawn(["sh", "-c", f"setsid sleep 1001 & echo $! > {pidfile}; exec sleep 1002"])
    escaped = wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 10, "escaped pid")
    escaped_pid = int(escaped)
    wait_for(lambda: os.getpgid(escaped_pid) != parent.pid, 10, "setsid")  # (setsid runs after the fork)
    assert set(host.pids()) >= {sleeper.pid, parent.pid, escaped_pid}
    return [sleeper.pid, parent.pid, escaped_pid], escaped_pid


def _assert_gone(lab: Lab, pids: list[int]) -> None:
    assert lab_namespaces(lab.prefix) == []
    assert [p for p in pids if pid_alive(p)] == []
    assert not lab.workdir.exists()
    assert not (netlab.STATE_DIR / f"{lab.prefix}.json").exists()


def test_teardown_kills_processes_and_removes_namespaces(tmp_path: Path):
    with Lab() as lab:
        pids, _ = _spawn_victims(lab, tmp_path)
        assert (netlab.STATE_DIR / f"{lab.prefix}.json").exists()
        state = json.loads((netlab.STATE_DIR / f"{lab.prefix}.json").read_text())
        assert state["namespaces"] == lab.namespaces and {pid for pid, _ in state["pids"]} <= set(pids)
    _assert_gone(lab, pids)
    assert lab.timings.teardown < 5
    lab.close()  # idempotent
    with pytest.raises(LabError):
        lab.add_network("late")


def test_teardown_runs_when_the_body_raises(tmp_path: Path):
    with pytest.raises(ZeroDivisionError):
        with Lab() as lab:
            pids, _ = _spawn_victims(lab, tmp_path)
            raise ZeroDivisionError  # the body fails
    _assert_gone(lab, pids)


def test_teardown_kills_processes_that_ignore_sigterm():
    with Lab(grace=0.3) as lab:
        lab.add_network("pxe")
        host = lab.add_host("h1", {"pxe": None})
        stubborn = host.spawn(["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done"])
        wait_for(lambda: "ready" in stubborn.log(), 10, "trap set")
    assert stubborn.returncode == -signal.SIGKILL
    assert lab_namespaces(lab.prefix) == []


CRASHING_LAB = """
import json, os, signal, sys, time
from tests.support.netlab import Lab
lab = Lab().start()
lab.add_network("pxe", "10.50.0.0/24")
host = lab.add_host("h1", {"pxe": "10.50.0.2/24"})
sleeper = host.spawn(["sleep", "1000"])
# The owner dies right after these: some may not be inside the namespace yet.
others = [host.spawn(["sleep", "1000"]).pid for _ in range(4)]
print(json.dumps({"prefix": lab.prefix, "pid": sleeper.pid, "others": others, "workdir": str(lab.workdir)}),
      flush=True)
if sys.argv[1] == "crash":
    os.kill(os.getpid(), signal.SIGKILL)
elif sys.argv[1] == "exit":
    sys.exit(0)          # no close(): the atexit hook tears the lab down
else:
    time.sleep(1000)     # stays alive: its lab must survive other labs' cleanup
"""


def _run_lab_script(mode: str) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHING_LAB, mode], stdout=subprocess.PIPE, text=True, cwd=REPO, start_new_session=True
    )
    line = proc.stdout.readline()
    assert line, "lab script printed nothing"
    return proc, json.loads(line)


def test_cleanup_stale_removes_a_crashed_lab_only():
    alive, alive_info = _run_lab_script("live")
    try:
        # (Started second, else the live lab's own start would clean the crashed one up.)
        crashed, info = _run_lab_script("crash")
        assert crashed.wait(30) == -signal.SIGKILL
        assert len(lab_namespaces(info["prefix"])) == 2 and pid_alive(info["pid"])
        assert len(lab_namespaces(alive_info["prefix"])) == 2

        removed = cleanup_stale()
        # (A parallel test run may remove this crashed lab first, or have crashed ones of
        # its own for `removed`; the live lab is never among them.)
        assert not [n for n in removed if n.startswith(alive_info["prefix"] + "-")]
        assert lab_namespaces(info["prefix"]) == [] and not pid_alive(info["pid"])
        assert [p for p in info["others"] if pid_alive(p)] == []
        assert not Path(info["workdir"]).exists()
        assert not (netlab.STATE_DIR / f"{info['prefix']}.json").exists()
        # The other lab's owner still runs: untouched.
        assert len(lab_namespaces(alive_info["prefix"])) == 2 and pid_alive(alive_info["pid"])
        assert cleanup_stale(pattern=f"^{alive_info['prefix']}-") == []
    finally:
        os.kill(alive.pid, signal.SIGKILL)
        alive.wait(30)
    # Its owner is gone now, so a new lab's start cleans it up.
    with Lab() as lab:
        assert lab_namespaces(alive_info["prefix"]) == [] and not pid_alive(alive_info["pid"])
        assert [p for p in alive_info["others"] if pid_alive(p)] == []
        assert lab_namespaces(lab.prefix) == [f"{lab.prefix}-fabric"]


def test_interpreter_exit_tears_down_an_unclosed_lab():
    proc, info = _run_lab_script("exit")
    assert proc.wait(30) == 0
    assert lab_namespaces(info["prefix"]) == [] and not pid_alive(info["pid"])
    assert [p for p in info["others"] if pid_alive(p)] == []
    assert not Path(info["workdir"]).exists()


def test_two_labs_at_once_do_not_clash():
    with Lab() as one, Lab() as two:
        assert one.prefix != two.prefix
        hosts = []
        for lab in (one, two):
            lab.add_network("pxe", "10.50.0.0/24")
            a = lab.add_host("rack1", {"pxe": "10.50.0.2/24"})
            b = lab.add_host("node1", {"pxe": "10.50.0.3/24"})
            hosts.append((a, b))
        assert not set(one.namespaces) & set(two.namespaces)
        for a, _b in hosts:
            assert ping(a, "10.50.0.3").returncode == 0
        # Same addresses, separate wires: a listener in lab one is not seen from lab two.
        (a1, _), (_, b2) = hosts
        proc = a1.spawn(
            [
                sys.executable,
                "-c",
                "import socket, time; s = socket.socket(); s.bind(('10.50.0.2', 9000)); s.listen(); time.sleep(60)",
            ]
        )
        wait_for(lambda: "10.50.0.2:9000" in a1.run(["ss", "-Htln"]).stdout, 10, "listener")
        probe = b2.run(
            [sys.executable, "-c", "import socket; socket.create_connection(('10.50.0.2', 9000), 2)"], check=False
        )
        assert probe.returncode != 0
        one.close()
        assert lab_namespaces(one.prefix) == [] and not pid_alive(proc.pid)
        assert ping(hosts[1][0], "10.50.0.3").returncode == 0
    assert lab_namespaces(two.prefix) == []


def test_prefixes_and_names_are_checked():
    with pytest.raises(ValueError):
        Lab(prefix="lab1")
    with pytest.raises(ValueError):
        Lab(prefix="mpl-with-dash")
    prefix = f"mplt{os.getpid()}"  # fixed, yet unique to this test run
    with Lab(prefix=prefix) as lab:
        assert lab.namespaces == [f"{prefix}-fabric"]
        with pytest.raises(LabError):
            Lab(prefix=prefix).start()  # taken by a live lab
        assert lab_namespaces(prefix) == [f"{prefix}-fabric"]
        with pytest.raises(ValueError):
            lab.add_network("averyveryverylongname")
        lab.add_network("pxe", "10.50.0.0/24")
        with pytest.raises(ValueError):
            lab.add_host("h1", {"pxe": "10.60.0.2/24"})  # outside the network
        with pytest.raises(KeyError):
            lab.add_host("h2", {"nope": None})
        with pytest.raises(ValueError):
            lab.add_host("fabric", {"pxe": None})


def test_tap_device_is_a_bridge_port_in_the_fabric(lab: Lab):
    lab.add_network("pxe", "10.50.0.0/24")
    tap = lab.add_tap("pxe", mac="02:00:00:00:00:aa")
    links = json.loads(lab.fabric.run(["ip", "-j", "-d", "link", "show", tap]).stdout)
    assert links[0]["master"] == "br-pxe"
    assert links[0]["linkinfo"]["info_kind"] == "tun"
    assert links[0]["address"] == "02:00:00:00:00:aa"
    assert tap not in root_links()


# --------------------------------------------------------------------------- DHCP clients vs kea


def start_kea(lab: Lab, host: Host, network: str, pool: str, lifetime: int = 600):
    """A minimal kea-dhcp4 serving `network`'s subnet from `host`; waits until it serves."""
    subnet = str(lab.networks[network].subnet)
    work = lab.new_workdir(f"kea-{host.name}")
    config = {
        "Dhcp4": {
            "interfaces-config": {"interfaces": [host.ifname(network)], "dhcp-socket-type": "raw"},
            "lease-database": {
                "type": "memfile",
                "persist": True,
                "name": str(work / "leases4.csv"),
                "lfc-interval": 0,
            },
            "valid-lifetime": lifetime,
            "subnet4": [
                {
                    "id": 1,
                    "subnet": subnet,
                    "pools": [{"pool": pool}],
                    "option-data": [
                        {"name": "routers", "data": host.ip(network)},
                        {"name": "domain-name-servers", "data": "10.50.0.53"},
                        {"name": "domain-name", "data": "lab.invalid"},
                    ],
                }
            ],
            "loggers": [{"name": "kea-dhcp4", "output_options": [{"output": "stdout"}], "severity": "INFO"}],
        }
    }
    (work / "kea-dhcp4.json").write_text(json.dumps(config))
    proc = host.spawn(
        ["kea-dhcp4", "-c", str(work / "kea-dhcp4.json")],
        env={"KEA_PIDFILE_DIR": str(work), "KEA_LOCKFILE_DIR": str(work)},
    )
    wait_for(lambda: "DHCP4_STARTED" in proc.log() or proc.poll() is not None, 20, "kea start")
    assert proc.poll() is None, proc.log()
    return proc, work


def _files_state(*paths: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out[p] = sorted(os.listdir(path))
        elif path.exists():
            st = path.stat()
            out[p] = (path.read_bytes(), st.st_ino, st.st_mtime_ns)
        else:
            out[p] = None
    return out


WATCHED = ("/etc/resolv.conf", "/var/lib/dhcp", "/etc/dhcp")


def test_udhcpc_and_dhclient_get_leases_from_kea(lab: Lab):
    before = _files_state(*WATCHED)
    lab.add_network("pxe", "10.50.0.0/24")
    server = lab.add_host("dhcp", {"pxe": "10.50.0.2/24"})
    c1 = lab.add_host("client1", {"pxe": None})
    c2 = lab.add_host("client2", {"pxe": None})
    _kea, work = start_kea(lab, server, "pxe", "10.50.0.100 - 10.50.0.150")

    lease1 = c1.dhcp_udhcpc("pxe", timeout=15)
    assert lease1.client == "udhcpc" and lease1.event == "bound"
    assert lease1.server_id == "10.50.0.2" and lease1.routers == ("10.50.0.2",)
    assert lease1.prefixlen == 24 and lease1.lease_time == 600
    assert 100 <= int(lease1.ip.rsplit(".", 1)[1]) <= 150
    assert c1.addresses("pxe") == [lease1.address]

    lease2 = c2.dhcp_dhclient("pxe", timeout=15)
    assert lease2.client == "dhclient" and lease2.event == "BOUND"
    assert lease2.server_id == "10.50.0.2" and lease2.routers == ("10.50.0.2",)
    assert lease2.prefixlen == 24 and lease2.ip != lease1.ip
    assert c2.addresses("pxe") == [lease2.address]

    # The leases work as addresses, and the server recorded both clients by MAC.
    assert ping(c1, lease2.ip).returncode == 0 and ping(server, lease1.ip).returncode == 0
    leases_csv = (work / "leases4.csv").read_text()
    assert f"{lease1.ip},{c1.mac('pxe')}" in leases_csv and f"{lease2.ip},{c2.mac('pxe')}" in leases_csv
    # No route was set unless asked; DNS options were received but written nowhere.
    assert json.loads(c1.run(["ip", "-j", "route", "show", "default"]).stdout) == []
    assert lease1.env.get("dns") == "10.50.0.53" and lease2.env.get("new_domain_name_servers") == "10.50.0.53"
    assert _files_state(*WATCHED) == before


def test_running_clients_renew_and_set_routes(lab: Lab):
    before = _files_state(*WATCHED)
    lab.add_network("pxe", "10.50.0.0/24")
    server = lab.add_host("dhcp", {"pxe": "10.50.0.2/24"})
    c1 = lab.add_host("client1", {"pxe": None})
    c2 = lab.add_host("client2", {"pxe": None})
    start_kea(lab, server, "pxe", "10.50.0.100 - 10.50.0.150", lifetime=600)

    u = c1.start_udhcpc("pxe", set_route=True)
    d = c2.start_dhclient("pxe", set_route=True)
    first_u, first_d = u.wait_lease(15), d.wait_lease(15)
    for host, lease in ((c1, first_u), (c2, first_d)):
        routes = json.loads(host.run(["ip", "-j", "route", "show", "default"]).stdout)
        assert routes and routes[0]["gateway"] == "10.50.0.2", routes
        assert host.addresses("pxe") == [lease.address]
    # udhcpc renews on SIGUSR1 and keeps the address.
    c1.kill(u.process, signal.SIGUSR1)
    renewed = u.wait_lease(15, after=1)
    assert renewed.event == "renew" and renewed.ip == first_u.ip
    assert u.running() and d.running()
    u.stop()
    d.stop()
    assert _files_state(*WATCHED) == before


def test_dhcp_client_without_server_times_out(lab: Lab):
    lab.add_network("pxe", "10.50.0.0/24")
    client = lab.add_host("client1", {"pxe": None})
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        client.dhcp_udhcpc("pxe", timeout=2)
    assert time.monotonic() - started < 10
    assert client.addresses("pxe") == []
