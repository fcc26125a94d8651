"""The ephemeral image's disk wipe (ephemeral/erase.sh, run by busybox sh) against a disk
file and, where the host lets us attach one, a real loop block device: quick zeroes the first
and last 2 MiB and leaves the middle alone, full zeroes everything, secure falls back."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.test_installer import BUSYBOX, INIT, needs_busybox

ERASE = Path(INIT).parent / "erase.sh"
MIB = 1024 * 1024
SECTORS = (10 * MIB + 7 * 512) // 512  # not a whole number of MiB: the tail is sector by sector
FILL = b"\xab"


def fake_machine(root: Path, disk: Path) -> dict[str, str]:
    """/sys/block/vdz of `disk`'s size, /dev/vdz pointing to it, a fake /proc."""
    block = root / "sys/block/vdz"
    block.mkdir(parents=True)
    (block / "size").write_text(f"{disk.stat().st_size // 512 if disk.is_file() else SECTORS}\n")
    (root / "sys/block/loop0").mkdir()  # never wiped: loop, ram... devices are skipped
    (root / "sys/block/loop0/size").write_text("2048\n")
    (root / "dev").mkdir()
    (root / "dev/vdz").symlink_to(disk)
    (root / "proc").mkdir()
    (root / "proc/uptime").write_text("12.34 5.00\n")
    (root / "run").mkdir()
    return {
        "MP_SOURCE_ONLY": "1",
        "MP_SYS": str(root / "sys"),
        "MP_PROC": str(root / "proc"),
        "MP_RUN": str(root / "run"),
        "MP_DEV": str(root / "dev"),
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    }


def erase(env: dict[str, str], mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BUSYBOX, "sh", "-c", f". {INIT}\n. {ERASE}\nerase_disks {mode}\n"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def disk_file(path: Path) -> Path:
    path.write_bytes(FILL * (SECTORS * 512))
    return path


@contextlib.contextmanager
def loop_device(backing: Path) -> Iterator[Path]:
    attached = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True, text=True)
    if attached.returncode != 0:
        pytest.skip(f"no loop device here: {attached.stderr.strip()} (the disk-file tests cover the logic)")
    device = Path(attached.stdout.strip())
    try:
        yield device
    finally:
        subprocess.run(["losetup", "--detach", str(device)], check=True)


def assert_quick(data: bytes) -> None:
    assert data[: 2 * MIB] == bytes(2 * MIB)
    assert data[-2 * MIB :] == bytes(2 * MIB)
    assert data[2 * MIB : -2 * MIB] == FILL * (len(data) - 4 * MIB)  # the middle untouched


@needs_busybox
def test_the_script_parses():
    subprocess.run([BUSYBOX, "sh", "-n", str(ERASE)], check=True)


@needs_busybox
def test_quick_zeroes_the_first_and_last_2_mib_only(tmp_path):
    disk = disk_file(tmp_path / "disk.img")
    done = erase(fake_machine(tmp_path / "m", disk), "quick")
    assert done.returncode == 0, done.stdout + done.stderr
    assert_quick(disk.read_bytes())
    assert "vdz: successfully wiped (quick)." in done.stdout
    assert "loop0" not in done.stdout


@needs_busybox
def test_full_zeroes_the_whole_disk(tmp_path):
    disk = disk_file(tmp_path / "disk.img")
    done = erase(fake_machine(tmp_path / "m", disk), "full")
    assert done.returncode == 0, done.stdout + done.stderr
    assert disk.read_bytes() == bytes(SECTORS * 512)


@needs_busybox
def test_secure_erase_without_support_falls_back_as_maas_does(tmp_path):
    disk = disk_file(tmp_path / "disk.img")
    env = fake_machine(tmp_path / "m", disk)
    done = erase(env, "secure-quick")  # a file is no ATA drive: quick instead
    assert done.returncode == 0, done.stdout + done.stderr
    assert "vdz: starting quick wipe" in done.stdout
    assert_quick(disk.read_bytes())
    disk_file(disk)
    done = erase(env, "secure")  # secure alone falls back to the whole disk
    assert done.returncode == 0, done.stdout + done.stderr
    assert "vdz: starting full wipe" in done.stdout
    assert disk.read_bytes() == bytes(SECTORS * 512)


@needs_busybox
def test_a_disk_that_cannot_be_written_fails_the_wipe(tmp_path):
    env = fake_machine(tmp_path / "m", tmp_path / "no-such-dir" / "disk")  # a dangling device node
    (tmp_path / "m/dev/vdz").unlink()
    (tmp_path / "m/dev/vdz").mkdir()  # a directory: dd cannot write it
    done = erase(env, "quick")
    assert done.returncode != 0
    assert "vdz: failed to be wiped (quick)." in done.stdout and "failed: vdz" in done.stdout


@needs_busybox
@pytest.mark.skipif(os.geteuid() != 0, reason="attaching a loop device needs root")
def test_quick_and_full_on_a_real_loop_block_device(tmp_path):
    backing = disk_file(tmp_path / "backing.img")
    with loop_device(backing) as device:
        env = fake_machine(tmp_path / "m", device)
        done = erase(env, "quick")
        assert done.returncode == 0, done.stdout + done.stderr
        assert_quick(device.read_bytes())
        done = erase(env, "full")
        assert done.returncode == 0, done.stdout + done.stderr
        assert device.read_bytes() == bytes(SECTORS * 512)
