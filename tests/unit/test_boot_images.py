"""Pure parts of boot resources and the ephemeral image: ranges, simplestreams, upload rules,
module ordering, the initramfs format, and /init's shell functions (run with busybox sh)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from metalplane.images import cpio
from metalplane.images import simplestreams as ss
from metalplane.images.build import is_static_elf
from metalplane.images.modinfo import (
    ModInfo,
    ModuleError,
    builtin_names,
    elf_section,
    load_order,
    module_name,
    parse_modinfo,
)
from metalplane.images.publish import publish_image
from metalplane.region.api.handlers.boot_resources import parse_range
from metalplane.region.services import boot_resources as svc

SHA = "a" * 64
BUSYBOX = shutil.which("busybox")
INIT = Path(__file__).parents[2] / "src/metalplane/images/ephemeral/init.sh"


# -- Range ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header, size, expected",
    [
        (None, 100, None),
        ("bytes=0-0", 100, (0, 0)),
        ("bytes=10-19", 100, (10, 19)),
        ("bytes=90-", 100, (90, 99)),
        ("bytes=-10", 100, (90, 99)),
        ("bytes=-1000", 100, (0, 99)),
        ("bytes=50-1000", 100, (50, 99)),
        ("bytes=100-", 100, "unsatisfiable"),
        ("bytes=100-200", 100, "unsatisfiable"),
        ("bytes=-0", 100, "unsatisfiable"),
        ("bytes=0-", 0, "unsatisfiable"),
        ("bytes=20-10", 100, None),  # malformed: ignored
        ("bytes=0-1,5-6", 100, None),  # several ranges: the whole file
        ("items=0-1", 100, None),
        ("bytes=abc", 100, None),
        ("bytes=-", 100, None),
        (" Bytes = 3 - 4 ", 100, (3, 4)),
    ],
)
def test_parse_range(header, size, expected):
    assert parse_range(header, size) == expected


# -- simplestreams ------------------------------------------------------------------------------


def products_doc(versions: dict, **product) -> dict:
    return {
        "format": "products:1.0",
        "products": {
            "p1": {
                "os": "ephemeral",
                "release": "bookworm",
                "arch": "amd64",
                "subarch": "generic",
                **product,
                "versions": versions,
            }
        },
    }


def item(ftype: str = "boot-kernel", **over) -> dict:
    return {"ftype": ftype, "path": f"e/b/{ftype}", "sha256": SHA, "size": 10, **over}


def test_version_key_is_natural():
    versions = ["20261123.9", "20261123.10", "20261123", "20251231.99", "20261123.1"]
    assert sorted(versions, key=ss.version_key) == [
        "20251231.99",
        "20261123",
        "20261123.1",
        "20261123.9",
        "20261123.10",
    ]


def test_the_newest_version_of_each_product():
    doc = products_doc(
        {
            "20261123.9": {"items": {"k": item()}},
            "20261123.10": {"label": "daily", "items": {"k": item(), "i": item("boot-initrd")}},
        },
        release_title="Bookworm",
        kflavor="generic",
    )
    (image,) = ss.parse_products("streams/v1/x.json", doc)
    assert (image.name, image.architecture, image.version, image.label, image.title) == (
        "ephemeral/bookworm",
        "amd64/generic",
        "20261123.10",
        "daily",
        "Bookworm",
    )
    assert [i.ftype for i in image.items] == ["boot-initrd", "boot-kernel"]
    assert image.items[1].filename == "boot-kernel" and image.extra["kflavor"] == "generic"


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"format": "x"}, "not a products file"),
        (products_doc({}), "has no versions"),
        (products_doc({"1": {"items": {}}}), "has no items"),
        (products_doc({"1": {"items": {"k": item(sha256="XYZ")}}}), "needs a sha256"),
        (products_doc({"1": {"items": {"k": item(size=-1)}}}), "needs a size"),
        (products_doc({"1": {"items": {"k": item(ftype="weird")}}}), "unknown ftype"),
        (products_doc({"1": {"items": {"k": item(path="../../etc/shadow")}}}), "'..'"),
        (products_doc({"1": {"items": {"k": item(path="/etc/shadow")}}}), "relative"),
        (products_doc({"1": {"items": {"k": item(path="http://evil/x")}}}), "relative"),
        (products_doc({"1": {"items": {"a": item(), "b": item()}}}), "same ftype"),
        (products_doc({"1": {"items": {"k": item()}}}, release="bad name"), "needs 'os' and 'release'"),
        (products_doc({"1": {"items": {"k": item()}}}, arch="amd64/x"), "needs 'arch'"),
    ],
)
def test_bad_products_say_why(doc, message):
    with pytest.raises(ss.StreamError, match=message):
        ss.parse_products("streams/v1/x.json", doc)


def test_index_lists_image_download_products_only():
    index = {
        "format": "index:1.0",
        "index": {
            "b": {"datatype": "image-downloads", "format": "products:1.0", "path": "streams/v1/b.json"},
            "a": {"datatype": "image-ids", "path": "streams/v1/a.json"},
        },
    }
    assert ss.product_paths(index) == ["streams/v1/b.json"]
    with pytest.raises(ss.StreamError, match="not a simplestreams index"):
        ss.product_paths({"format": "products:1.0"})
    with pytest.raises(ss.StreamError, match="names no image-downloads"):
        ss.product_paths({"format": "index:1.0", "index": {}})


def test_publish_adds_versions_and_the_result_parses(tmp_path):
    (tmp_path / "k").write_bytes(b"kernel")
    (tmp_path / "i").write_bytes(b"initrd")
    mirror = tmp_path / "mirror"
    for version in ("20261123.1", "20261123.2"):
        publish_image(
            mirror,
            os_name="ephemeral",
            release="bookworm",
            arch="amd64",
            subarch="generic",
            version=version,
            files={"boot-kernel": tmp_path / "k", "boot-initrd": tmp_path / "i"},
        )
    index = json.loads((mirror / ss.INDEX_PATH).read_text())
    (path,) = ss.product_paths(index)
    doc = json.loads((mirror / path).read_text())
    (product,) = doc["products"].values()
    assert set(product["versions"]) == {"20261123.1", "20261123.2"}
    (image,) = ss.parse_products(path, doc)
    assert image.version == "20261123.2"
    kernel = next(i for i in image.items if i.ftype == "boot-kernel")
    assert (mirror / kernel.path).read_bytes() == b"kernel" and kernel.size == 6
    with pytest.raises(ValueError):
        publish_image(mirror, os_name="bad/name", release="r", arch="amd64", subarch="generic", version="1", files={})


# -- upload rules -------------------------------------------------------------------------------


def test_upload_names_and_types():
    assert svc.clean_name("myimage") == "custom/myimage"
    assert svc.clean_name("ubuntu/jammy") == "ubuntu/jammy"
    assert svc.clean_architecture("amd64") == "amd64/generic"
    assert svc.clean_filetype("tgz") == "root-tgz" and svc.clean_filetype("ddraw") == "root-dd.raw"
    assert svc.clean_filetype("boot-initrd") == "boot-initrd" and svc.clean_filetype("exe") is None
    assert svc.upload_errors("custom/x", "amd64/generic", "root-tgz", "tgz", None) == {}
    errors = svc.upload_errors("custom/../x", "amd64", None, "exe", "v 1")
    assert set(errors) == {"name", "architecture", "filetype", "version"}


def test_next_version_and_progress():
    assert svc.next_version([], "20261123") == "20261123"
    assert svc.next_version(["20261123", "20261123.1"], "20261123") == "20261123.2"
    assert svc.progress(0, 0, True) == 100.0 and svc.progress(0, 0, False) == 0.0
    assert svc.progress(1, 3, False) == 33.3 and svc.progress(5, 3, False) == 100.0


# -- kernel modules -------------------------------------------------------------------------------


def elf_with_sections(sections: dict[str, bytes]) -> bytes:
    """A minimal ELF64 relocatable object holding the given sections."""
    names = b"\0" + b"".join(n.encode() + b"\0" for n in [*sections, ".shstrtab"])
    body = b"".join(sections.values()) + names
    shoff = 64 + len(body)
    header = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header += struct.pack(
        "<HHIQQQIHHHHHH", 1, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64, len(sections) + 2, len(sections) + 1
    )
    shdrs = [bytes(64)]
    offset, name_off = 64, 1
    for name, data in [*sections.items(), (".shstrtab", names)]:
        shdrs.append(struct.pack("<IIQQQQIIQQ", name_off, 1, 0, 0, offset, len(data), 0, 0, 1, 0))
        offset += len(data)
        name_off += len(name) + 1
    return header + body + b"".join(shdrs)


def test_modinfo_from_an_elf_object():
    ko = elf_with_sections(
        {".text": b"\x90" * 8, ".modinfo": b"license=GPL\0depends=virtio,virtio_ring\0name=virtio_net\0"}
    )
    assert elf_section(ko, ".text") == b"\x90" * 8
    assert parse_modinfo("x/virtio_net.ko", ko) == ModInfo("virtio_net", ("virtio", "virtio_ring"))
    bare = elf_with_sections({".modinfo": b"depends=\0"})
    assert parse_modinfo("a/crc-t10dif.ko", bare) == ModInfo("crc_t10dif", ())
    with pytest.raises(ModuleError):
        parse_modinfo("x.ko", b"not an elf")
    assert module_name("kernel/drivers/net/net-failover.ko.xz") == "net_failover"
    assert builtin_names("kernel/net/packet/af_packet.ko\nkernel/fs/ext4/ext4.ko\n") == {"af_packet", "ext4"}


def test_load_order_puts_dependencies_first():
    infos = {
        "virtio_net": ModInfo("virtio_net", ("net_failover", "virtio")),
        "net_failover": ModInfo("net_failover", ("failover",)),
        "failover": ModInfo("failover", ()),
        "virtio": ModInfo("virtio", ("virtio_ring",)),
        "virtio_ring": ModInfo("virtio_ring", ()),
        "virtio_blk": ModInfo("virtio_blk", ("virtio", "virtio_ring")),
    }
    order, missing = load_order(["virtio_net", "virtio_blk", "nvme", "packet"], infos, builtin={"packet"})
    assert missing == ["nvme"]
    assert sorted(order) == sorted(infos)
    for name, info in infos.items():
        assert all(order.index(dep) < order.index(name) for dep in info.depends)
    with pytest.raises(ModuleError, match="neither in this kernel"):
        load_order(["nvme"], infos, required=["nvme"])
    with pytest.raises(ModuleError, match="needs gone"):
        load_order(["a"], {"a": ModInfo("a", ("gone",))})
    with pytest.raises(ModuleError, match="cycle"):
        load_order(["a"], {"a": ModInfo("a", ("b",)), "b": ModInfo("b", ("a",))})


def test_static_elf_detection():
    assert not is_static_elf(b"#!/bin/sh\n")
    ls = shutil.which("ls")
    if ls:
        assert not is_static_elf(Path(ls).read_bytes())  # dynamically linked
    if (
        BUSYBOX
        and "statically linked" in subprocess.run(["file", "-L", BUSYBOX], capture_output=True, text=True).stdout
    ):
        assert is_static_elf(Path(BUSYBOX).read_bytes())


# -- the initramfs archive ----------------------------------------------------------------------------


def test_newc_archive_is_reproducible_and_unpacks(tmp_path):
    entries = [
        cpio.file("bin/hello", b"hi\n", 0o755),
        cpio.directory("bin"),
        cpio.symlink("bin/sh", "hello"),
        cpio.char_device("dev/console", 5, 1),
        cpio.directory("dev"),
        cpio.file("init", b"#!/bin/sh\n"),
    ]
    archive = cpio.newc(entries)
    assert archive == cpio.newc(list(reversed(entries)))  # order of the input does not matter
    assert cpio.gzip_bytes(archive) == cpio.gzip_bytes(archive)
    names = [
        archive[i + 110 : archive.index(b"\0", i + 110)].decode()
        for i in range(len(archive))
        if archive.startswith(b"070701", i) and i % 4 == 0
    ]
    assert names.index("bin") < names.index("bin/hello") and names[-1] == "TRAILER!!!"
    with pytest.raises(ValueError, match="twice"):
        cpio.newc([cpio.directory("a"), cpio.directory("a")])
    if BUSYBOX is None:
        pytest.skip("busybox not installed")
    out = tmp_path / "root"
    out.mkdir()
    listing = subprocess.run([BUSYBOX, "cpio", "-t", "-v"], input=archive, capture_output=True, check=True).stdout
    assert b"bin/sh -> hello" in listing and b"dev/console" in listing
    subprocess.run([BUSYBOX, "cpio", "-i", "-d"], input=archive, cwd=out, check=True, capture_output=True)
    assert (out / "bin/hello").read_bytes() == b"hi\n" and os.access(out / "bin/hello", os.X_OK)
    assert os.readlink(out / "bin/sh") == "hello"


# -- /init's functions, with busybox sh on fake /proc and /sys trees ------------------------------------


def fake_machine(root: Path, cmdline: str) -> dict[str, str]:
    proc, sys_, etc = root / "proc", root / "sys", root / "etc"
    proc.mkdir(parents=True)
    (proc / "cmdline").write_text(cmdline + "\n")
    (proc / "cpuinfo").write_text(
        'processor\t: 0\nmodel name\t: Test "CPU" \\ 9000\n\nprocessor\t: 1\nmodel name\t: Test "CPU" \\ 9000\n'
    )
    (proc / "meminfo").write_text("MemTotal:        8126464 kB\nMemFree:  1 kB\n")
    for name, mac, driver in (
        ("eth0", "52:54:00:00:00:01", "e1000"),
        ("eth1", "52:54:00:00:00:02", "virtio_net"),
        ("lo", "00:00:00:00:00:00", ""),
    ):
        nic = sys_ / "class/net" / name
        nic.mkdir(parents=True)
        (nic / "address").write_text(mac + "\n")
        (nic / "carrier").write_text("1\n")
        (nic / "speed").write_text("1000\n" if name == "eth0" else "-1\n")
        if driver:
            (sys_ / "drivers" / driver).mkdir(parents=True)
            (nic / "device").mkdir()
            (nic / "device/driver").symlink_to(sys_ / "drivers" / driver)
    for name, sectors, model, rotational in (
        ("sda", 1953525168, "WDC  WD10 ", "1"),
        ("vda", 32768, "", "0"),
        ("loop0", 100, "", "0"),
    ):
        disk = sys_ / "block" / name
        (disk / "queue").mkdir(parents=True)
        (disk / "device").mkdir()
        (disk / "size").write_text(f"{sectors}\n")
        (disk / "device/model").write_text(model + "\n")
        (disk / "queue/rotational").write_text(rotational + "\n")
        (disk / "removable").write_text("0\n")
    (sys_ / "block/vda/serial").write_text('SER"1\n')
    (sys_ / "block/vda/vda1").mkdir()
    (sys_ / "block/vda/vda1/partition").write_text("1\n")
    (sys_ / "block/vda/vda1/size").write_text("2048\n")
    etc.mkdir()
    (etc / "version").write_text("20261123.7\n")
    return {
        "MP_SOURCE_ONLY": "1",
        "MP_PROC": str(proc),
        "MP_SYS": str(sys_),
        "MP_ETC": str(etc),
        "MP_RUN": str(root / "run"),
        "PATH": os.environ["PATH"],
    }


def run_init_function(env: dict[str, str], code: str) -> str:
    script = f". {INIT}\n{code}\n"
    done = subprocess.run([BUSYBOX, "sh", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


needs_busybox = pytest.mark.skipif(BUSYBOX is None, reason="busybox not installed")


@needs_busybox
def test_init_script_parses():
    subprocess.run([BUSYBOX, "sh", "-n", str(INIT)], check=True)


@needs_busybox
def test_init_reads_the_kernel_command_line(tmp_path):
    env = fake_machine(
        tmp_path,
        "console=ttyS0 metadata_url=http://10.0.0.2:5240/MAAS/metadata/ token=t0k "
        "mp_mode=commission token=t1k BOOTIF=01-52-54-00-00-00-02 glob=*",
    )
    out = run_init_function(
        env,
        "cmdline_arg token none; echo; cmdline_arg mp_mode x; echo; "
        'cmdline_arg mp_after poweroff; echo; cmdline_arg glob ""; echo; '
        "boot_mac_from_cmdline; echo; nic_names",
    )
    assert out.splitlines() == ["t1k", "commission", "poweroff", "*", "52:54:00:00:00:02", "eth1 eth0"]


@needs_busybox
def test_init_facts_and_enlist_documents(tmp_path):
    env = fake_machine(tmp_path, "BOOTIF=01-52-54-00-00-00-02")
    facts = json.loads(run_init_function(env, "BOOT_METHOD=pxe; BOOT_MAC=52:54:00:00:00:02; facts_json"))
    assert facts["cpu_count"] == 2 and facts["cpu_model"] == 'Test "CPU" \\ 9000'
    assert facts["memory_mib"] == 7936 and facts["boot_method"] == "pxe" and facts["firmware"] == "bios"
    assert facts["disks"] == [
        {
            "name": "sda",
            "size_bytes": 1953525168 * 512,
            "model": "WDC WD10",
            "serial": "",
            "rotational": True,
            "removable": False,
            "partitions": [],
        },
        {
            "name": "vda",
            "size_bytes": 32768 * 512,
            "model": "",
            "serial": 'SER"1',
            "rotational": False,
            "removable": False,
            "partitions": [{"name": "vda1", "number": 1, "size_bytes": 2048 * 512}],
        },
    ]
    assert facts["interfaces"] == [
        {"name": "eth1", "mac": "52:54:00:00:00:02", "driver": "virtio_net", "link_up": True, "speed_mbps": -1},
        {"name": "eth0", "mac": "52:54:00:00:00:01", "driver": "e1000", "link_up": True, "speed_mbps": 1000},
    ]
    assert facts["image"]["version"] == "20261123.7" and facts["architecture"].endswith("/generic")
    enlist = json.loads(
        run_init_function(env, "BOOT_METHOD=uefi; BOOT_MAC=52:54:00:00:00:02; NET_IP=10.0.0.9; enlist_json")
    )
    assert enlist["mac_addresses"] == ["52:54:00:00:00:02", "52:54:00:00:00:01"]
    assert (enlist["boot_method"], enlist["ip"], enlist["hostname"]) == ("uefi", "10.0.0.9", "")


@needs_busybox
def test_json_strings_are_escaped(tmp_path):
    env = fake_machine(tmp_path, "")
    out = run_init_function(env, r"""json_str 'a"b\c'"$(printf '\001\tz')"; echo; json_bool 1; json_bool 0""")
    assert out.splitlines() == [r'"a\"b\\cz"', "truefalse"]
    assert json.loads(out.splitlines()[0]) == 'a"b\\cz'


# The machine's own actions, recorded instead of done: a poweroff or reboot ends the run.
STUBS = (
    'poweroff() { echo "POWEROFF $*"; exit 0; }\n'
    'reboot() { echo "REBOOT $*"; exit 0; }\n'
    "sync() { :; }\n"
    "load_modules() { echo MODULES; }\n"
    "net_up() { echo NETWORK; return 1; }\n"
)


@needs_busybox
@pytest.mark.parametrize(
    "cmdline",
    [
        "console=ttyS0 mp_mode=poweroff mp_after=poweroff BOOTIF=01-52-54-00-00-00-02",
        "mp_mode=poweroff mp_after=reboot metadata_url=http://10.0.0.2:5240/MAAS/metadata/",  # off all the same
        "mp_mode=poweroff",  # no metadata_url: nothing to report, nothing missing
    ],
)
def test_poweroff_mode_powers_off_at_once_without_modules_or_network(tmp_path, cmdline):
    out = run_init_function(fake_machine(tmp_path, cmdline), STUBS + "run_orders")
    lines = out.splitlines()
    assert "metalplane: mp_mode=poweroff: this machine is to stay off" in lines, out
    assert lines[-2:] == ["metalplane: powering off", "POWEROFF -f"], out
    assert "MODULES" not in lines and "NETWORK" not in lines and "REBOOT -f" not in lines


@needs_busybox
def test_the_other_modes_still_load_modules_and_bring_up_the_network(tmp_path):
    env = fake_machine(tmp_path, "mp_mode=erase metadata_url=http://10.0.0.2:5240/MAAS/metadata/ mp_after=reboot")
    lines = run_init_function(env, STUBS + "run_orders").splitlines()
    assert lines[-6:-3] == [
        "MODULES",
        "NETWORK",
        "metalplane: cannot reach http://10.0.0.2:5240/MAAS/metadata/ without a network: giving up",
    ]
    assert lines[-3:] == ["metalplane: finished: FAILED", "metalplane: rebooting", "REBOOT -f"]
    unknown = run_init_function(fake_machine(tmp_path / "u", "mp_mode=dance"), STUBS + "run_orders")
    assert "|poweroff on the kernel command line: nothing to do" in unknown and unknown.endswith("POWEROFF -f\n")
