"""A namespace lab for deploying a qemu VM to its disk: the installer's system test and bench.

    with Lab() as lab:
        dl = DeployLab(lab, root_tgz, ssh_public_key, user_data=b"#!/bin/sh\\n...").start()
        dl.run_vm(dl.install_command(ephemeral, disk), "install")     # boots the installer
        vm = dl.start_vm(dl.disk_command(disk), "firstboot")         # boots the disk
        dl.wait_for(lambda r: r["path"].endswith("/deploy/booted"), 600)
        dl.client.run(dl.ssh_command(key, "cat /etc/hostname"))

One network (10.90.0.0/24, a bridge in the lab's fabric namespace):
- host "region" (10.90.0.10): busybox udhcpd (the VM's lease, 10.90.0.50) and the deploy
  stub (tests.support.deploy_stub) on port 5240, which plays the region's deploy
  endpoints and serves the root tarball the way the rack does;
- host "client" (10.90.0.20): where SSH comes from;
- the VM: qemu (TCG; /dev/kvm hangs here) in the fabric namespace on a TAP, virtio NIC
  and disk. Its serial console goes to a file per run.

The region's deploy states are not part of this lab (another part of metalplane): the
stub answers what the installer and the first-boot agent ask for, records what they
send, and the tests assert on those records.

`cached_debian_image` builds the deployable image once per set of inputs (the
builder's and the agent's source) and keeps it under $METALPLANE_CACHE_DIR/test-images:
building takes minutes, while the installer's tests are about the installer.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from metalplane.images.build import cache_dir
from metalplane.images.simplestreams import INDEX_PATH, StreamItem, parse_products, product_paths
from metalplane.rack.boot.configs import ipxe_local_boot
from tests.support import module_command
from tests.support.netlab import Lab, NetnsProcess
from tests.support.processes import wait_until

CIDR = "10.90.0.0/24"
NETWORK = "deploy"
REGION_IP, CLIENT_IP, VM_IP = "10.90.0.10", "10.90.0.20", "10.90.0.50"
PORT = 5240
VM_MAC = "52:54:00:90:00:50"
TOKEN = "deploy-lab-token"
DISK_SERIAL = "MPDEPLOY1"
METADATA_URL = f"http://{REGION_IP}:{PORT}/MAAS/metadata/"
LOCAL_BOOT_SCRIPT = "local.ipxe"
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")


# -- the deployable image, built once per input ------------------------------------------------


def _image_inputs_key(release: str, kernel: str) -> str:
    from importlib import resources

    import metalplane.images.debian as debian

    digest = hashlib.sha256(f"{release} {kernel}".encode())
    digest.update(Path(debian.__file__).read_bytes())
    digest.update(resources.files("metalplane.images.deployed").joinpath("firstboot.sh").read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class BuiltImage:
    out: Path  # the simplestreams mirror
    root_tgz: StreamItem
    built_seconds: float | None  # None when it came from the cache


def _read_image(out: Path) -> StreamItem:
    index = json.loads((out / INDEX_PATH).read_text())
    for products in product_paths(index):
        for image in parse_products(products, json.loads((out / products).read_text())):
            for item in image.items:
                if item.ftype == "root-tgz":
                    return item
    raise FileNotFoundError(f"{out} has no root-tgz")


def cached_debian_image(
    release: str = "bookworm", kernel: str = "linux-image-amd64", log: Callable[[str], None] = lambda line: None
) -> BuiltImage:
    """The deployable image of the current sources, built (or found) under the cache."""
    from metalplane.images.debian import build_debian

    base = cache_dir() / "test-images"
    base.mkdir(parents=True, exist_ok=True)
    flavour = "cloud" if "cloud" in kernel else "generic"
    out = base / f"debian-{release}-{flavour}-{_image_inputs_key(release, kernel)}"
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time, also across test sessions
        if (out / INDEX_PATH).is_file() and not os.environ.get("METALPLANE_TEST_REBUILD"):
            return BuiltImage(out, _read_image(out), None)
        for old in base.glob(f"debian-{release}-{flavour}-*"):
            shutil.rmtree(old)
        started = time.monotonic()
        building = base / f".building-{os.getpid()}"
        shutil.rmtree(building, ignore_errors=True)
        build_debian(building, release=release, version="1", kernel=kernel, log=log)
        building.rename(out)
        return BuiltImage(out, _read_image(out), time.monotonic() - started)


# -- what the region would serve (pure) --------------------------------------------------------


def deploy_config(
    image: StreamItem, ssh_keys: list[str], *, hostname: str = "deployed1", image_url: str | None = None
) -> dict:
    """deploy/config for the lab's VM: its disk, a static address on its NIC, the image."""
    return {
        "system_id": "lab001",
        "hostname": hostname,
        "domain": "maas",
        "disk": {"serial": DISK_SERIAL, "name": "vda"},
        "layout": "flat",
        "image": {
            "urls": [image_url or f"http://{REGION_IP}:{PORT}/images/{image.sha256}"],
            "sha256": image.sha256,
            "size": image.size,
            "filetype": "root-tgz",
            "name": "debian/bookworm",
        },
        "interfaces": [{"mac": VM_MAC, "name": "eth0", "mode": "static", "address": f"{VM_IP}/24"}],
        "dns": {"servers": [REGION_IP], "search": ["maas"]},
        "ssh_keys": ssh_keys,
    }


def udhcpd_config(interface: str, leases: Path, pidfile: Path) -> str:
    return (
        f"start {VM_IP}\nend 10.90.0.59\ninterface {interface}\nlease_file {leases}\npidfile {pidfile}\n"
        f"option subnet 255.255.255.0\noption dns {REGION_IP}\noption lease 600\n"
        f"static_lease {VM_MAC} {VM_IP}\n"
        # iPXE (the ROM of qemu's NIC) runs this script: the rack's answer for a deployed machine
        f"boot_file http://{REGION_IP}:{PORT}/images/{LOCAL_BOOT_SCRIPT}\n"
    )


def radvd_config(interface: str) -> str:
    """Router advertisements that only end iPXE's IPv6 wait (no default route, no addresses)."""
    return (
        f"interface {interface} {{\n  AdvSendAdvert on;\n  MinRtrAdvInterval 3;\n  MaxRtrAdvInterval 10;\n"
        "  AdvDefaultLifetime 0;\n  prefix fd90::/64 { AdvOnLink on; AdvAutonomous off; };\n};\n"
    )


# -- reading an installed disk from the host ---------------------------------------------------


@dataclass(frozen=True)
class GptPartition:
    number: int
    name: str
    type: str  # the type GUID, upper case
    first_lba: int
    last_lba: int


def gpt_partitions(head: bytes) -> list[GptPartition]:
    """The partitions of a GPT disk, from its first sectors (512-byte sectors; pure)."""
    if head[512:520] != b"EFI PART":
        raise ValueError("no GPT header at LBA 1")
    entries_lba, count, size = struct.unpack_from("<QII", head, 512 + 72)
    found = []
    for i in range(count):
        at = entries_lba * 512 + i * size
        entry = head[at : at + size]
        if len(entry) < 128:
            raise ValueError("the partition entries are beyond the bytes given")
        if entry[:16] == bytes(16):
            continue
        first, last = struct.unpack_from("<QQ", entry, 32)
        name = entry[56:128].decode("utf-16-le").rstrip("\0")
        found.append(GptPartition(i + 1, name, str(uuid.UUID(bytes_le=entry[:16])).upper(), first, last))
    return found


def read_installed(
    disk: Path, partition: GptPartition, paths: Iterable[str]
) -> dict[str, tuple[tarfile.TarInfo, bytes | None]]:
    """Files of an installed partition, read through a read-only loop mount that only a private
    mount namespace sees (unshare -m): {path: (its tar header: mode, owner, link; its bytes)}."""
    with tempfile.TemporaryDirectory(prefix="mp-disk-") as mnt:
        script = (
            f'mount -o ro,noload,loop,offset={partition.first_lba * 512} "$1" "$2" && '
            'cd "$2" && shift 2 && exec tar -cf - --ignore-failed-read "$@"'
        )
        done = subprocess.run(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "sh",
                str(disk),
                mnt,
                *[p.lstrip("/") for p in paths],
            ],
            capture_output=True,
            timeout=120,
        )
    if not done.stdout:
        raise RuntimeError(f"could not read {disk}: {done.stderr.decode(errors='replace')}")
    found: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        for member in tar:
            f = tar.extractfile(member) if member.isfile() else None
            found["/" + member.name] = (member, f.read() if f else None)
    return found


# -- the lab -----------------------------------------------------------------------------------


def make_ssh_key(directory: Path) -> tuple[Path, str]:
    key = directory / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "deploy-lab", "-f", str(key)],
        check=True,
        capture_output=True,
    )
    return key, (directory / "id_ed25519.pub").read_text().strip()


def ssh_command(key: Path, address: str, command: str) -> list[str]:
    """`command` on a deployed machine, as its `debian` user with `key`; no host key checks."""
    return [
        "ssh",
        "-i",
        str(key),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=20",
        "-o",
        "LogLevel=ERROR",
        f"debian@{address}",
        command,
    ]


class DeployLab:
    def __init__(
        self,
        lab: Lab,
        mirror: Path,
        image: StreamItem,
        ssh_keys: list[str],
        *,
        user_data: bytes | None = None,
        cpus: int = 2,
        memory_mib: int = 1024,
        config: dict | None = None,
        firmware: str = "bios",
    ):
        self.lab = lab
        self.mirror = mirror
        self.image = image
        self.config = config or deploy_config(image, ssh_keys)
        self.user_data = user_data
        self.cpus, self.memory_mib = cpus, memory_mib
        self.firmware = firmware  # "bios" (SeaBIOS) or "uefi" (OVMF, package ovmf)
        self.workdir = lab.new_workdir("deploy")
        self.record = self.workdir / "requests.jsonl"

    def start(self) -> DeployLab:
        lab = self.lab
        lab.add_network(NETWORK, CIDR)
        self.region = lab.add_host("region", {NETWORK: f"{REGION_IP}/24"})
        self.client = lab.add_host("client", {NETWORK: f"{CLIENT_IP}/24"})
        self.tap = lab.add_tap(NETWORK)
        images = self.workdir / "images"
        images.mkdir()
        os.link(self.mirror / self.image.path, images / self.image.sha256)
        (images / LOCAL_BOOT_SCRIPT).write_text(ipxe_local_boot())
        (self.workdir / "config.json").write_text(json.dumps(self.config, indent=1))
        udhcpd = self.workdir / "udhcpd.conf"
        udhcpd.write_text(
            udhcpd_config(self.region.ifname(NETWORK), self.workdir / "udhcpd.leases", self.workdir / "udhcpd.pid")
        )
        (self.workdir / "udhcpd.leases").touch()
        self.region.spawn(["busybox", "udhcpd", "-f", str(udhcpd)])
        radvd = self.workdir / "radvd.conf"
        radvd.write_text(radvd_config(self.region.ifname(NETWORK)))
        self.region.spawn(["radvd", "-n", "-C", str(radvd), "-p", str(self.workdir / "radvd.pid"), "-m", "stderr"])
        args = [
            "--listen",
            f"{REGION_IP}:{PORT}",
            "--token",
            TOKEN,
            "--config",
            str(self.workdir / "config.json"),
            "--image-dir",
            str(images),
            "--record",
            str(self.record),
        ]
        if self.user_data is not None:
            (self.workdir / "user_data").write_bytes(self.user_data)
            args += ["--user-data", str(self.workdir / "user_data")]
        command, env = module_command("tests.support.deploy_stub", *args)
        stub = self.region.spawn(command, env=env)
        wait_until(lambda: "listening" in stub.log() or stub.poll() is not None, 30, what="the deploy stub")
        if stub.poll() is not None:
            raise RuntimeError(f"the deploy stub exited: {stub.log()}")
        return self

    # -- VMs

    def _vm(self, serial: Path, extra: list[str], disk: Path | None, net_boot: bool) -> list[str]:
        """The VM: SeaBIOS, or OVMF (UEFI) with its variable store kept next to the disk.

        Boot order by bootindex (OVMF ignores -boot): the NIC first when `net_boot`.
        """
        firmware: list[str] = []
        if self.firmware == "uefi":
            variables = (disk or self.workdir / "nodisk").with_suffix(".vars")
            if not variables.exists():
                shutil.copyfile(OVMF_VARS, variables)
            firmware = [
                "-machine",
                "q35",
                "-drive",
                f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
                "-drive",
                f"if=pflash,format=raw,file={variables}",
            ]
        nic = f"virtio-net-pci,netdev=n0,mac={VM_MAC}" + (",bootindex=1" if net_boot else "")
        drive = []
        if disk is not None:
            # cache=unsafe: the host does not flush a throwaway test disk to its own storage.
            drive = [
                "-drive",
                f"file={disk},if=none,id=d0,format=raw,cache=unsafe",
                "-device",
                f"virtio-blk-pci,drive=d0,serial={DISK_SERIAL},bootindex=2",
            ]
        return [
            "qemu-system-x86_64",
            "-accel",
            "tcg",
            "-m",
            str(self.memory_mib),
            "-smp",
            str(self.cpus),
            *firmware,
            "-no-reboot",
            "-display",
            "none",
            "-serial",
            f"file:{serial}",
            "-netdev",
            f"tap,id=n0,ifname={self.tap},script=no,downscript=no",
            "-device",
            nic,
            *drive,
            *extra,
        ]

    def install_command(
        self, kernel: Path, initrd: Path, disk: Path | None, serial: Path, after: str = "reboot"
    ) -> list[str]:
        append = (
            f"console=ttyS0 mp_mode=deploy mp_after={after} token={TOKEN} metadata_url={METADATA_URL} "
            f"BOOTIF=01-{VM_MAC.replace(':', '-')}"
        )
        return self._vm(serial, ["-kernel", str(kernel), "-initrd", str(initrd), "-append", append], disk, False)

    def disk_command(self, disk: Path, serial: Path, *, pxe_first: bool = False) -> list[str]:
        return self._vm(serial, [], disk, pxe_first)

    def start_vm(self, command: list[str], name: str) -> NetnsProcess:
        return self.lab.fabric.spawn(command, log=self.workdir / f"{name}.qemu.log")

    def run_vm(self, command: list[str], name: str, timeout: float) -> float:
        """Run a VM until it powers off or reboots (-no-reboot); its run time in seconds."""
        started = time.monotonic()
        vm = self.start_vm(command, name)
        try:
            vm.wait(timeout)
        except subprocess.TimeoutExpired:
            self.lab.fabric.stop(vm)
            raise TimeoutError(
                f"the {name} VM did not finish within {timeout:.0f} s; console:\n" + self.console(name)[-4000:]
            ) from None
        return time.monotonic() - started

    def serial(self, name: str) -> Path:
        return self.workdir / f"{name}.console"

    def console(self, name: str) -> str:
        try:
            return self.serial(name).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @staticmethod
    def new_disk(path: Path, size: int = 2 << 30) -> Path:
        with open(path, "wb") as f:
            f.truncate(size)
        return path

    # -- what the stub recorded

    def clear_records(self) -> None:
        self.record.write_text("")  # the stub appends per request: truncating is safe

    def records(self) -> list[dict]:
        try:
            text = self.record.read_text()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def posts(self, endpoint: str) -> list[dict]:
        return [r for r in self.records() if r["method"] == "POST" and r["path"] == f"/MAAS/metadata/{endpoint}"]

    def wait_for_post(self, endpoint: str, timeout: float, vm: NetnsProcess | None = None, name: str = "") -> dict:
        def seen():
            found = self.posts(endpoint)
            if not found and vm is not None and vm.poll() is not None:
                raise RuntimeError(
                    f"the {name} VM stopped before POST {endpoint}; console:\n" + self.console(name)[-4000:]
                )
            return found[0] if found else None

        try:
            return wait_until(seen, timeout, 1.0, f"POST {endpoint}")
        except TimeoutError:
            raise TimeoutError(
                f"no POST {endpoint} within {timeout:.0f} s; console:\n" + self.console(name)[-4000:]
            ) from None

    def ssh_command(self, key: Path, command: str) -> list[str]:
        return ssh_command(key, VM_IP, command)
