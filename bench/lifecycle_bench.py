#!/usr/bin/env python3
"""One VM through the whole lifecycle on the real region and rack: PXE enlist -> New,
commission (through its IPMI BMC) -> Ready, `machines allocate` -> Allocated, `machine deploy`
(user_data, the sshkeys API's key) -> Deploying -> Deployed (installer from the rack, first boot
from its own disk), SSH into it with the key, user_data's file there, then
`machine release erase=true quick_erase=true` -> Disk erasing (the VM PXE-boots the ephemeral
image's quick wipe, which reports through the metadata API) -> Ready and powered off; then the
Ready machine's next boot: the rack's iPXE script is the ephemeral image in mp_mode=poweroff,
and the VM, powered on through its BMC, boots it and powers itself off.

Too long for the test suite under TCG (10-20 min on 2 shared cores), hence bench/. The lab is
tests/system/test_boot_path.py's (network namespaces, Kea/TFTP/HTTP on the rack, an ipmi_sim
whose power hook runs qemu) with a disk on the VM, 1 GiB of memory, and no -no-reboot (the
installer reboots into the disk).

    sudo .venv/bin/python bench/lifecycle_bench.py [--rounds N] [--keep]

Enlisting and commissioning happen once; each of the N rounds (default 1) is allocate, deploy,
SSH, release with erase and the Ready machine's boot. The deploy is split with the machine's
own events (times are the region's, to the second; the steps' are the installer's own):
"PXE to installer" is the deploy call ("User starting deployment") to the installer's first
report, then each installer step, "first boot" is `deploy/done` ("Installation complete") to
Deployed. Prints each time (median, min and max over the rounds) and exits non-zero at the
first thing that does not happen.
"""

from __future__ import annotations

import argparse
import base64
import re
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "src"), str(REPO)]  # metalplane, and the test house (tests.support)

from metalplane.images.build import build_ephemeral  # noqa: E402
from metalplane.region.services.events import CREATED_FORMAT  # noqa: E402
from tests.support.bmc_ipmi import IpmiSimBmc, command_hook  # noqa: E402
from tests.support.databases import TestDatabases, world_traversable_tempdir  # noqa: E402
from tests.support.deploy_lab import DISK_SERIAL, cached_debian_image, make_ssh_key, ssh_command  # noqa: E402
from tests.support.netlab import Lab  # noqa: E402
from tests.support.processes import wait_until  # noqa: E402
from tests.support.stack import Stack  # noqa: E402

CIDR = "10.81.0.0/24"
VM_MAC = "52:54:00:81:00:42"
USER_DATA = b"#!/bin/sh\necho 'user_data was here' > /var/tmp/user-data-ran\n"
# A "Node installation" event's description: "image ok (97.5 s): written" (services/deployment.py).
INSTALL_STEP = re.compile(r"^(?P<step>\w+) (?P<status>started|ok|failed)(?: \((?P<runtime>[\d.]+) s\))?")
INSTALL_STEPS = ("config", "disk", "partition", "format", "image", "configure", "bootloader")


def vm_command(tap: str, serial: Path, disk: Path) -> list[str]:
    return [
        "qemu-system-x86_64",
        "-accel",
        "tcg",
        "-m",
        "1024",
        "-smp",
        "2",
        "-display",
        "none",
        "-serial",
        f"file:{serial}",
        "-netdev",
        f"tap,id=n0,ifname={tap},script=no,downscript=no",
        "-device",
        f"virtio-net-pci,netdev=n0,mac={VM_MAC},bootindex=1",
        "-drive",
        f"file={disk},if=none,id=d0,format=raw,cache=unsafe",
        "-device",
        f"virtio-blk-pci,drive=d0,serial={DISK_SERIAL},bootindex=2",
    ]


def machine_of(stack: Stack) -> dict | None:
    return next(
        (m for m in stack.api("machines", "read") if any(i["mac_address"] == VM_MAC for i in m["interface_set"])), None
    )


def wait_status(stack: Stack, system_id: str, wanted: str, timeout: float, serial: Path) -> dict:
    def seen():
        m = stack.api("machine", "read", system_id)
        return m if m["status_name"] != waiting_in else None

    waiting_in = stack.api("machine", "read", system_id)["status_name"]
    try:
        m = wait_until(seen, timeout, 3.0, f"leaving {waiting_in}")
    except TimeoutError:
        raise SystemExit(
            f"still {waiting_in} after {timeout:.0f} s; console:\n" + serial.read_text(errors="replace")[-4000:]
        ) from None
    if m["status_name"] != wanted:
        raise SystemExit(
            f"{waiting_in} ended in {m['status_name']}: {m['error_description']}\n"
            + serial.read_text(errors="replace")[-4000:]
        )
    return m


def ipmi(bmchost, action: str) -> None:
    """`ipmitool chassis power ACTION` at the VM's BMC, from the BMC's host."""
    bmchost.run(
        [
            "ipmitool",
            "-I",
            "lanplus",
            "-H",
            "10.81.0.100",
            "-U",
            "admin",
            "-P",
            "vm-bmc-pass",
            "chassis",
            "power",
            action,
        ]
    )


def deploy_times(stack: Stack, system_id: str) -> dict[str, float]:
    """The last deploy of `system_id`, split with its events: the deploy call to the installer's
    first report, each installer step (its own runtime), the first boot, the whole."""
    found = stack.api("events", "query", f"id={system_id}", "level=DEBUG", "limit=1000")["events"]
    found.sort(key=lambda e: e["id"])
    start = max(i for i, e in enumerate(found) if e["type"] == "User starting deployment")
    events = found[start:]

    def at(kind: str) -> datetime:
        event = next((e for e in events if e["type"] == kind), None)
        if event is None:
            raise SystemExit(f"no {kind!r} event in the deploy: {[e['type'] for e in events]}")
        return datetime.strptime(event["created"], CREATED_FORMAT)

    called, installer, installed, deployed = (
        at(k) for k in ("User starting deployment", "Node installation", "Installation complete", "Deployed")
    )
    times = {"PXE to installer": (installer - called).total_seconds()}
    for event in events:
        step = INSTALL_STEP.match(event["description"]) if event["type"] == "Node installation" else None
        if step and step["status"] == "ok" and step["runtime"] is not None:
            times[f"  step {step['step']}"] = float(step["runtime"])
    missing = [s for s in INSTALL_STEPS if f"  step {s}" not in times]
    if missing:
        raise SystemExit(f"the installer did not report the steps {missing}")
    times["installer (first report to done)"] = (installed - installer).total_seconds()
    times["first boot (done to Deployed)"] = (deployed - installed).total_seconds()
    times["deploy (call to Deployed)"] = (deployed - called).total_seconds()
    return times


def one_round(stack: Stack, lab_parts: dict, sid: str, key: Path, debian_size: int) -> dict[str, float]:
    """allocate, deploy, SSH, release erase=true quick_erase=true, the Ready machine's boot."""
    region, rack, bmchost, bmc, serial = (lab_parts[k] for k in ("region", "rack", "bmchost", "bmc", "serial"))
    times: dict[str, float] = {}
    t = time.monotonic()
    allocated = stack.api("machines", "allocate", f"system_id={sid}")
    assert allocated["status_name"] == "Allocated", allocated
    times["allocate"] = time.monotonic() - t
    t = time.monotonic()
    deploying = stack.api(
        "machine", "deploy", sid, "distro_series=bookworm", f"user_data={base64.b64encode(USER_DATA).decode()}"
    )
    assert deploying["status_name"] == "Deploying", deploying
    deployed = wait_status(stack, sid, "Deployed", 1800, serial)
    times["deploy (as seen by the API)"] = time.monotonic() - t
    times.update(deploy_times(stack, sid))
    times["image write rate (MB/s of tarball)"] = debian_size / times["  step image"] / 1e6
    address = next(ip for ip in deployed["ip_addresses"] if ip.startswith("10.81."))
    ssh = ssh_command(key, address, "cat /var/tmp/user-data-ran")
    t = time.monotonic()
    said = wait_until(
        lambda: (r := region.run(ssh, check=False, timeout=60)).returncode == 0 and r,
        300,
        5.0,
        "SSH into the deployed machine",
    )
    assert said.stdout.strip() == "user_data was here", said.stdout
    times["Deployed to SSH answering"] = time.monotonic() - t
    t = time.monotonic()
    # Disk erasing: the VM PXE-boots the ephemeral image's wipe (quick: no hdparm in the
    # image, so no secure erase), which reports and powers off; the region releases it.
    erasing = stack.api("machine", "release", sid, "erase=true", "quick_erase=true")
    assert erasing["status_name"] == "Disk erasing", erasing
    wait_until(
        lambda: stack.api("machine", "read", sid)["status_name"] in ("Ready", "Failed disk erasing"),
        600,
        5.0,
        "the wipe to report",
    )
    released = stack.api("machine", "read", sid)
    assert (released["status_name"], released["owner"]) == ("Ready", None), released
    wait_until(lambda: not bmc.power, 120, 2.0, "the VM to be powered off")
    times["release erase=true quick_erase=true"] = time.monotonic() - t
    # The Ready machine's next boot: the ephemeral image, which powers it off at once.
    script = rack.run(["curl", "-s", f"http://10.81.0.2:5248/ipxe.cfg-{VM_MAC.replace(':', '-')}"]).stdout
    if "mp_mode=poweroff" not in script or "kernel " not in script:
        raise SystemExit(f"the Ready machine's iPXE script is not the ephemeral poweroff:\n{script}")
    t = time.monotonic()
    ipmi(bmchost, "on")
    wait_until(lambda: bmc.power, 30, 1.0, "the BMC to power the VM on")
    wait_until(lambda: not bmc.power, 300, 2.0, "the Ready VM to power itself off")
    console = serial.read_text(errors="replace")
    if "mp_mode=poweroff: this machine is to stay off" not in console:
        raise SystemExit("the Ready VM went off without booting the ephemeral poweroff:\n" + console[-4000:])
    if stack.api("machine", "read", sid)["status_name"] != "Ready":
        raise SystemExit("the Ready VM's boot changed its status")
    times["Ready: power on to off (ephemeral poweroff)"] = time.monotonic() - t
    return times


def report(once: dict[str, float], rounds: list[dict[str, float]]) -> None:
    for name, seconds in once.items():
        print(f"{name:45s} {seconds:8.1f} s")
    print(f"{'':45s} {'median':>8s} {'min':>8s} {'max':>8s}   ({len(rounds)} round(s))")
    for name in rounds[0]:
        values = [r[name] for r in rounds]
        unit = "" if "rate" in name else " s"
        print(
            f"{name:45s} {statistics.median(values):8.1f} {min(values):8.1f} {max(values):8.1f}{unit}"
            + (f"   {', '.join(f'{v:.1f}' for v in values)}" if len(values) > 1 else "")
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="print the lab's work dir and keep the images")
    parser.add_argument("--rounds", type=int, default=1, metavar="N", help="deploy/release rounds (default 1)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    times: dict[str, float] = {}
    rounds: list[dict[str, float]] = []
    work = world_traversable_tempdir("mp-lifecycle-bench-")
    started = time.monotonic()
    ephemeral = build_ephemeral(work / "ephemeral", version="20261206.1", release="bookworm")
    debian = cached_debian_image(log=print)
    times["images"] = time.monotonic() - started
    databases = TestDatabases()
    databases.start()
    try:
        with Lab() as lab:
            lab.add_network("pxe", CIDR)
            region = lab.add_host("region", {"pxe": "10.81.0.10/24"})
            rack = lab.add_host("rack1", {"pxe": "10.81.0.2/24"})
            bmchost = lab.add_host("bmchost", {"pxe": "10.81.0.100/24"})
            stack = Stack(lab, databases)
            stack.start_region(region, "pxe")
            stack.add_rack(rack, "rack1")
            stack.start_rack("rack1")
            wait_until(lambda: len(stack.api("rack-controllers", "read")) == 1, 30, what="the rack")
            stack.import_image(ephemeral.out, timeout=180)
            stack.import_image(debian.out, timeout=600)
            stack.cli("admin", "maas", "set-config", "name=default_osystem", "value=debian")
            stack.cli("admin", "maas", "set-config", "name=default_distro_series", "value=bookworm")
            stack.serve_dhcp(CIDR, "10.81.0.100", "10.81.0.199", "rack1")
            workdir = lab.new_workdir("vm")
            tap = lab.add_tap("pxe")
            disk = workdir / "disk.raw"
            with open(disk, "wb") as f:
                f.truncate(4 << 30)
            serial = workdir / "console.serial"
            hook = command_hook(
                workdir / "vm-power", ["ip", "netns", "exec", lab.fabric.netns, *vm_command(tap, serial, disk)]
            )
            time.sleep(20)  # the rack caches the images
            # Enlist: the VM PXE-boots on its own (power on through the BMC, which knows no machine yet).
            bmc = IpmiSimBmc(
                workdir / "bmc", "10.81.0.100", 623, user="admin", password="vm-bmc-pass", name="vmbmc", hook=hook
            ).start(host=bmchost)
            t = time.monotonic()
            ipmi(bmchost, "on")
            machine = wait_until(lambda: machine_of(stack), 600, 3.0, "the VM to enlist")
            sid = machine["system_id"]
            wait_until(lambda: not bmc.power, 300, 2.0, "the VM to power off after enlisting")
            times["enlist"] = time.monotonic() - t
            enlisted = stack.api("machine", "read", sid)
            if enlisted["status_name"] != "New":
                raise SystemExit(f"enlisted as {enlisted['status_name']}, not New")
            stack.api(
                "machine",
                "update",
                sid,
                "power_type=ipmi",
                "power_parameters_power_address=10.81.0.100",
                "power_parameters_power_user=admin",
                "power_parameters_power_pass=vm-bmc-pass",
                "power_parameters_cipher_suite_id=3",
            )
            t = time.monotonic()
            stack.api("machine", "commission", sid)
            wait_status(stack, sid, "Ready", 900, serial)
            times["commission"] = time.monotonic() - t
            key, public = make_ssh_key(workdir)
            stack.api("sshkeys", "create", f"key={public}")
            parts = {"region": region, "rack": rack, "bmchost": bmchost, "bmc": bmc, "serial": serial}
            for n in range(args.rounds):
                rounds.append(one_round(stack, parts, sid, key, debian.root_tgz.size))
                print(f"round {n + 1}/{args.rounds} done", flush=True)
            if args.keep:
                print(f"lab work dir: {workdir}")
    finally:
        databases.stop()
    times["total"] = time.monotonic() - started
    report(times, rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
