"""The installer (ephemeral/install.sh, run by busybox sh) and the first-boot agent
(deployed/firstboot.sh, run by the host's /bin/sh, dash on Debian as on the installed
system): their pure functions, on fake /sys and /proc trees."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src/metalplane/images"
INIT = SRC / "ephemeral/init.sh"
INSTALL = SRC / "ephemeral/install.sh"
FIRSTBOOT = SRC / "deployed/firstboot.sh"
BUSYBOX = shutil.which("busybox")
needs_busybox = pytest.mark.skipif(BUSYBOX is None, reason="busybox not installed")

CONFIG = {
    "system_id": "abc123",
    "hostname": "node1",
    "domain": "maas",
    "disk": {"name": "vda", "serial": "SER2"},
    "layout": "flat",
    "image": {
        "urls": ["http://10.0.0.2:5248/images/by-sha256/" + "a" * 64, "http://10.0.0.3:5248/x"],
        "sha256": "a" * 64,
        "size": 123,
        "filetype": "root-tgz",
    },
    "interfaces": [
        {
            "mac": "52:54:00:00:00:01",
            "name": "eth0",
            "mode": "static",
            "address": "10.0.0.5/24",
            "gateway": "10.0.0.1",
            "mtu": 9000,
        },
        {"mac": "52:54:00:00:00:02", "mode": "dhcp"},
        {"mac": "52:54:00:00:00:03", "mode": "link_up", "address": None},
    ],
    "dns": {"servers": ["10.0.0.2", "10.0.0.3"], "search": ["maas", "example.com"]},
    "ssh_keys": ["ssh-ed25519 AAAAC3Nza user@host", 'ssh-rsa AAAAB3 other "quoted" ü'],
    "kernel_params": "quiet",
    "empty": [],
    "nested": {"deeper": {"x": True, "n": -1.5e3}},
}


def machine(root: Path, disks: dict[str, tuple[int, str, str]]) -> dict[str, str]:
    """A fake /sys with `disks` {name: (sectors, serial, removable)} and a fake /proc."""
    sys_, proc, run = root / "sys", root / "proc", root / "run"
    for name, (sectors, serial, removable) in disks.items():
        d = sys_ / "block" / name
        d.mkdir(parents=True)
        (d / "size").write_text(f"{sectors}\n")
        (d / "removable").write_text(f"{removable}\n")
        if serial:
            (d / "serial").write_text(serial + "\n")
    (sys_ / "block").mkdir(parents=True, exist_ok=True)
    (proc / "sys/kernel/random").mkdir(parents=True)
    (proc / "sys/kernel/random/uuid").write_text("0b9c7f59-40a5-4b6a-9c36-0b1d2e3f4a5b\n")
    (proc / "uptime").write_text("12.34 5.00\n")
    run.mkdir()
    return {
        "MP_SOURCE_ONLY": "1",
        "MP_SYS": str(sys_),
        "MP_PROC": str(proc),
        "MP_RUN": str(run),
        "MP_DEV": str(root / "dev"),
        "MP_TARGET": str(root / "target"),
        "PATH": os.environ["PATH"],
    }


def installer(env: dict[str, str], code: str, stdin: str | None = None, check: bool = True):
    done = subprocess.run(
        [BUSYBOX, "sh", "-c", f". {INIT}\n. {INSTALL}\n{code}\n"],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def with_config(tmp_path: Path, config: dict = CONFIG, disks=None) -> dict[str, str]:
    env = machine(tmp_path, disks or {"vda": (4194304, "SER1", "0"), "vdb": (4194304, "SER2", "0")})
    flat = installer(env, "json_flatten", json.dumps(config)).stdout
    Path(env["MP_RUN"], "config.flat").write_text(flat)
    return env


@needs_busybox
def test_the_scripts_parse():
    for script in (INIT, INSTALL):
        subprocess.run([BUSYBOX, "sh", "-n", str(script)], check=True)
    subprocess.run(["sh", "-n", str(FIRSTBOOT)], check=True)


@needs_busybox
def test_json_flatten_gives_one_line_per_scalar(tmp_path):
    env = machine(tmp_path, {})
    out = installer(env, "json_flatten", json.dumps(CONFIG, indent=2)).stdout
    lines = dict(line.split("\t", 1) for line in out.splitlines())
    assert lines["image.urls.1"] == "http://10.0.0.3:5248/x"
    assert lines["interfaces.0.mtu"] == "9000" and lines["interfaces.1.mode"] == "dhcp"
    assert "interfaces.2.address" not in lines  # null is absent
    assert lines["ssh_keys.1"] == 'ssh-rsa AAAAB3 other "quoted" ü'
    assert lines["nested.deeper.x"] == "true" and lines["nested.deeper.n"] == "-1500.0"
    assert not any(k.startswith("empty") for k in lines)
    escaped = installer(env, "json_flatten", r'{"a": "x\ny\t\\ \u00e9 \/"}').stdout
    assert escaped == "a\tx\\ny\t\\ é /\n"  # \n stays escaped: one value, one line


@needs_busybox
@pytest.mark.parametrize("text", ['{"a": ', '{"a" 1}', '["x",]', '{"a": 1} x', '{"a": "open'])
def test_json_flatten_rejects_broken_json(tmp_path, text):
    env = machine(tmp_path, {})
    done = installer(env, "json_flatten", text, check=False)
    assert done.returncode != 0 and "invalid JSON" in done.stderr


@needs_busybox
def test_config_lookups(tmp_path):
    env = with_config(tmp_path)
    out = installer(
        env,
        'cfg hostname; cfg image.sha256; cfg missing; echo "<"; cfg_list image.urls; '
        "cfg_list dns.search; cfg_indices interfaces; cfg_list interfaces",
    ).stdout
    assert out.splitlines() == [
        "node1",
        "a" * 64,
        "<",
        CONFIG["image"]["urls"][0],
        CONFIG["image"]["urls"][1],
        "maas",
        "example.com",
        "0",
        "1",
        "2",
    ]


@needs_busybox
def test_flat_layout_follows_maas(tmp_path):
    env = machine(tmp_path, {})
    bios = installer(env, f"flat_layout bios {2 << 30}").stdout.splitlines()
    assert bios == [
        "label: gpt",
        'start=1MiB, size=1MiB, type=21686148-6449-6E6F-744E-656564454649, name="bios_grub"',
        'start=4MiB, size=2040MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root"',
    ]
    # UEFI: 512 MiB EFI system partition at 4 MiB; root aligned down to 4 MiB, 1 MiB left at the end.
    uefi = installer(env, f"flat_layout uefi {(100 << 30) + (3 << 20)}").stdout.splitlines()
    assert uefi[1] == 'start=4MiB, size=512MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="efi"'
    root_mib = int(uefi[2].split("size=")[1].split("MiB")[0])
    assert uefi[2].startswith("start=516MiB,") and root_mib % 4 == 0
    assert 516 + root_mib <= 100 * 1024 + 3 - 1 < 516 + root_mib + 4
    small = installer(env, f"flat_layout bios {1000 << 20}", check=False)
    assert small.returncode == 1 and "the disk is too small: 1000 MiB" in small.stderr


@needs_busybox
def test_partition_names(tmp_path):
    env = machine(tmp_path, {})
    out = installer(
        env, "partition_name vda 2; partition_name nvme0n1 1; partition_name mmcblk0 2; partition_name sda 1"
    ).stdout
    assert out.split() == ["vda2", "nvme0n1p1", "mmcblk0p2", "sda1"]


@needs_busybox
def test_the_boot_disk_is_found_by_serial_then_name_and_never_guessed(tmp_path):
    env = machine(
        tmp_path,
        {
            "loop0": (100, "", "0"),
            "sr0": (100, "", "1"),
            "sdz": (100, "USB", "1"),
            "vda": (4194304, "SER1", "0"),
            "vdb": (4194304, "SER2", "0"),
        },
    )
    out = installer(env, 'pick_disk SER2 vda; pick_disk "" vdb; pick_disk "" ""; install_disks | tr "\\n" " "').stdout
    assert out.splitlines() == ["vdb", "vdb", "vda", "vda vdb "]
    gone = installer(env, "pick_disk NOPE nope", check=False)
    assert gone.returncode == 1 and gone.stdout == ""
    none = installer(machine(tmp_path / "empty", {"loop0": (100, "", "0")}), 'pick_disk "" ""', check=False)
    assert none.stdout == ""


@needs_busybox
def test_the_installed_systems_files(tmp_path):
    env = with_config(tmp_path)
    static = installer(env, "network_file 0").stdout
    assert static == (
        "# written by the metalplane installer\n[Match]\nMACAddress=52:54:00:00:00:01\n\n"
        "[Link]\nMTUBytes=9000\n\n[Network]\nAddress=10.0.0.5/24\nGateway=10.0.0.1\n"
        "DNS=10.0.0.2\nDNS=10.0.0.3\nDomains=maas example.com\n"
    )
    assert "[Network]\nDHCP=ipv4\n" in installer(env, "network_file 1").stdout
    link_up = installer(env, "network_file 2").stdout
    assert "RequiredForOnline=no" in link_up and "LinkLocalAddressing=no" in link_up and "\nAddress=" not in link_up
    assert installer(env, "resolv_conf").stdout.splitlines()[1:] == [
        "search maas example.com",
        "nameserver 10.0.0.2",
        "nameserver 10.0.0.3",
    ]
    assert installer(env, "fstab U1 ABCD-1234").stdout.splitlines()[1:] == [
        "UUID=U1 / ext4 errors=remount-ro 0 1",
        "UUID=ABCD-1234 /boot/efi vfat umask=0077 0 1",
    ]
    assert installer(env, "fstab U1").stdout.splitlines()[1:] == ["UUID=U1 / ext4 errors=remount-ro 0 1"]


@needs_busybox
def test_configure_writes_keys_agent_and_user_data_into_the_target(tmp_path):
    env = with_config(tmp_path)
    target = Path(env["MP_TARGET"])
    (target / "etc/metalplane").mkdir(parents=True)
    (target / "etc/metalplane/image.conf").write_text("name=debian/bookworm\ndefault_user=debian\n")
    (target / "etc/passwd").write_text(
        f"root:x:0:0:root:/root:/bin/bash\ndebian:x:{os.getuid()}:{os.getgid()}:Debian:/home/debian:/bin/bash\n"
    )
    (target / "etc/hosts").write_text("127.0.0.1 localhost\n")
    Path(env["MP_RUN"], "user_data").write_text("#!/bin/sh\necho hi\n")
    out = installer(
        env,
        "METADATA_URL=http://10.0.0.2:5240/MAAS/metadata/; TOKEN=tok; ROOT_UUID=U1; EFI_UUID=; "
        "step_configure 3>/dev/null",
    ).stdout
    assert "configured node1" in out
    assert (target / "home/debian/.ssh/authorized_keys").read_text().splitlines() == CONFIG["ssh_keys"]
    assert oct((target / "home/debian/.ssh/authorized_keys").stat().st_mode & 0o777) == "0o600"
    agent = target / "etc/metalplane/agent.conf"
    assert agent.read_text() == "metadata_url=http://10.0.0.2:5240/MAAS/metadata/\ntoken=tok\nsystem_id=abc123\n"
    assert oct(agent.stat().st_mode & 0o777) == "0o600"
    assert (target / "var/lib/metalplane/user_data").read_text() == "#!/bin/sh\necho hi\n"
    assert (target / "etc/hostname").read_text() == "node1\n"
    assert "127.0.1.1\tnode1.maas node1" in (target / "etc/hosts").read_text()
    assert sorted(p.name for p in (target / "etc/systemd/network").iterdir()) == [
        "50-metalplane-0.network",
        "50-metalplane-1.network",
        "50-metalplane-2.network",
    ]
    assert (
        target / "etc/default/grub.d/90-metalplane-deploy.cfg"
    ).read_text() == 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX quiet"\n'


def firstboot(tmp_path: Path, code: str) -> str:
    sys_ = tmp_path / "sys/class/net"
    for name, mac in (("lo", "00:00:00:00:00:00"), ("ens3", "52:54:00:00:00:01")):
        (sys_ / name).mkdir(parents=True, exist_ok=True)
        (sys_ / name / "address").write_text(mac + "\n")
    (sys_ / "ens3/device").mkdir(exist_ok=True)
    (tmp_path / "agent.conf").write_text("metadata_url=http://10.0.0.2:5240/MAAS/metadata\ntoken=t0k\nsystem_id=x1\n")
    env = {
        "MP_SOURCE_ONLY": "1",
        "MP_SYS": str(tmp_path / "sys"),
        "MP_STATE": str(tmp_path / "state"),
        "MP_AGENT_CONF": str(tmp_path / "agent.conf"),
        "PATH": os.environ["PATH"],
    }
    (tmp_path / "state").mkdir(exist_ok=True)
    done = subprocess.run(["sh", "-c", f". {FIRSTBOOT}\n{code}\n"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1]  # after its "metalplane-firstboot: ..." lines


def test_firstboot_runs_a_user_data_script_once_and_reports_it(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "user_data").write_text(
        f'#!/bin/sh\necho "ran \\"here\\""\nprintf "tab\\there\\n" >&2\necho x >> {tmp_path}/count\nexit 3\n'
    )
    report = json.loads(firstboot(tmp_path, "run_user_data; run_user_data; report_json"))
    assert (tmp_path / "count").read_text() == "x\n"  # once
    assert report["user_data"] == {
        "ran": True,
        "exit_status": 3,
        "runtime": report["user_data"]["runtime"],
        "output": 'ran "here"\ntab\there',
        "message": "",
    }
    assert report["system_id"] == "x1" and report["result"] == "ok"
    assert report["interfaces"] == [{"name": "ens3", "mac": "52:54:00:00:00:01", "addresses": []}]


def test_firstboot_does_not_run_cloud_config(tmp_path):
    (tmp_path / "state").mkdir()
    (tmp_path / "state/user_data").write_text("#cloud-config\nruncmd: [touch, /x]\n")
    report = json.loads(firstboot(tmp_path, "run_user_data; report_json"))
    assert report["user_data"]["ran"] is False and "cloud-init" in report["user_data"]["message"]
    assert (
        json.loads(firstboot(tmp_path / "none", "run_user_data; report_json"))["user_data"]["message"] == "no user_data"
    )


def tarball(path: Path, files: dict[str, bytes]) -> tuple[str, int]:
    import hashlib
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o4755 if name.endswith("sudo") else 0o644
            tar.addfile(info, io.BytesIO(data))
    data = path.read_bytes()
    return hashlib.sha256(data).hexdigest(), len(data)


@needs_busybox
def test_the_image_is_fetched_checked_and_unpacked_in_one_pass(tmp_path):
    env = machine(tmp_path, {})
    Path(env["MP_TARGET"]).mkdir()
    sha, size = tarball(tmp_path / "root.tgz", {"./etc/os-release": b"ID=debian\n", "./usr/bin/sudo": b"\x7fELF"})
    # wget is the test's: a shell function wins over busybox's applet.
    fake = f"wget() {{ cat {tmp_path}/root.tgz; }}; IMAGE_SIZE={size}; "
    ok = installer(env, fake + f"IMAGE_SHA256={sha}; fetch_extract http://rack/x 3>/dev/null; echo rc=$?")
    assert "rc=0" in ok.stdout and f"image written: {size} bytes fetched, checked and unpacked" in ok.stdout
    assert (Path(env["MP_TARGET"]) / "etc/os-release").read_text() == "ID=debian\n"
    assert oct((Path(env["MP_TARGET"]) / "usr/bin/sudo").stat().st_mode & 0o7777) == "0o4755"
    bad = installer(
        env,
        fake + f"IMAGE_SHA256={'0' * 64}; fetch_extract http://rack/x 3>/dev/null; echo rc=$? mismatch=$SHA_MISMATCH",
    )
    assert "rc=1 mismatch=1" in bad.stdout and f"sha256 {sha}, expected {'0' * 64}" in bad.stdout
    cut = installer(
        env,
        f"wget() {{ head -c 100 {tmp_path}/root.tgz; return 1; }}; IMAGE_SHA256={sha}; "
        "fetch_extract http://rack/x 3>/dev/null; echo rc=$? mismatch=${SHA_MISMATCH:-0}",
    )
    assert "rc=1 mismatch=0" in cut.stdout and "fetching or unpacking http://rack/x failed" in cut.stdout


@needs_busybox
def test_a_rack_gone_mid_deploy_the_image_comes_from_the_next_one(tmp_path):
    """deploy/config lists every rack's URL (services/deployment.rack_addresses): when the first
    rack is dead (or dies mid-stream), the installer starts again on a fresh file system from the
    next; when every rack fails, the step fails naming them (and the deploy fails, not hangs)."""
    env = machine(tmp_path, {})
    Path(env["MP_TARGET"]).mkdir()
    sha, size = tarball(tmp_path / "root.tgz", {"./etc/os-release": b"ID=debian\n"})
    # The test's stand-ins (shell functions win over busybox's applets): rack 10.0.0.2 sends
    # 100 bytes and drops the connection, 10.0.0.3 serves the image; no real mount or mkfs.
    fakes = (
        f'wget() {{ case "$4" in *10.0.0.2*) head -c 100 {tmp_path}/root.tgz; return 1 ;; '
        f"*10.0.0.3*) cat {tmp_path}/root.tgz ;; *) return 1 ;; esac; }}; "
        "mount() { :; }; umount() { :; }; make_root_fs() { echo MKFS; }; "
        f"ROOT_DEV=/dev/vda2; IMAGE_SHA256={sha}; IMAGE_SIZE={size}; "
    )
    urls = "http://10.0.0.2:5248/images/by-sha256/x http://10.0.0.3:5248/images/by-sha256/x"
    ok = installer(env, fakes + f'IMAGE_URLS="{urls}"; step_image 3>/dev/null; echo rc=$?')
    assert "rc=0" in ok.stdout, ok.stdout
    out = ok.stdout
    assert out.index("fetching or unpacking http://10.0.0.2") < out.index("trying the next URL") < out.index("MKFS")
    assert out.index("MKFS") < out.index("fetching http://10.0.0.3") < out.index("image written")
    assert (Path(env["MP_TARGET"]) / "etc/os-release").read_text() == "ID=debian\n"
    dead = "http://10.0.0.2:5248/images/by-sha256/x http://10.0.0.9:5248/images/by-sha256/x"
    gone = installer(env, fakes + f'IMAGE_URLS="{dead}"; step_image 3>/dev/null; echo rc=$? "$FAIL_MESSAGE"')
    assert f"rc=1 could not fetch and unpack the image from {dead}" in gone.stdout, gone.stdout
