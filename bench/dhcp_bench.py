"""kea-dhcp4 as metalplane runs it, against bare Kea, in one run; plus HA failover time.

    .venv/bin/python bench/dhcp_bench.py [--duration 5] [--failovers 5] [--write docs/benchmarks.md]

Everything runs in network namespaces (tests.support.netlab) on one bridge:
``rack1`` (10.50.0.2) and ``rack2`` (10.50.0.3) run Kea, ``perf`` (10.50.0.10) runs
perfdhcp, which relays (giaddr = its address) DORA exchanges for up to 60,000
random MACs into a 10.50.0.0/16 subnet with a 65,000-address pool.

Servers, each started fresh (empty lease file):

a.  bare kea-dhcp4, minimal hand-written config (Kea's defaults: single-threaded),
    memfile with persistence;
b.  metalplane's generated standalone config (DhcpService: multi-threading,
    lease_cmds, boot client classes, reservations, options);
c1. metalplane HA pair in hot-standby (perfdhcp -> the primary);
c2. metalplane HA pair in load-balancing (perfdhcp broadcasts: each server
    answers its half).

Capacity = the highest perfdhcp rate (4-way exchanges/s) that the server
sustains with at most --tolerance % drops in each exchange (perfdhcp exits 3 on
any drop, so drops are read from its statistics instead): the offered rate
climbs x1.5 from --start until it fails, then is bisected.

Failover: the hot-standby pair in steady state, kill -9 of the primary's
kea-dhcp4; measured: the standby reaching partner-down (its ha-heartbeat polled
every 50 ms) and a new udhcpc client (DISCOVER every 1 s) getting a lease from
the standby; then failback (primary restarted, both back in hot-standby).
Median of --failovers runs.

Variants (``--variant NAME``, repeatable; ``A+B`` combines presets; ``lb:NAME``
edits the load-balancing pair instead): extra HA pairs whose generated configs
are edited in the bench only (the production generator is untouched), each
measured beside bare Kea (a) and the production pairs in the same run;
``--list-variants`` shows the presets. ``--setups`` picks which of a, b, c1, c2
run (a always runs: every ratio is to it). A variant Kea refuses (``kea-dhcp4
-t``, or the HA hook at start) is reported as refused with Kea's message. The
variant table is printed, not written (--write is for the full run only).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "src"), str(REPO)]  # metalplane, and the test house (tests.support)

from benchdoc import cpu_model, publish  # noqa: E402

from metalplane.rack.dhcp import DhcpService, DhcpSettings, KeaError, prefix_wrap  # noqa: E402
from tests.support.netlab import Host, Lab  # noqa: E402

NET, RACK1, RACK2, PERF = "10.50.0.0/16", "10.50.0.2", "10.50.0.3", "10.50.0.10"
POOL = ["10.50.1.0", "10.50.255.254"]
SECTION = "## DHCP (Kea)"
NO_RESTARTS = DhcpSettings(restart_backoff=None)  # a Kea that dies stays dead
#: Observations from the runs so far, kept in the report (edit when they change).
NOTES = """Notes:

- The machine was shared with other test runs (load average 6-10 on 2 cores during the run), so
  single rounds collapse now and then (e.g. a's 1,310 in round 3); best of rounds is given, and
  every run is listed below. Compare within a run.
- b vs a: the generated config runs Kea multi-threaded (needed for HA's dedicated listener),
  loads lease_cmds, evaluates four boot client classes and 50 reservations per packet; it logs
  only warnings and HA state changes (Kea's INFO logs two lines per lease; not measured apart).
- Hot-standby: every ACK waits for the standby's acknowledgement of the lease update, over HTTP
  between two Kea processes that share these 2 cores with perfdhcp. The HA hook runs listener 4 /
  client 8 HTTP threads; one per core (Kea's default) ran faster but left leases on the
  primary only after overload (section "DHCP (Kea) HA: config variants"). Load-balancing is measured with perfdhcp
  broadcasting, so both servers receive and parse every packet.
"""


def dhcp_state(
    name: str, address: str, role: str = "standalone", mode: str | None = None, peer: tuple[str, str] | None = None
) -> dict:
    hosts = [
        {"mac": f"52:54:00:00:{i // 256:02x}:{i % 256:02x}", "hostname": f"node{i}", "ip": f"10.50.0.{100 + i}"}
        for i in range(50)
    ]
    return {
        "server_name": name,
        "vlans": [
            {
                "vlan_id": 1,
                "vid": 0,
                "mtu": 1500,
                "interface": "pxe",
                "self_address": address,
                "role": role,
                "mode": mode,
                "peer": {"name": peer[0], "address": peer[1]} if peer else None,
                "subnets": [
                    {
                        "subnet_id": 1,
                        "cidr": NET,
                        "gateway_ip": "10.50.0.1",
                        "dns_servers": [RACK1],
                        "ntp_servers": [RACK1],
                        "domain_name": "maas",
                        "pools": [POOL],
                        "reserved": [["10.50.200.0", "10.50.200.255"]],
                        "lease_time": 3600,
                    }
                ],
            }
        ],
        "hosts": hosts,
        "boot": {
            "http_port": 5248,
            "loaders": {"bios": "lpxelinux.0", "uefi-x64": "bootx64.efi", "uefi-arm64": "grubaa64.efi"},
        },
    }


def bare_config(workdir: Path) -> dict:
    return {
        "Dhcp4": {
            "interfaces-config": {"interfaces": ["pxe"], "dhcp-socket-type": "raw"},
            "lease-database": {"type": "memfile", "persist": True, "name": str(workdir / "leases4.csv")},
            "valid-lifetime": 3600,
            "subnet4": [{"id": 1, "subnet": NET, "pools": [{"pool": f"{POOL[0]}-{POOL[1]}"}]}],
        }
    }


# --------------------------------------------------------------------------- config variants


def _ha(d: dict) -> dict:
    """The HA hook's relationship in a rendered Dhcp4 config."""
    lib = next(h for h in d["hooks-libraries"] if h["library"].endswith("libdhcp_ha.so"))
    return lib["parameters"]["high-availability"][0]


def _http_threads(listener: int, client: int):
    def edit(d: dict, role: str) -> None:
        _ha(d)["multi-threading"].update({"http-listener-threads": listener, "http-client-threads": client})

    return edit


def _global(key: str, field: str, value: object, roles: tuple[str, ...] = ("primary", "secondary")):
    def edit(d: dict, role: str) -> None:
        if role in roles:
            d[key][field] = value

    return edit


def _top(field: str, value: object):
    def edit(d: dict, role: str) -> None:
        d[field] = value

    return edit


def _ha_set(**values: object):
    def edit(d: dict, role: str) -> None:
        _ha(d).update({k.replace("_", "-"): v for k, v in values.items()})

    return edit


def _severity(level: str):
    def edit(d: dict, role: str) -> None:
        for logger in d["loggers"]:
            logger["severity"] = level

    return edit


def _passive_backup(d: dict, role: str) -> None:
    ha = _ha(d)
    ha["mode"] = "passive-backup"
    ha["wait-backup-ack"] = False
    for peer in ha["peers"]:
        if peer["role"] == "standby":
            peer["role"] = "backup"


#: name -> (what it changes, edit(rendered Dhcp4 dict, "primary" | "secondary") in place).
VARIANTS: dict[str, tuple[str, object]] = {
    "http-0": ("HA HTTP threads listener 0, client 0 (Kea: one per core)", _http_threads(0, 0)),
    "http-1": ("HA HTTP threads listener 1, client 1", _http_threads(1, 1)),
    "http-2": ("HA HTTP threads listener 2, client 2", _http_threads(2, 2)),
    "http-4-8": ("HA HTTP threads listener 4, client 8 (the production setting)", _http_threads(4, 8)),
    "http-16": ("HA HTTP threads listener 8, client 16", _http_threads(8, 16)),
    "pool-1": ("Kea thread-pool-size 1 (both)", _global("multi-threading", "thread-pool-size", 1)),
    "pool-4": ("Kea thread-pool-size 4 (both)", _global("multi-threading", "thread-pool-size", 4)),
    "pool-8": ("Kea thread-pool-size 8 (both)", _global("multi-threading", "thread-pool-size", 8)),
    "queue-16": ("Kea packet-queue-size 16 (both)", _global("multi-threading", "packet-queue-size", 16)),
    "queue-256": ("Kea packet-queue-size 256 (both)", _global("multi-threading", "packet-queue-size", 256)),
    "queue-1024": ("Kea packet-queue-size 1024 (both)", _global("multi-threading", "packet-queue-size", 1024)),
    "queue-4096": ("Kea packet-queue-size 4096 (both)", _global("multi-threading", "packet-queue-size", 4096)),
    "parked-64": ("Kea parked-packet-limit 64 (both; Kea's default 256)", _top("parked-packet-limit", 64)),
    "parked-1024": ("Kea parked-packet-limit 1024 (both)", _top("parked-packet-limit", 1024)),
    "parked-4096": ("Kea parked-packet-limit 4096 (both)", _top("parked-packet-limit", 4096)),
    "parked-0": ("Kea parked-packet-limit 0 (both; no limit)", _top("parked-packet-limit", 0)),
    "persist-off-standby": (
        "memfile persist false on the standby (unsafe: its leases only in memory)",
        _global("lease-database", "persist", False, ("secondary",)),
    ),
    "persist-off": (
        "memfile persist false on both (unsafe: no lease file, the rack reports no leases)",
        _global("lease-database", "persist", False),
    ),
    "lfc-10": ("memfile lfc-interval 10 s (both)", _global("lease-database", "lfc-interval", 10)),
    "log-error": ("every logger at ERROR (HA state changes not logged)", _severity("ERROR")),
    "log-debug": ("every logger at DEBUG, debuglevel 0", _severity("DEBUG")),
    "delayed-0": ("HA delayed-updates-limit 0 (no communication-recovery)", _ha_set(delayed_updates_limit=0)),
    "delayed-100": ("HA delayed-updates-limit 100", _ha_set(delayed_updates_limit=100)),
    "delayed-10000": ("HA delayed-updates-limit 10000", _ha_set(delayed_updates_limit=10000)),
    "wait-ack": ("HA wait-backup-ack true", _ha_set(wait_backup_ack=True)),
    "no-updates": (
        "HA send-lease-updates false (reference only: no replication, unsafe)",
        _ha_set(send_lease_updates=False),
    ),
    "passive-backup": (
        "HA passive-backup, wait-backup-ack false (reference only: no automatic failover)",
        _passive_backup,
    ),
}


def variant_mode(name: str) -> str:
    """'lb:NAME' is a load-balancing variant (of c2), NAME one of hot-standby (of c1)."""
    return "load-balancing" if name.startswith("lb:") else "hot-standby"


def variant_edits(name: str) -> tuple[str, list]:
    """A variant's description and edits; NAME may combine presets with '+'."""
    parts = name.removeprefix("lb:").split("+")
    unknown = [p for p in parts if p not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    return "; ".join(VARIANTS[p][0] for p in parts), [VARIANTS[p][1] for p in parts]


class TunedService(DhcpService):
    """DhcpService whose rendered kea-dhcp4 configs go through a variant's edits (bench only)."""

    def __init__(self, *a, edits: list, role: str, **kw):
        super().__init__(*a, **kw)
        self.edits, self.role = edits, role

    def _render(self, inst, state, proc) -> dict:
        conf = super()._render(inst, state, proc)
        for edit in self.edits:
            edit(conf["Dhcp4"], self.role)
        return conf


# --------------------------------------------------------------------------- perfdhcp


def perfdhcp_cmd(rate: int, duration: int, target: str, iface: str = "IFACE") -> list[str]:
    return ["perfdhcp", "-4", "-r", str(rate), "-R", "60000", "-p", str(duration), "-l", iface, target]


def run_perfdhcp(perf: Host, rate: int, duration: int, target: str, iface: str) -> dict:
    proc = perf.run(perfdhcp_cmd(rate, duration, target, iface), check=False, timeout=duration + 60)
    out = proc.stdout
    m = re.search(r"Rate: ([\d.]+) 4-way exchanges/second", out)
    drops = [float(x) for x in re.findall(r"drops ratio: ([\d.]+) %", out)]
    if m is None or len(drops) < 2:
        raise RuntimeError(f"perfdhcp output not understood (exit {proc.returncode}):\n{out}\n{proc.stderr}")
    return {"offered": rate, "rate": float(m.group(1)), "drops": drops, "exit": proc.returncode}


def capacity(perf: Host, target: str, args: argparse.Namespace, label: str, iface: str) -> dict:
    """Highest rate sustained with <= tolerance % drops: climb x1.5, then bisect."""

    def ok(r: dict) -> bool:
        return max(r["drops"]) <= args.tolerance

    runs: list[dict] = []

    def trial(rate: int) -> dict:
        r = run_perfdhcp(perf, rate, args.duration, target, iface)
        runs.append(r)
        print(
            f"  {label}: offered {rate:>6}/s -> {r['rate']:8.1f}/s, drops "
            f"{r['drops'][0]:.2f}% / {r['drops'][1]:.2f}%{'' if ok(r) else '  (fail)'}",
            flush=True,
        )
        return r

    best = None
    lo, hi = 0, None
    rate = args.start
    while rate <= args.max_rate:
        r = trial(rate)
        if not ok(r):
            hi = rate
            break
        best, lo = r, rate
        rate = int(rate * 1.5)
    if hi is None:
        hi = args.max_rate
    for _ in range(args.bisect):
        if hi - lo <= max(100, lo // 20):
            break
        mid = (lo + hi) // 2
        r = trial(mid)
        if ok(r):
            best, lo = r, mid
        else:
            hi = mid
    return {"best": best, "runs": runs}


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes and all their threads so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / tick


def cpu_cost(setup: Setup, rate: int, duration: int) -> dict:
    """CPU per lease at a rate every setup sustains: where the time goes, independent of load.

    On a machine whose cores are all busy (perfdhcp and the servers share 2 CPUs here), the
    leases/s a setup can reach is bounded by the CPU it spends per lease, so the ratio of
    these costs is the throughput ratio these cores allow, whatever else runs beside."""
    hosts = {host.name: host.pids() for host in setup.server_hosts()}

    def by_host() -> dict[str, float]:
        return {name: cpu_seconds(pids) for name, pids in hosts.items()}

    idle_from = by_host()
    time.sleep(duration)  # what the servers spend without traffic (HA heartbeats, timers, threads)
    before = by_host()
    idle = sum(before.values()) - sum(idle_from.values())
    t0 = time.monotonic()
    proc = setup.perf.spawn(perfdhcp_cmd(rate, duration, setup.target, setup.net))
    perf_cpu = 0.0
    while proc.poll() is None:  # `ip netns exec` execs perfdhcp: the same pid
        perf_cpu = max(perf_cpu, cpu_seconds([proc.pid]))  # gone once it exits: keep the last reading
        time.sleep(0.05)
    wall = time.monotonic() - t0
    after = by_host()
    m = re.search(r"Rate: ([\d.]+) 4-way exchanges/second", proc.log())
    leases = float(m.group(1)) * duration if m else 0.0

    def per_lease(seconds: float) -> float:
        return 1000 * seconds / leases if leases else float("nan")

    spent = {name: after[name] - before[name] for name in hosts}
    server_cpu = sum(spent.values())
    return {
        "rate": rate,
        "leases": leases,
        "server_ms": per_lease(server_cpu),
        "busy_ms": per_lease(max(server_cpu - idle * wall / duration, 0.0)),
        "idle_cpu_per_s": idle / duration,
        "perf_ms": per_lease(perf_cpu),
        "by_host_ms": {name: round(per_lease(cpu), 3) for name, cpu in spent.items()},
        "wall": wall,
    }


# --------------------------------------------------------------------------- servers


async def wait_ha(services: list[DhcpService], state: str | tuple[str, ...], timeout: float = 60) -> float:
    """Wait until every service's HA state is `state` (one per service when a tuple)."""
    wanted = (state,) * len(services) if isinstance(state, str) else state
    t0 = time.monotonic()
    while True:
        states = []
        for svc in services:
            proc = next(iter(svc.instances.values()))
            try:
                states.append((await proc.command("ha-heartbeat", timeout=2))["arguments"]["state"])
            except Exception:  # not up yet
                states.append(None)
        if tuple(states) == wanted:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"HA states {states}, wanted {state}")
        await asyncio.sleep(0.05)


class Setup:
    """One server setup on its own network (bridge), with its own perfdhcp host."""

    def __init__(self, lab: Lab, key: str, net: str):
        self.key, self.net = key, net
        lab.add_network(net, NET)
        self.r1 = lab.add_host(f"{key}-rack1", {net: f"{RACK1}/16"})
        self.perf = lab.add_host(f"{key}-perf", {net: f"{PERF}/16"})
        self.lab = lab
        self.services: list[DhcpService] = []
        self.target = RACK1
        self.runs: list[dict] = []
        self.best: list[dict | None] = []
        self.costs: list[dict] = []
        self.refused = ""  #: Kea's message when it refused this setup's config
        self.leases = self.lacking = -1  #: HA pairs: leases after the load, and how many the partner lacks

    def state(self, name: str, address: str, *a, **kw) -> dict:
        st = dhcp_state(name, address, *a, **kw)
        st["vlans"][0]["interface"] = self.net
        return st

    async def start(self) -> None:
        raise NotImplementedError

    def server_hosts(self) -> list[Host]:
        return [self.r1]

    async def stop(self) -> None:
        await asyncio.gather(*(s.stop() for s in self.services), return_exceptions=True)


class Bare(Setup):
    label = "a. bare kea-dhcp4, minimal hand config (Kea defaults)"

    async def start(self) -> None:
        d = self.lab.new_workdir("bare")
        conf = bare_config(d)
        conf["Dhcp4"]["interfaces-config"]["interfaces"] = [self.net]
        (d / "kea.json").write_text(json.dumps(conf))
        kea = self.r1.spawn(
            ["kea-dhcp4", "-c", str(d / "kea.json")], env={"KEA_PIDFILE_DIR": str(d), "KEA_LOCKFILE_DIR": str(d)}
        )
        deadline = time.monotonic() + 15
        while "DHCP4_STARTED" not in kea.log():
            if kea.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"bare kea-dhcp4 did not start:\n{kea.log()}")
            await asyncio.sleep(0.05)


class Generated(Setup):
    label = "b. metalplane generated, standalone"

    async def start(self) -> None:
        svc = DhcpService(self.lab.new_workdir("gen"), wrap=prefix_wrap(self.r1.command([])))
        self.services.append(svc)
        await svc.apply(self.state("rack1", RACK1))


class Pair(Setup):
    def __init__(self, lab: Lab, key: str, net: str, mode: str, variant: str | None = None, **kw):
        super().__init__(lab, key, net)
        self.mode = mode
        self.kw = kw
        self.r2 = lab.add_host(f"{key}-rack2", {net: f"{RACK2}/16"})
        self.label = {
            "hot-standby": "c1. metalplane HA pair, hot-standby (-> primary)",
            "load-balancing": "c2. metalplane HA pair, load-balancing (broadcast)",
        }[mode]
        self.variant, self.edits = variant, []
        if variant is not None:
            self.what, self.edits = variant_edits(variant)
            self.label = f"{key}. {'c1' if mode == 'hot-standby' else 'c2'} + {variant}"
        self.target = RACK1 if mode == "hot-standby" else "all"

    def service(self, name: str, host: Host, role: str, **kw) -> DhcpService:
        workdir, wrap = self.lab.new_workdir(name), prefix_wrap(host.command([]))
        if not self.edits:
            return DhcpService(workdir, wrap=wrap, **kw)
        # no restarts: a variant the HA hook refuses fails once, not every backoff step
        return TunedService(workdir, wrap=wrap, edits=self.edits, role=role, settings=NO_RESTARTS)

    async def start(self) -> None:
        self.s1 = self.state("rack1", RACK1, "primary", self.mode, ("rack2", RACK2))
        self.s2 = self.state("rack2", RACK2, "secondary", self.mode, ("rack1", RACK1))
        self.primary = self.service(f"{self.key}1", self.r1, "primary", **self.kw)
        self.secondary = self.service(f"{self.key}2", self.r2, "secondary")
        self.services += [self.primary, self.secondary]
        try:
            await asyncio.gather(self.primary.apply(self.s1), self.secondary.apply(self.s2))
        except KeaError as e:  # `kea-dhcp4 -t` does not load hooks: the HA hook refuses at start
            if self.variant is None:
                raise
            found = re.findall(
                r"HA_CONFIGURATION_FAILED failed to configure High Availability hooks library: ([^|]*)", str(e)
            )
            self.refused = found[0].strip() if found else " ".join(str(e).split())[:300]
            print(f"{self.label}: refused by Kea: {self.refused}", flush=True)
            await self.stop()
            return
        await wait_ha([self.primary, self.secondary], self.ha_states())

    def ha_states(self) -> tuple[str, str]:
        """Both servers' HA states in steady state."""
        ha = self.primary.render(self.s1)
        mode = _ha(next(iter(ha.values()))["Dhcp4"])["mode"]
        return ("passive-backup", "backup") if mode == "passive-backup" else (mode, mode)

    def server_hosts(self) -> list[Host]:
        return [self.r1, self.r2]

    async def missing(self) -> tuple[int, int]:
        """(leases on the server perfdhcp talks to, how many of them its partner lacks): the
        replication check after the load (lease4-get-page on both servers' control sockets)."""
        held: list[set[str]] = []
        for svc in self.services:
            proc, ips, start = next(iter(svc.instances.values())), set(), "start"
            while True:
                answer = await proc.command("lease4-get-page", {"from": start, "limit": 2000}, timeout=30)
                page = [lease["ip-address"] for lease in (answer.get("arguments") or {}).get("leases", [])]
                if not page:
                    break
                ips.update(page)
                start = page[-1]
            held.append(ips)
        for role, svc in (("primary", self.primary), ("standby", self.secondary)):
            proc = next(iter(svc.instances.values()))
            log = proc.log_path.read_text(errors="replace") if proc.log_path.exists() else ""
            codes = ("HA_LEASE_UPDATE_COMMUNICATIONS_FAILED", "HA_LEASE_UPDATE_FAILED", "HA_STATE_TRANSITION ")
            states = re.findall(r"HA_STATE_TRANSITION .*?transitions from (\S+) to (\S+) state", log)
            print(f"{self.key} {role}'s log: {[(c, log.count(c)) for c in codes]}, transitions {states}", flush=True)
        if self.mode == "hot-standby":
            return len(held[0]), len(held[0] - held[1])
        return len(held[0] | held[1]), len(held[0] ^ held[1])

    async def states(self) -> list[str]:
        return [
            (await next(iter(s.instances.values())).command("ha-heartbeat"))["arguments"]["state"]
            for s in self.services
        ]


async def failovers(pair: Pair, args) -> list[dict]:
    out = []
    primary, standby = pair.primary, pair.secondary
    for n in range(args.failovers):
        client = pair.lab.add_host(f"fo{n}", {pair.net: None})
        proc = next(iter(primary.instances.values()))
        sproc = next(iter(standby.instances.values()))
        await asyncio.sleep(1.0)  # steady state: heartbeats flowing
        os.kill(proc.pid, signal.SIGKILL)
        t0 = time.monotonic()
        lease_task = asyncio.create_task(asyncio.to_thread(client.dhcp_udhcpc, pair.net, timeout=30))
        partner_down = None
        while partner_down is None:
            try:
                st = (await sproc.command("ha-heartbeat", timeout=1))["arguments"]["state"]
            except Exception:
                st = None
            if st == "partner-down":
                partner_down = time.monotonic() - t0
            elif time.monotonic() - t0 > 60:
                raise TimeoutError("standby never went partner-down")
            else:
                await asyncio.sleep(0.05)
        lease = await lease_task
        leased = time.monotonic() - t0
        assert lease.server_id == RACK2, lease
        t1 = time.monotonic()
        await primary.apply(pair.s1)
        await wait_ha([primary, standby], "hot-standby")
        failback = time.monotonic() - t1
        run = {"partner_down": partner_down, "lease": leased, "failback": failback}
        print(
            f"  failover {n + 1}: partner-down {partner_down:.2f}s, lease from standby {leased:.2f}s, "
            f"failback {failback:.2f}s",
            flush=True,
        )
        out.append(run)
    return out


# --------------------------------------------------------------------------- report


def machine() -> str:
    cpu = cpu_model()
    kea = subprocess.run(["kea-dhcp4", "-v"], capture_output=True, text=True).stdout.strip()
    return f"{os.cpu_count()} CPUs (nproc), {cpu}; Linux {platform.release()}; kea-dhcp4 {kea}"


def cost_lines(setups: dict[str, Setup], args) -> list[str]:
    def med(key: str, field: str) -> float:
        return statistics.median(c[field] for c in setups[key].costs)

    a_server, a_all = med("a", "server_ms"), med("a", "server_ms") + med("a", "perf_ms")
    lines = [
        f"CPU per lease (perfdhcp at {args.cpu_rate}/s for {args.duration} s, which every setup sustains; "
        f"median of {args.cpu_runs}; CPU = user + system of every server process in the setup's "
        "namespaces, from /proc): the throughput ratio a CPU-bound machine allows is the inverse "
        "ratio of these costs.",
        "",
        "| server | server CPU ms/lease | of which idle | + perfdhcp ms/lease | CPU bound vs a (servers) | "
        "(servers + perfdhcp) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key in ("a", "b", "c1", "c2"):
        if not setups[key].costs:
            continue
        server, perf = med(key, "server_ms"), med(key, "perf_ms")
        idle = server - med(key, "busy_ms")
        lines.append(
            f"| {setups[key].label} | {server:.3f} | {idle:.3f} | {server + perf:.3f} | {a_server / server:.2f} | "
            f"{a_all / (server + perf):.2f} |"
        )
    return [*lines, ""]


def report(setups: dict[str, Setup], fo: list[dict], args) -> str:
    def best(key: str) -> dict | None:
        cands = [b for b in setups[key].best if b is not None]
        return max(cands, key=lambda b: b["rate"]) if cands else None

    a = best("a")["rate"] if best("a") else 0.0

    def row(key: str) -> str:
        b = best(key)
        per_round = ", ".join(f"{x['rate']:,.0f}" if x else "-" for x in setups[key].best)
        if b is None:
            return f"| {setups[key].label} | - | {per_round} | - |"
        ratio = f"{b['rate'] / a:.2f}" if a else "-"
        return f"| {setups[key].label} | {b['rate']:,.0f} | {per_round} | {ratio} |"

    lines = [
        SECTION,
        "",
        f"Measured {datetime.date.today().isoformat()} by `bench/dhcp_bench.py --rounds {args.rounds} "
        f"--duration {args.duration}` on {machine()}; load average before the run {args.loadavg}. "
        "Servers and perfdhcp share the same cores, each in its own network namespace; every setup has "
        "its own bridge and perfdhcp host, all set up at once, and the rounds take them in turn, so "
        "load from elsewhere on the machine falls on all of them alike.",
        "",
        f"perfdhcp: `{' '.join(perfdhcp_cmd(0, args.duration, 'SERVER')).replace('-r 0', '-r RATE')}` "
        "(relayed DORA, 60,000 random MACs, 10.50.0.0/16 with a 65,000-address pool); capacity = highest "
        f"offered rate with at most {args.tolerance:g} % drops in DISCOVER-OFFER and in REQUEST-ACK "
        "(offered rate x1.5 until it fails, then bisected); leases/s = what perfdhcp measured at that "
        "rate; best of the rounds (each round's value listed).",
        "",
        "| server | leases/s (best) | per round | vs a |",
        "| --- | ---: | ---: | ---: |",
        *(row(k) for k in ("a", "b", "c1", "c2")),
        "",
    ]
    if a and best("c1") and best("b"):
        pen = (best("c1")["rate"] / a - 1) * 100
        pen_b = (best("c1")["rate"] / best("b")["rate"] - 1) * 100
        lines.append(
            f"Hot-standby: {pen:+.0f} % vs bare Kea (a), {pen_b:+.0f} % vs the same generated config "
            "standalone (b). ISC's published Kea HA hot-standby penalty: about -52 %."
        )
        lines.append("")
    if all(setups[k].costs for k in ("a", "c1")):
        lines += cost_lines(setups, args)
    if fo:
        med = {k: statistics.median(r[k] for r in fo) for k in ("partner_down", "lease", "failback")}
        lines += [
            "HA failover (hot-standby; heartbeat-delay 1000, max-response-delay 3000, max-ack-delay 1000 ms, "
            f"max-unacked-clients 0), {len(fo)} runs:",
            "",
            "| after kill -9 of the primary's kea-dhcp4 | median | min | max |",
            "| --- | ---: | ---: | ---: |",
        ]
        for key, label in (
            ("partner_down", "standby in partner-down"),
            ("lease", "a new client (udhcpc, DISCOVER every 1 s) leased by the standby"),
            ("failback", "primary restarted -> both back in hot-standby"),
        ):
            vals = [r[key] for r in fo]
            lines.append(f"| {label} | {med[key]:.2f} s | {min(vals):.2f} s | {max(vals):.2f} s |")
        lines.append("")
    lines += NOTES.splitlines() + [""]
    lines.append("All perfdhcp runs (offered -> measured leases/s, drops % DISCOVER-OFFER/REQUEST-ACK):")
    lines.append("")
    for key in ("a", "b", "c1", "c2"):
        runs = ", ".join(
            f"{r['offered']}->{r['rate']:.0f} ({r['drops'][0]:.1f}/{r['drops'][1]:.1f})" for r in setups[key].runs
        )
        lines.append(f"- {key}: {runs}")
    lines.append("")
    return "\n".join(lines)


def variant_report(setups: dict[str, Setup], args) -> str:
    """The variants beside a (and whichever of b, c1, c2 ran): capacity and CPU per lease."""

    def best(setup: Setup) -> dict | None:
        cands = [b for b in setup.best if b is not None]
        return max(cands, key=lambda b: b["rate"]) if cands else None

    def med(setup: Setup, field: str) -> float:
        return statistics.median(c[field] for c in setup.costs) if setup.costs else float("nan")

    a = setups["a"]
    a_rate = best(a)["rate"] if best(a) else float("nan")  # type: ignore[index]
    a_all = med(a, "server_ms") + med(a, "perf_ms")
    cmd = " ".join(sys.argv[1:])
    lines = [
        f"Command: `.venv/bin/python bench/dhcp_bench.py {cmd}`",
        f"Machine: {machine()}; {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; "
        f"load average before/after: {args.loadavg} / {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        "",
        "| setup | what changes | leases/s (best) | per round | vs a | server CPU ms/lease | + perfdhcp | "
        "CPU bound vs a | per host ms/lease | leases, missing on the partner |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for key, setup in setups.items():
        what = getattr(setup, "what", "production config" if key != "a" else "Kea defaults")
        if setup.refused:
            lines.append(f"| {key} | {what} | refused by Kea: {setup.refused} | | | | | | | |")
            continue
        b = best(setup)
        per_round = ", ".join(f"{x['rate']:,.0f}" if x else "-" for x in setup.best)
        rate = f"{b['rate']:,.0f}" if b else "-"
        ratio = f"{b['rate'] / a_rate:.2f}" if b else "-"
        server, perf = med(setup, "server_ms"), med(setup, "perf_ms")
        hosts = ""
        if setup.costs:
            names = list(setup.costs[0]["by_host_ms"])
            hosts = ", ".join(
                f"{n.split('-', 1)[-1]} {statistics.median(c['by_host_ms'][n] for c in setup.costs):.3f}" for n in names
            )
        lines.append(
            f"| {key} | {what} | {rate} | {per_round} | {ratio} | {server:.3f} | {server + perf:.3f} | "
            f"{a_all / (server + perf):.2f} | {hosts} | "
            f"{f'{setup.leases:,}, {setup.lacking}' if setup.leases >= 0 else '-'} |"
        )
    lines += [
        "",
        f"Capacity: best of {args.rounds} rounds (setups in turn), perfdhcp -p {args.duration}, at most "
        f"{args.tolerance:g} % drops; CPU: perfdhcp at {args.cpu_rate}/s for {args.duration} s, median of "
        f"{args.cpu_runs}; CPU bound vs a = a's (servers + perfdhcp) ms/lease over the setup's; leases = "
        "addresses leased by the server perfdhcp talks to after every run (lease4-get-page), missing = how "
        "many of them its partner lacks (load-balancing: leases on either, on one only).",
        "",
        "All perfdhcp runs (offered -> measured leases/s, drops % DISCOVER-OFFER/REQUEST-ACK):",
        "",
    ]
    for key, setup in setups.items():
        runs = ", ".join(
            f"{r['offered']}->{r['rate']:.0f} ({r['drops'][0]:.1f}/{r['drops'][1]:.1f})" for r in setup.runs
        )
        lines.append(f"- {key}: {runs}")
    return "\n".join(lines) + "\n"


async def main(args: argparse.Namespace) -> None:
    args.loadavg = " ".join(f"{x:.2f}" for x in os.getloadavg())
    wanted = set(args.setups.split(",")) | {"a"}
    with Lab() as lab:
        every: dict[str, Callable[[], Setup]] = {
            "a": lambda: Bare(lab, "a", "neta"),
            "b": lambda: Generated(lab, "b", "netb"),
            "c1": lambda: Pair(lab, "c1", "netc", "hot-standby", settings=NO_RESTARTS),
            "c2": lambda: Pair(lab, "c2", "netd", "load-balancing"),
        }
        setups: dict[str, Setup] = {k: make() for k, make in every.items() if k in wanted}
        for n, variant in enumerate(args.variant, 1):
            setups[f"v{n}"] = Pair(lab, f"v{n}", f"netv{n}", variant_mode(variant), variant)
        try:
            await asyncio.gather(*(s.start() for s in setups.values()))
            setups_run = {k: s for k, s in setups.items() if not s.refused}
            for rnd in range(args.rounds):
                for key, setup in setups_run.items():
                    print(f"round {rnd + 1}: {setup.label}", flush=True)
                    result = await asyncio.to_thread(capacity, setup.perf, setup.target, args, key, setup.net)
                    setup.runs += result["runs"]
                    setup.best.append(result["best"])
            for key, setup in setups_run.items():
                for _ in range(args.cpu_runs):
                    cost = await asyncio.to_thread(cpu_cost, setup, args.cpu_rate, args.duration)
                    print(f"  {key}: CPU per lease {cost}", flush=True)
                    setup.costs.append(cost)
            for key, setup in setups_run.items():
                if isinstance(setup, Pair):
                    print(f"{key} HA states after the load: {await setup.states()}")
                    try:
                        setup.leases, setup.lacking = await setup.missing()
                    except Exception as e:  # a figure missing, not the run
                        print(f"{key}: lease count failed: {e!r}", flush=True)
                    print(f"{key} leases {setup.leases}, missing on the partner {setup.lacking}", flush=True)
            fo: list[dict] = []
            if args.failovers and "c1" in setups:
                print("failover", flush=True)
                fo = await failovers(setups["c1"], args)  # type: ignore[arg-type]
        finally:
            await asyncio.gather(*(s.stop() for s in setups.values()), return_exceptions=True)
    if args.variant or wanted != set(every):
        print()
        print(variant_report(setups, args))
    else:
        publish(report(setups, fo, args), args.write)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=5, help="seconds per perfdhcp run (-p)")
    ap.add_argument("--start", type=int, default=1000, help="first offered rate")
    ap.add_argument("--max-rate", type=int, default=20000)
    ap.add_argument("--bisect", type=int, default=3, help="bisection steps after the first failure")
    ap.add_argument("--tolerance", type=float, default=1.0, help="max drop %% per exchange")
    ap.add_argument("--failovers", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3, help="capacity searches per setup, taken in turn")
    ap.add_argument("--cpu-rate", type=int, default=400, help="offered rate of the CPU-per-lease runs")
    ap.add_argument("--cpu-runs", type=int, default=3, help="CPU-per-lease runs per setup (median kept)")
    ap.add_argument("--write", help="markdown file whose DHCP section to replace (e.g. docs/benchmarks.md)")
    ap.add_argument("--setups", default="a,b,c1,c2", help="comma-separated standard setups to run (a always runs)")
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        help="a hot-standby config variant to add (repeatable; A+B combines; lb:NAME: of load-balancing)",
    )
    ap.add_argument("--list-variants", action="store_true", help="print the variant presets and exit")
    parsed = ap.parse_args()
    if parsed.list_variants:
        for name, (what, _) in VARIANTS.items():
            print(f"{name:22} {what}")
        sys.exit(0)
    for v in parsed.variant:
        variant_edits(v)  # unknown names fail before any namespace is made
    if parsed.write and (parsed.variant or parsed.setups != "a,b,c1,c2"):
        ap.error("--write replaces the whole DHCP section: only for the full run (no --variant, every setup)")
    asyncio.run(main(parsed))
