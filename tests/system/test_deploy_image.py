"""Deploying a machine to its disk, on a real VM: the Debian image (images build-debian),
the installer (the ephemeral image's deploy mode) and the first-boot agent.

A qemu VM (TCG) in a namespace lab (metalplane.testing.deploy_lab) boots the ephemeral
kernel and initrd directly with mp_mode=deploy; the installer partitions its 2 GiB virtio
disk, streams the root tarball from the lab's HTTP server and installs GRUB, reporting to
a stand-in for the region's deploy endpoints, which records what it is sent. Then the VM
boots that disk: Debian comes up, the first-boot agent runs user_data and reports
"deployed", and SSH answers from another namespace with the key the installer wrote.
It boots that disk the way a deployed machine does: PXE first, and the rack's local-boot
iPXE script (rack/boot/configs.py) hands it to the disk. A second VM without a disk shows
the installer failing cleanly.

The Debian image here has Debian's kernel for VMs (linux-image-cloud-amd64): the same
builder, installer and agent, but half the tarball, so TCG gets through it in a few
minutes. bench/deploy_bench.py deploys the default image (linux-image-amd64) the same way
and times it. The image is built once per version of its builder
(deploy_lab.cached_debian_image: about 4 minutes here) and reused; the ephemeral image is
built each run.
"""

from __future__ import annotations

import json
import shutil
import time

import pytest

from metalplane.images.build import BuildError, build_ephemeral
from metalplane.images.simplestreams import INDEX_PATH, parse_products, product_paths
from metalplane.testing.deploy_lab import (LOCAL_BOOT_SCRIPT, TOKEN, VM_IP, VM_MAC, DeployLab, cached_debian_image,
                                           make_ssh_key)
from metalplane.testing.netlab import Lab
from metalplane.testing.processes import wait_until

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="qemu-system-x86 not installed"),
    pytest.mark.skipif(shutil.which("debootstrap") is None, reason="debootstrap not installed"),
    pytest.mark.timeout(2400),
]

INSTALL_TIMEOUT = 1200  # TCG on 2 shared cores: ~3-7 min
BOOT_TIMEOUT = 900
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
    return dl.run_vm(dl.install_command(ephemeral.path("boot-kernel"), ephemeral.path("boot-initrd"), disk,
                                        dl.serial(name), after), name, INSTALL_TIMEOUT)


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
    assert fetched == ["/MAAS/metadata/deploy/config", "/MAAS/metadata/deploy/user-data",
                       f"/images/{debian.root_tgz.sha256}"]
    print(f"\ninstall VM run: {took:.0f} s")


def test_pxe_boots_the_disk_into_debian_which_runs_user_data_reports_deployed_and_answers_ssh(deploy):
    """The machine PXE-boots as it would from a rack; the rack's local-boot iPXE script sends it to
    its disk: GRUB, Debian, the first-boot agent."""
    deploy.clear_records()
    started = time.monotonic()
    vm = deploy.start_vm(deploy.disk_command(deploy.disk, deploy.serial("firstboot"), pxe_first=True), "firstboot")
    try:
        booted = body(deploy.wait_for_post("deploy/booted", BOOT_TIMEOUT, vm, "firstboot"))
        print(f"\nPXE to deployed: {time.monotonic() - started:.0f} s")
        assert [r["path"] for r in deploy.records()][0] == f"/images/{LOCAL_BOOT_SCRIPT}"  # iPXE ran it
        assert "GNU GRUB" in deploy.console("firstboot")
        assert booted["result"] == "ok" and booted["system_id"] == "lab001"
        assert booted["hostname"] == "deployed1"
        assert booted["interfaces"] == [{"name": booted["interfaces"][0]["name"], "mac": VM_MAC,
                                         "addresses": [f"{VM_IP}/24"]}]
        assert booted["user_data"]["ran"] is True and booted["user_data"]["exit_status"] == 0
        assert booted["user_data"]["output"] == "ran as 0"
        out = deploy.client.run(deploy.ssh_command(deploy.key, "cat /etc/hostname /var/tmp/user-data-ran; "
                                                   "sudo -n id -u; findmnt -n -o FSTYPE,LABEL /; cat /proc/cmdline; "
                                                   "test -e /etc/ssh/ssh_host_ed25519_key && echo hostkey"),
                                timeout=120).stdout.splitlines()
        assert out[:3] == ["deployed1", "user_data was here", "0"]
        assert out[3].split() == ["ext4", "root"]
        assert "root=UUID=" in out[4] and "console=ttyS0,115200n8" in out[4]
        assert out[5] == "hostkey"
        deploy.client.run(deploy.ssh_command(deploy.key, "sudo -n systemctl poweroff"), check=False, timeout=60)
        vm.wait(180)
    finally:
        deploy.lab.fabric.stop(vm)
