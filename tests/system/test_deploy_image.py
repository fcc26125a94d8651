"""Deploying a machine to its disk, on a real VM: the Debian image (images build-debian)
and the installer (the ephemeral image's deploy mode).

A qemu VM (TCG) in a namespace lab (tests.support.deploy_lab) boots the ephemeral
kernel and initrd directly with mp_mode=deploy; the installer partitions its 2 GiB virtio
disk, streams the root tarball from the lab's HTTP server and installs GRUB, reporting to
a stand-in for the region's deploy endpoints, which records what it is sent; then the
test reads the disk back. A VM without a disk shows the installer failing cleanly.

Booting the installed disk (PXE, the rack's local-boot iPXE script, GRUB, Debian, the
first-boot agent running user_data and reporting "deployed", SSH from another namespace
with the key given) is bench/deploy_bench.py: under TCG on this machine's shared cores
that boot takes 1.5-5 minutes on top of this module's 3-8 (docs/benchmarks.md, "Deploy to
disk"; every bench round asserts all of it).

The Debian image here has Debian's kernel for VMs (linux-image-cloud-amd64): the same
builder, installer and agent as the default image (linux-image-amd64, which the bench
deploys), but a third smaller. It is built once per version of its builder
(deploy_lab.cached_debian_image: 2-4 minutes here) and reused; the ephemeral image is
built each run.
"""

from __future__ import annotations

import json
import shutil

import pytest

from metalplane.images.build import BuildError, build_ephemeral
from metalplane.images.simplestreams import INDEX_PATH, parse_products, product_paths
from tests.support.deploy_lab import (
    METADATA_URL,
    REGION_IP,
    TOKEN,
    VM_IP,
    VM_MAC,
    DeployLab,
    cached_debian_image,
    gpt_partitions,
    make_ssh_key,
    read_installed,
)
from tests.support.netlab import Lab

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="qemu-system-x86 not installed"),
    pytest.mark.skipif(shutil.which("debootstrap") is None, reason="debootstrap not installed"),
    pytest.mark.timeout(2400),
]

INSTALL_TIMEOUT = 1200  # TCG on 2 shared cores: ~3-7 min
USER_DATA = b"#!/bin/sh\necho 'user_data was here' > /var/tmp/user-data-ran\necho ran as $(id -u)\n"
TEST_KERNEL = "linux-image-cloud-amd64"
STEPS = ["config", "disk", "partition", "format", "image", "configure", "bootloader"]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    try:
        ephemeral = build_ephemeral(tmp_path_factory.mktemp("ephemeral"), version="20261201.1", release="bookworm")
        debian = cached_debian_image(kernel=TEST_KERNEL)
    except BuildError as exc:
        pytest.fail(f"could not build the images: {exc}")
    return ephemeral, debian


@pytest.fixture(scope="module")
def deploy(images, tmp_path_factory):
    _, debian = images
    keys = tmp_path_factory.mktemp("keys")
    key, public = make_ssh_key(keys)
    with Lab() as lab:
        dl = DeployLab(lab, debian.out, debian.root_tgz, [public], user_data=USER_DATA).start()
        dl.key = key
        dl.disk = dl.new_disk(dl.workdir / "disk.raw")
        yield dl


def install(dl: DeployLab, images, disk, name: str, after: str = "reboot") -> float:
    ephemeral, _ = images
    return dl.run_vm(
        dl.install_command(ephemeral.path("boot-kernel"), ephemeral.path("boot-initrd"), disk, dl.serial(name), after),
        name,
        INSTALL_TIMEOUT,
    )


def body(record: dict) -> dict:
    return json.loads(record["body"])


def test_the_debian_image_is_a_simplestreams_mirror(images):
    _, debian = images
    index = json.loads((debian.out / INDEX_PATH).read_text())
    (path,) = product_paths(index)
    (image,) = parse_products(path, json.loads((debian.out / path).read_text()))
    assert (image.name, image.architecture) == ("debian/bookworm", "amd64/generic")
    assert {i.ftype for i in image.items} == {"root-tgz", "manifest"}
    manifest = (debian.out / next(i.path for i in image.items if i.ftype == "manifest")).read_text()
    packages = {line.split("\t")[0] for line in manifest.splitlines()}
    assert {"openssh-server", "grub-pc", "systemd-sysv", "sudo", "wget"} <= packages
    assert any(p.startswith("linux-image-") for p in packages)
    assert debian.root_tgz.size < 250 << 20


def test_the_region_imports_the_debian_image(images, region):
    _, debian = images
    job = region.import_mirror(debian.out, timeout=300)
    assert job["state"] == "done", job
    with region.api() as api:
        (resource,) = [r for r in api.get("boot-resources/").json() if r["name"] == "debian/bookworm"]
        detail = api.get(f"boot-resources/{resource['id']}/").json()
    (version,) = detail["sets"].values()
    assert version["complete"] is True
    assert version["files"]["root-tgz"]["sha256"] == debian.root_tgz.sha256


def test_without_a_disk_the_installer_fails_with_its_output(deploy, images):
    deploy.clear_records()
    install(deploy, images, None, "nodisk", after="poweroff")
    console = deploy.console("nodisk")
    assert "metalplane: finished: FAILED" in console, console[-3000:]
    (done,) = deploy.posts("deploy/done")
    assert body(done) == {"result": "failed", "step": "disk", "message": body(done)["message"]}
    assert body(done)["message"].startswith("no disk to install to: /sys/block has no disk")
    (result,) = deploy.posts("deploy/installation")
    assert result["query"]["exit_status"] == ["1"] and result["content_type"] == "text/plain; charset=utf-8"
    assert "FAILED: no disk to install to" in result["body"] and "== step disk: failed" in result["body"]
    events = [(body(e)["step"], body(e)["status"]) for e in deploy.posts("deploy/events")]
    assert events == [("config", "started"), ("config", "ok"), ("disk", "started"), ("disk", "failed")]
    assert all(r["auth"] == f"Token {TOKEN}" for r in deploy.records() if r["path"].startswith("/MAAS/"))


def test_the_installer_writes_the_image_and_grub_to_the_disk(deploy, images):
    _, debian = images
    deploy.clear_records()
    took = install(deploy, images, deploy.disk, "install")
    console = deploy.console("install")
    assert "metalplane: finished: success" in console, console[-4000:]
    (done,) = deploy.posts("deploy/done")
    assert body(done) == {"result": "ok", "step": "", "message": ""}
    events = [(body(e)["step"], body(e)["status"]) for e in deploy.posts("deploy/events")]
    assert events == [(s, status) for s in STEPS for status in ("started", "ok")]
    (result,) = deploy.posts("deploy/installation")
    log = result["body"]
    assert result["query"]["exit_status"] == ["0"]
    assert f"image written: {debian.root_tgz.size} bytes fetched, checked and unpacked" in log
    assert 'name="bios_grub"' in log and "grub-install --target=i386-pc /dev/vda" in log
    fetched = [r["path"] for r in deploy.records() if r["method"] == "GET"]
    assert fetched == [
        "/MAAS/metadata/deploy/config",
        "/MAAS/metadata/deploy/user-data",
        f"/images/{debian.root_tgz.sha256}",
    ]
    print(f"\ninstall VM run: {took:.0f} s")


def test_the_disk_holds_maas_flat_layout_grub_and_the_configured_debian(deploy):
    """Read back what the installer wrote, from the host (a read-only loop mount in a private
    mount namespace): the partition table, GRUB in the boot sector, the root file system."""
    with open(deploy.disk, "rb") as f:
        head = f.read(1 << 20)
    bios_grub, root = gpt_partitions(head)
    assert (bios_grub.name, bios_grub.type, bios_grub.first_lba, bios_grub.last_lba) == (
        "bios_grub",
        "21686148-6449-6E6F-744E-656564454649",
        2048,
        4095,
    )  # 1 MiB at 1 MiB
    assert (root.name, root.type, root.first_lba) == ("root", "0FC63DAF-8483-4772-8E79-3D69D8477DE4", 8192)
    # to the end: its size a multiple of 4 MiB, at least 1 MiB left free after it
    assert (root.last_lba + 1 - root.first_lba) * 512 % (4 << 20) == 0
    assert (2 << 30) - (5 << 20) < (root.last_lba + 1) * 512 <= (2 << 30) - (1 << 20)
    assert b"GRUB" in head[:512]  # GRUB's boot.img in the protective MBR
    files = read_installed(
        deploy.disk,
        root,
        [
            "/etc/fstab",
            "/etc/hostname",
            "/etc/hosts",
            "/etc/resolv.conf",
            "/etc/systemd/network/50-metalplane-0.network",
            "/home/debian/.ssh/authorized_keys",
            "/etc/metalplane/agent.conf",
            "/var/lib/metalplane/user_data",
            "/boot/grub/grub.cfg",
            "/usr/bin/sudo",
            "/etc/ssh/ssh_host_ed25519_key",
        ],
    )

    def text(path: str) -> str:
        return files[path][1].decode()

    (root_uuid,) = [
        line.split()[0].removeprefix("UUID=") for line in text("/etc/fstab").splitlines() if line.startswith("UUID=")
    ]
    assert f"UUID={root_uuid} / ext4 errors=remount-ro 0 1" in text("/etc/fstab")
    assert f"root=UUID={root_uuid}" in text("/boot/grub/grub.cfg")  # update-grub found it by UUID
    assert "console=ttyS0,115200n8" in text("/boot/grub/grub.cfg")
    assert text("/etc/hostname") == "deployed1\n" and "deployed1.maas deployed1" in text("/etc/hosts")
    assert text("/etc/resolv.conf").splitlines()[1:] == ["search maas", f"nameserver {REGION_IP}"]
    network = text("/etc/systemd/network/50-metalplane-0.network")
    assert f"MACAddress={VM_MAC}" in network and f"Address={VM_IP}/24" in network
    keys, key_bytes = files["/home/debian/.ssh/authorized_keys"]
    assert key_bytes.decode().strip() == deploy.config["ssh_keys"][0] and keys.mode == 0o600
    agent, agent_bytes = files["/etc/metalplane/agent.conf"]
    assert agent_bytes.decode() == f"metadata_url={METADATA_URL}\ntoken={TOKEN}\nsystem_id=lab001\n"
    assert agent.mode == 0o600 and (agent.uid, agent.gid) == (0, 0)
    assert files["/var/lib/metalplane/user_data"][1] == USER_DATA
    sudo = files["/usr/bin/sudo"][0]
    assert (sudo.mode, sudo.uid) == (0o4755, 0)  # busybox tar kept setuid and owners
    assert "/etc/ssh/ssh_host_ed25519_key" not in files  # the machine makes its own at first boot
