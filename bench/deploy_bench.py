"""Deploying a VM to its disk under TCG: image write rate, installer and first-boot times.

    .venv/bin/python bench/deploy_bench.py [--rounds 3] [--rebuild] [--kernel PACKAGE] [--firmware bios|uefi]
        [--write docs/benchmarks.md]

The lab of tests/system/test_deploy_image.py (tests.support.deploy_lab): a qemu VM
(TCG, 2 vCPUs, 1 GiB, virtio NIC and 2 GiB raw virtio disk) in a namespace lab, the
ephemeral image booted directly with mp_mode=deploy against the lab's stand-in for the
region's deploy endpoints, which also serves the root tarball over HTTP. Each round, on a
fresh disk:

1. install: from qemu's start (ephemeral kernel) to its exit after the installer's reboot;
   within it the installer's own run time, its `image` step (fetch + sha256 + unpack in one
   pass: the image write) and its `bootloader` step (grub-install + update-grub);
2. first boot: from qemu's start to the first-boot agent's "deployed" report: the VM
   PXE-boots, iPXE runs the rack's local-boot script (sanboot the first disk), then GRUB,
   kernel, systemd, SSH host keys, network online, user_data; then SSH from another
   namespace must answer, and the VM is powered off through it. Each round checks what
   tests/system/test_deploy_image.py leaves to it: iPXE fetched the local-boot script,
   GRUB came up, the report (hostname, the static address on the VM's MAC, user_data ran
   as root with exit 0), and over SSH the hostname, the file user_data wrote, passwordless
   sudo, / on ext4 "root", root=UUID on the kernel command line.

Medians over the rounds (each round's values are listed). The image write rate is the
tarball's size (and its unpacked size) over the `image` step's time. The Debian image is
the tests' cached build (rebuilt, and its build timed, with --rebuild or when its sources
changed); the ephemeral image is built each run. `--firmware uefi` runs the VM on OVMF
(package ovmf): the installer makes the EFI system partition and installs GRUB's EFI
image, and the local-boot script exits to the firmware, which boots the disk.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "src"), str(REPO)]  # metalplane, and the test house (tests.support)

from benchdoc import cpu_model, publish  # noqa: E402

from metalplane.images.build import build_ephemeral  # noqa: E402
from tests.support.deploy_lab import LOCAL_BOOT_SCRIPT, VM_IP, VM_MAC, DeployLab, cached_debian_image, make_ssh_key  # noqa: E402
from tests.support.netlab import Lab  # noqa: E402

USER_DATA = b"#!/bin/sh\necho 'user_data was here' > /var/tmp/user-data-ran\necho ran as $(id -u)\n"


def step_seconds(install_log: str, step: str) -> float:
    found = re.search(rf"^== step {step}: ok after ([0-9.]+)s$", install_log, re.M)
    if not found:
        raise RuntimeError(f"the installer did not finish step {step}:\n{install_log[-3000:]}")
    return float(found.group(1))


def check_first_boot(dl: DeployLab, booted: dict, key: Path, console: str) -> None:
    """What a deployed machine must show: the agent's report, then SSH with the key given."""
    problems = []
    if [r["path"] for r in dl.records()][:1] != [f"/images/{LOCAL_BOOT_SCRIPT}"]:
        problems.append("iPXE did not fetch the local-boot script first")
    if "GNU GRUB" not in console:
        problems.append("no GRUB on the console")
    expected = {"result": "ok", "system_id": "lab001", "hostname": "deployed1"}
    if {k: booted.get(k) for k in expected} != expected:
        problems.append(f"report: {booted}")
    if [(i["mac"], i["addresses"]) for i in booted.get("interfaces", [])] != [(VM_MAC, [f"{VM_IP}/24"])]:
        problems.append(f"interfaces: {booted.get('interfaces')}")
    user_data = booted.get("user_data", {})
    if (user_data.get("ran"), user_data.get("exit_status"), user_data.get("output")) != (True, 0, "ran as 0"):
        problems.append(f"user_data: {user_data}")
    out = dl.client.run(
        dl.ssh_command(
            key,
            "cat /etc/hostname /var/tmp/user-data-ran; sudo -n id -u; findmnt -n -o FSTYPE,LABEL /; cat /proc/cmdline",
        ),
        timeout=120,
    ).stdout.splitlines()
    if (
        out[:3] != ["deployed1", "user_data was here", "0"]
        or out[3].split() != ["ext4", "root"]
        or "root=UUID=" not in out[4]
    ):
        problems.append(f"over SSH: {out}")
    if problems:
        raise RuntimeError("the deployed machine is not right: " + "; ".join(problems))


def one_round(dl: DeployLab, ephemeral, key: Path, n: int) -> dict[str, float]:
    disk = dl.new_disk(dl.workdir / f"disk-{n}.raw")
    dl.clear_records()
    install = dl.run_vm(
        dl.install_command(
            ephemeral.path("boot-kernel"), ephemeral.path("boot-initrd"), disk, dl.serial(f"install-{n}")
        ),
        f"install-{n}",
        1800,
    )
    (done,) = dl.posts("deploy/done")
    if json.loads(done["body"])["result"] != "ok":
        raise RuntimeError(f"round {n}: the install failed: {done['body']}")
    (result,) = dl.posts("deploy/installation")
    log = result["body"]
    dl.clear_records()
    started = time.monotonic()
    vm = dl.start_vm(dl.disk_command(disk, dl.serial(f"boot-{n}"), pxe_first=True), f"boot-{n}")
    try:
        booted = json.loads(dl.wait_for_post("deploy/booted", 1200, vm, f"boot-{n}")["body"])
        first_boot = time.monotonic() - started
        check_first_boot(dl, booted, key, dl.console(f"boot-{n}"))
        dl.client.run(dl.ssh_command(key, "sudo -n systemctl poweroff"), check=False, timeout=60)
        vm.wait(300)
    finally:
        dl.lab.fabric.stop(vm)
    disk.unlink()
    return {
        "install": install,
        "installer": float(result["query"]["runtime"][0]),
        "image": step_seconds(log, "image"),
        "bootloader": step_seconds(log, "bootloader"),
        "first_boot": first_boot,
        "total": install + first_boot,
    }


def unpacked_bytes(tgz: Path) -> int:
    import tarfile

    with tarfile.open(tgz) as tar:
        return sum(m.size for m in tar if m.isfile())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rebuild", action="store_true", help="build the Debian image again (and time it)")
    p.add_argument(
        "--kernel",
        default="linux-image-amd64",
        help="the image's kernel package (default linux-image-amd64; the tests use linux-image-cloud-amd64)",
    )
    p.add_argument("--firmware", choices=("bios", "uefi"), default="bios")
    p.add_argument("--write", metavar="FILE", help="replace this benchmark's section of FILE (docs/benchmarks.md)")
    args = p.parse_args()
    if args.rebuild:
        os.environ["METALPLANE_TEST_REBUILD"] = "1"
    wall = time.monotonic()
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    debian = cached_debian_image(kernel=args.kernel, log=lambda line: print(line, flush=True))
    os.environ.pop("METALPLANE_TEST_REBUILD", None)
    tgz = debian.out / debian.root_tgz.path
    unpacked = unpacked_bytes(tgz)
    with tempfile.TemporaryDirectory(prefix="mp-deploy-bench-") as tmp:
        ephemeral = build_ephemeral(Path(tmp), version="20261201.1", release="bookworm")
        initrd_size = ephemeral.path("boot-initrd").stat().st_size
        key, public = make_ssh_key(Path(tmp))
        rounds = []
        with Lab() as lab:
            dl = DeployLab(
                lab, debian.out, debian.root_tgz, [public], user_data=USER_DATA, firmware=args.firmware
            ).start()
            for n in range(1, args.rounds + 1):
                rounds.append(one_round(dl, ephemeral, key, n))
                print(f"round {n}: " + ", ".join(f"{k} {v:.1f} s" for k, v in rounds[-1].items()), flush=True)
    load_after = Path("/proc/loadavg").read_text().split()[:3]

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    def each(key: str) -> str:
        return " / ".join(f"{r[key]:.0f}" for r in rounds)

    size = debian.root_tgz.size
    rows = [
        ("install: qemu start (ephemeral kernel) to the installer's reboot", "install"),
        ("of which the installer's run (`deploy/installation` runtime)", "installer"),
        ("of which the image write (`image` step: fetch + sha256 + unpack)", "image"),
        ("of which the bootloader (`bootloader` step: grub-install + update-grub)", "bootloader"),
        ("first boot: qemu start (PXE, local-boot script, disk) to the agent's `deploy/booted`", "first_boot"),
        ("total (install + first boot)", "total"),
    ]
    lines = [
        "## Deploy to disk (installer and first boot, qemu TCG)"
        if args.firmware == "bios"
        else "## Deploy to disk, UEFI (installer and first boot, qemu TCG, OVMF)",
        "",
        "A VM installed to its disk and booted from it, in the namespace lab of "
        "`tests/system/test_deploy_image.py` (`tests.support.deploy_lab`): qemu TCG (/dev/kvm hangs "
        f"here), {'SeaBIOS' if args.firmware == 'bios' else 'OVMF (q35)'} with the NIC's iPXE ROM, 2 vCPUs, "
        "1 GiB, virtio NIC and a 2 GiB raw virtio disk (`cache=unsafe`), the ephemeral image "
        "booted with `-kernel/-initrd` and `mp_mode=deploy` (no PXE: the time from PXE to the installer is the "
        "boot path's), the root tarball over HTTP from a namespace on the same bridge. Everything runs on the "
        "machine's shared cores, so TCG times swing with the load: compare rounds of one run.",
        "",
        f"- command: `.venv/bin/python bench/deploy_bench.py --rounds {args.rounds}"
        + (f" --kernel {args.kernel}" if args.kernel != "linux-image-amd64" else "")
        + (" --firmware uefi" if args.firmware == "uefi" else "")
        + " --write docs/benchmarks.md`",
        f"- machine: {os.cpu_count()} x {cpu_model()}, Linux {platform.release()}",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; bench wall time "
        f"{time.monotonic() - wall:.0f} s; load average before/after: {' '.join(load_before)} / {' '.join(load_after)}",
        f"- image: debian/bookworm ({args.kernel}) root-tgz {size / 1e6:.1f} MB ({unpacked / 1e6:.0f} MB unpacked); "
        f"ephemeral initrd {initrd_size / 1e6:.1f} MB"
        + (f"; image build {debian.built_seconds:.0f} s" if debian.built_seconds else ""),
        "",
        "| phase | median s | rounds (s) |",
        "| --- | ---: | --- |",
        *(f"| {label} | {med(key):.1f} | {each(key)} |" for label, key in rows),
        "",
        f"Image write rate (median): {size / med('image') / 1e6:.2f} MB/s of tarball, "
        f"{unpacked / med('image') / 1e6:.2f} MB/s unpacked onto ext4.",
    ]
    publish("\n".join(lines), args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
