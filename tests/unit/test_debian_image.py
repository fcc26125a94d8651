"""The pure parts of the Debian image build: apt sources, the lean rules, the files it
writes, and reading ELF links and package relations for the installer's tools."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from metalplane.images import debian
from metalplane.images.debtools import depends
from metalplane.images.elf import elf_links, is_static_elf
from metalplane.images.errors import BuildError

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
Enabled: no
"""


def test_deb822_sources_are_parsed_and_disabled_ones_left_out():
    sources = debian.parse_deb822_sources(DEB822)
    assert [s.uris for s in sources] == [("http://deb.debian.org/debian",), ("http://deb.debian.org/debian-security",)]
    assert sources[0].suites == ("bookworm", "bookworm-updates") and not sources[0].is_security
    assert sources[1].is_security


def test_one_line_sources_are_parsed():
    sources = debian.parse_one_line_sources(
        "# comment\ndeb [signed-by=/k.gpg arch=amd64] http://mirror.example/debian trixie main contrib\n"
        "deb-src http://mirror.example/debian trixie main\n"
        "deb http://security.example/debian-security trixie-security main\n"
    )
    assert sources[0] == debian.AptSource(("http://mirror.example/debian",), ("trixie",), ("main", "contrib"))
    assert sources[1].types == ("deb-src",) and sources[2].is_security


def test_the_archive_mirror_is_the_hosts():
    sources = debian.parse_deb822_sources(DEB822)
    assert debian.archive_mirror(sources, "bookworm") == "http://deb.debian.org/debian"
    assert debian.archive_mirror(sources, "trixie") == "http://deb.debian.org/debian"  # same archive, other release
    assert debian.security_mirror(sources) == "http://deb.debian.org/debian-security"
    with pytest.raises(BuildError, match="give --mirror URL"):
        debian.archive_mirror(sources[1:], "bookworm")


def test_host_sources_reads_sources_d_and_sources_list(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d/debian.sources").write_text(DEB822)
    (tmp_path / "sources.list").write_text("deb http://other.example/debian bookworm main\n")
    assert [s.uris[0] for s in debian.host_sources(tmp_path)] == [
        "http://deb.debian.org/debian",
        "http://deb.debian.org/debian-security",
        "http://other.example/debian",
    ]


def test_the_images_own_sources_name_updates_and_security():
    text = debian.image_sources("bookworm", "http://m/debian", "http://m/debian-security")
    stanzas = debian.parse_deb822_sources(text)
    assert [(s.uris[0], s.suites) for s in stanzas] == [
        ("http://m/debian", ("bookworm", "bookworm-updates")),
        ("http://m/debian-security", ("bookworm-security",)),
    ]
    assert len(debian.parse_deb822_sources(debian.image_sources("bookworm", "http://m/debian", None))) == 1


@pytest.mark.parametrize(
    "path, excluded",
    [
        ("/usr/share/doc/sudo/changelog.gz", True),
        ("/usr/share/doc/sudo/copyright", False),
        ("/usr/share/man/man8/sudo.8.gz", True),
        ("/usr/share/locale/de/LC_MESSAGES/sudo.mo", True),
        ("/usr/share/locale/locale.alias", False),
        ("/lib/modules/6.1.0-50-amd64/kernel/sound/core/snd.ko", True),
        ("/usr/lib/modules/6.1.0-50-amd64/kernel/drivers/net/wireless/intel/iwlwifi/iwlwifi.ko", True),
        ("/lib/modules/6.1.0-50-amd64/kernel/drivers/gpu/drm/amd/amdgpu/amdgpu.ko", True),
        ("/lib/modules/6.1.0-50-amd64/kernel/drivers/gpu/drm/ast/ast.ko", False),
        ("/lib/modules/6.1.0-50-amd64/kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko", False),
        ("/lib/modules/6.1.0-50-amd64/kernel/lib/test_bpf.ko", True),
        ("/lib/modules/6.1.0-50-amd64/kernel/fs/ext4/ext4.ko", False),
        ("/usr/bin/sudo", False),
    ],
)
def test_lean_rules_follow_dpkg_semantics(path, excluded):
    assert debian.lean_excludes(path) is excluded


def test_the_dpkg_config_has_every_rule_in_order():
    lines = debian.dpkg_lean_config().splitlines()[1:]
    assert lines[:2] == ["path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright"]
    assert len(lines) == len(debian.LEAN_RULES)


def test_prune_removes_what_the_rules_exclude(tmp_path):
    for path in (
        "usr/share/doc/a/changelog.gz",
        "usr/share/doc/a/copyright",
        "usr/share/man/man1/a.1.gz",
        "usr/lib/modules/6.1/kernel/sound/snd.ko",
        "usr/lib/modules/6.1/kernel/fs/ext4.ko",
    ):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b"x" * 10)
    assert debian.prune(tmp_path) == 30
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == ["usr/lib/modules/6.1/kernel/fs/ext4.ko", "usr/share/doc/a/copyright"]
    assert not (tmp_path / "usr/lib/modules/6.1/kernel/sound").exists()


def test_the_units_and_configs_the_image_gets():
    hostkeys, firstboot = debian.hostkeys_unit(), debian.firstboot_unit()
    assert "Before=ssh.service" in hostkeys and "ExecStart=/usr/bin/ssh-keygen -A" in hostkeys
    assert "WantedBy=ssh.service" in hostkeys
    assert "After=network-online.target ssh.service" in firstboot
    assert f"ConditionPathExists=!{debian.FIRSTBOOT_DONE}" in firstboot
    assert f"ConditionPathExists={debian.AGENT_CONF}" in firstboot
    assert 'GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8"' in debian.grub_defaults()
    assert debian.image_conf("debian/bookworm", "1") == "name=debian/bookworm\nversion=1\ndefault_user=debian\n"


@pytest.mark.skipif(shutil.which("busybox") is None or not Path("/bin/ls").exists(), reason="needs host binaries")
def test_elf_links_of_real_binaries():
    ls = elf_links(Path("/bin/ls").read_bytes())
    assert ls.interpreter == "/lib64/ld-linux-x86-64.so.2" and "libc.so.6" in ls.needed
    busybox = Path(shutil.which("busybox")).read_bytes()
    if is_static_elf(busybox):
        assert elf_links(busybox).needed == ()
    assert elf_links(b"#!/bin/sh\n") is None and not is_static_elf(b"#!/bin/sh\n")


def test_package_relations():
    fields = (
        "Package: e2fsprogs\nPre-Depends: libblkid1 (>= 2.36), libc6 (>= 2.34), libext2fs2 (= 1.47.0-2+b2)\n"
        "Depends: logsave\nRecommends: e2fsprogs-l10n\n"
    )
    assert depends(fields) == ["libblkid1", "libc6", "libext2fs2", "logsave"]
    assert depends("Depends: libc6:any | libc6.1, debconf (>= 0.5) | debconf-2.0\n") == ["libc6", "debconf"]


@pytest.mark.skipif(shutil.which("debootstrap") is None or os.geteuid() != 0, reason="debootstrap as root")
def test_the_build_debian_command_runs_debootstrap_and_says_why_it_failed(tmp_path):
    """`metalplane images build-debian --release R --out DIR` (the command the docs give) reaches
    debootstrap with the release and mirror given; an archive that cannot be reached is one clear
    error and no half-built image. A whole build is tests/system/test_deploy_image.py's."""
    mirror = "http://127.0.0.1:9/debian"  # the discard port: nothing listens there
    done = subprocess.run(
        [sys.executable, "-m", "metalplane", "images", "build-debian", "--release", "bookworm"]
        + ["--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), "--mirror", mirror],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode != 0
    assert f"debootstrap bookworm from {mirror}" in done.stdout + done.stderr
    error = next(line for line in done.stderr.splitlines() if line.startswith("error: "))
    assert "debootstrap --foreign --variant=minbase" in error and f"bookworm {tmp_path / 'out'}" in error
    assert f"Failed getting release file {mirror}/dists/bookworm/Release" in done.stderr
    assert list((tmp_path / "out").iterdir()) == []  # its work dir is gone
