"""`metalplane images build-ephemeral`: a small ephemeral image, built offline.

- The kernel: vmlinuz from a Debian linux-image-*-amd64 .deb (given, or fetched
  once with `apt-get download` into the cache), read with `dpkg-deb
  --fsys-tarfile`, never installed.
- The initramfs: a static busybox (the host's busybox-static, or the
  busybox-static .deb), metalplane's /init (ephemeral/init.sh), its udhcpc
  script and built-in commissioning scripts, and the kernel modules for
  common virtual and physical NICs and disks (Debian builds virtio, e1000,
  ahci, nvme... as modules), ordered by their `depends=` for insmod; the
  installer (ephemeral/install.sh) and the tools busybox lacks for it (sfdisk,
  mke2fs, mkfs.fat with their shared libraries, taken from .debs: debtools.py).
- The output: a simplestreams mirror (publish.py) the region imports with
  `boot-resources import path=DIR` (or url=), or uploaded through the API.

Downloads are cached under $METALPLANE_CACHE_DIR (default /var/cache/metalplane).
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from metalplane.images import cpio
from metalplane.images.debtools import Collected, collect_tools, deb_members
from metalplane.images.elf import is_static_elf
from metalplane.images.errors import BuildError
from metalplane.images.modinfo import ModInfo, ModuleError, builtin_names, decompress, load_order, parse_modinfo
from metalplane.images.publish import BUILD_ARCHITECTURE, publish_image
from metalplane.images.simplestreams import StreamItem, version_key

CACHE_ENV = "METALPLANE_CACHE_DIR"
DEFAULT_CACHE = Path("/var/cache/metalplane")
KERNEL_METAPACKAGE = "linux-image-amd64"
# NICs and disks of qemu/KVM (virtio, e1000, e1000e, AHCI/PIIX) and common hardware, and
# the file systems the installer makes: ext4 (whose checksums need crc32c, which the crypto
# API would otherwise ask modprobe for) and FAT for an EFI system partition.
DEFAULT_MODULES = (
    "virtio_pci",
    "virtio_net",
    "virtio_blk",
    "virtio_scsi",
    "e1000",
    "e1000e",
    "ahci",
    "ata_piix",
    "sd_mod",
    "nvme",
    "crc32c_generic",
    "ext4",
    "vfat",
    "nls_cp437",
    "nls_ascii",
    "nls_utf8",
)
# Applets /init and the scripts need, if `busybox --list-full` cannot run.
FALLBACK_APPLETS = (
    "bin/sh",
    "bin/cat",
    "bin/echo",
    "bin/mount",
    "bin/mkdir",
    "bin/sleep",
    "bin/ls",
    "bin/ip",
    "bin/sed",
    "bin/grep",
    "bin/rm",
    "bin/cp",
    "bin/cut",
    "bin/dmesg",
    "bin/sync",
    "bin/uname",
    "bin/readlink",
    "bin/printf",
    "sbin/insmod",
    "sbin/lsmod",
    "sbin/poweroff",
    "sbin/reboot",
    "sbin/udhcpc",
    "usr/bin/wget",
    "usr/bin/awk",
    "usr/bin/tr",
    "usr/bin/head",
    "usr/bin/timeout",
    "usr/bin/basename",
    "usr/bin/setsid",
    "usr/bin/tail",
    "bin/cttyhack",
)

Log = Callable[[str], None]


BUILD_STEPS = 4  # the `step` calls of build_ephemeral


def cache_dir(override: Path | None = None) -> Path:
    return override or Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def host_codename() -> str:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return "unknown"
    found = re.search(r'^VERSION_CODENAME="?([A-Za-z0-9._+-]+)"?$', text, re.M)
    return found.group(1) if found else "unknown"


def _run(args: list[str], cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        raise BuildError(f"{args[0]} is not installed") from None
    if done.returncode != 0:
        raise BuildError(f"{' '.join(args)} failed: {(done.stderr or done.stdout).strip()[-2000:]}")
    return done.stdout


def kernel_package() -> str:
    """The kernel package linux-image-amd64 points at, e.g. linux-image-6.1.0-56-amd64."""
    out = _run(["apt-cache", "depends", "--important", KERNEL_METAPACKAGE])
    found = re.findall(r"Depends:\s*(linux-image-[0-9][^\s<>]*-amd64)\b", out)
    if found:
        return found[0]
    out = _run(["apt-cache", "search", "--names-only", r"^linux-image-[0-9.]+-[0-9]+-amd64$"])
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    if not names:
        raise BuildError("apt-cache knows no linux-image-*-amd64 package: run apt-get update, or give --kernel-deb")
    return max(names, key=version_key)


def fetch_deb(package: str, cache: Path, log: Log) -> Path:
    """The cached .deb of `package`, fetched with `apt-get download` the first time."""
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    cached = sorted(debs.glob(f"{package}_*.deb"), key=lambda p: version_key(p.name))
    if cached:
        log(f"using cached {cached[-1]}")
        return cached[-1]
    log(f"downloading {package} with apt-get download (once; cached in {debs})")
    with tempfile.TemporaryDirectory(dir=debs, prefix=".download-") as tmp:
        os.chmod(tmp, 0o755)  # apt's _apt user writes here when it can
        _run(["apt-get", "download", package], cwd=Path(tmp))
        got = list(Path(tmp).glob(f"{package}_*.deb"))
        if len(got) != 1:
            raise BuildError(f"apt-get download {package} left {[p.name for p in got]}")
        target = debs / got[0].name
        os.replace(got[0], target)
    return target


@dataclass
class Kernel:
    release: str
    vmlinuz: bytes
    modules: list[tuple[str, bytes]] = field(default_factory=list)  # (path under lib/modules/REL, ko)
    missing: list[str] = field(default_factory=list)


def read_kernel_deb(deb: Path, wanted: Iterable[str], required: Iterable[str] = ()) -> Kernel:
    """vmlinuz and the wanted modules (with their dependencies, in load order) of a kernel .deb."""
    vmlinuz: bytes | None = None
    release = ""
    infos: dict[str, ModInfo] = {}
    paths: dict[str, str] = {}
    builtin_text = ""
    for m in deb_members(deb):
        name = m.path
        if m.link is not None:
            continue
        if re.fullmatch(r"boot/vmlinuz-.+", name):
            vmlinuz, release = m.data, name.split("vmlinuz-", 1)[1]
        elif re.fullmatch(r"lib/modules/[^/]+/modules\.builtin", name):
            builtin_text = m.data.decode(errors="replace")
        elif name.startswith("lib/modules/") and name.endswith((".ko", ".ko.xz")):
            try:
                info = parse_modinfo(name, decompress(name, m.data))
            except (ModuleError, ValueError, struct.error, EOFError) as exc:
                raise BuildError(f"{deb}: {name}: {exc}") from None
            infos[info.name] = info
            paths[info.name] = name
    if vmlinuz is None:
        raise BuildError(f"{deb} has no boot/vmlinuz-*: is it a linux-image package?")
    try:
        order, missing = load_order(wanted, infos, builtin_names(builtin_text), required)
    except ModuleError as exc:
        raise BuildError(str(exc)) from None
    by_path = {paths[n]: n for n in order}
    found: dict[str, bytes] = {}
    if by_path:
        for m in deb_members(deb):
            if m.link is None and m.path in by_path:
                found[by_path[m.path]] = decompress(m.path, m.data)
    prefix = f"lib/modules/{release}/"
    modules = []
    for n in order:
        relative = paths[n][len(prefix) :] if paths[n].startswith(prefix) else paths[n].rsplit("/", 1)[-1]
        modules.append((relative.removesuffix(".xz"), found[n]))
    return Kernel(release, vmlinuz, modules, missing)


def busybox_binary(given: Path | None, cache: Path, log: Log) -> tuple[bytes, Path | None]:
    """(static busybox, a path to run it from to list its applets)."""
    candidates = [given] if given else [Path("/bin/busybox"), Path("/usr/bin/busybox")]
    for path in candidates:
        if path and path.is_file():
            data = path.read_bytes()
            if is_static_elf(data):
                return data, path
            if given:
                raise BuildError(f"{given} is not a static executable: use busybox-static's")
    deb = fetch_deb("busybox-static", cache, log)
    for m in deb_members(deb):
        if m.link is None and m.path in ("bin/busybox", "usr/bin/busybox"):
            data = m.data
            target = cache / "busybox-static"
            target.write_bytes(data)
            target.chmod(0o755)
            return data, target
    raise BuildError(f"{deb} has no bin/busybox")


def busybox_applets(busybox: Path | None) -> list[str]:
    if busybox is not None:
        try:
            out = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True, timeout=30)
            applets = [line.strip() for line in out.stdout.splitlines() if line.strip()]
            if out.returncode == 0 and "bin/sh" in applets:
                return [a for a in applets if a not in ("linuxrc", "sbin/init", "init")]
        except (OSError, subprocess.SubprocessError):
            pass
    return list(FALLBACK_APPLETS)


def _asset(name: str) -> bytes:
    return resources.files("metalplane.images.ephemeral").joinpath(name).read_bytes()


def builtin_scripts() -> list[tuple[str, bytes]]:
    folder = resources.files("metalplane.images.ephemeral").joinpath("scripts")
    return sorted((p.name.removesuffix(".sh"), p.read_bytes()) for p in folder.iterdir() if p.name.endswith(".sh"))


def initramfs(
    busybox: bytes, applets: list[str], kernel: Kernel, version: str, tools: Collected | None = None
) -> bytes:
    """The gzipped newc archive: busybox + /init + scripts + modules (+ /dev/console), and the
    installer's tools with their libraries (they replace busybox applets of the same name)."""
    entries: dict[str, cpio.Entry] = {}

    def add(entry: cpio.Entry) -> None:
        parts = entry.path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            entries.setdefault(parent, cpio.directory(parent))
        entries[entry.path] = entry

    for d in (
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "root",
        "lib/modules",
        "etc/metalplane/scripts",
    ):
        add(cpio.directory(d, 0o1777 if d == "tmp" else 0o755))
    add(cpio.file("bin/busybox", busybox, 0o755))
    for applet in applets:
        if applet != "bin/busybox":
            add(cpio.symlink(applet, "/bin/busybox"))
    add(cpio.char_device("dev/console", 5, 1))
    add(cpio.char_device("dev/null", 1, 3, 0o666))
    add(cpio.file("init", _asset("init.sh"), 0o755))
    add(cpio.file("etc/metalplane/udhcpc.sh", _asset("udhcpc.sh"), 0o755))
    add(cpio.file("etc/metalplane/install.sh", _asset("install.sh"), 0o644))
    add(cpio.file("etc/metalplane/erase.sh", _asset("erase.sh"), 0o644))
    for member in tools.members.values() if tools else ():
        if member.link is not None:
            add(cpio.symlink(member.path, member.link))
        else:
            add(cpio.file(member.path, member.data, member.mode))
    add(cpio.file("etc/metalplane/version", f"{version}\n".encode()))
    for name, data in builtin_scripts():
        add(cpio.file(f"etc/metalplane/scripts/{name}", data, 0o755))
    add(cpio.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"))
    add(cpio.file("etc/group", b"root:x:0:\n"))
    add(cpio.file("etc/hosts", b"127.0.0.1 localhost\n"))
    add(cpio.file("etc/nsswitch.conf", b"hosts: files dns\n"))
    order = []
    for relative, data in kernel.modules:
        add(cpio.file(f"lib/modules/{kernel.release}/{relative}", data))
        order.append(f"{kernel.release}/{relative}")
    add(cpio.file("lib/modules/load-order", ("\n".join(order) + "\n").encode() if order else b""))
    return cpio.gzip_bytes(cpio.newc(list(entries.values())))


@dataclass
class BuildResult:
    name: str
    architecture: str
    version: str
    kernel_package: str
    kernel_release: str
    modules: list[str]
    missing_modules: list[str]
    out: Path
    files: list[StreamItem]

    def path(self, ftype: str) -> Path:
        return self.out / next(f.path for f in self.files if f.ftype == ftype)


def build_ephemeral(
    out: Path,
    *,
    kernel_deb: Path | None = None,
    kernel_package_name: str | None = None,
    busybox: Path | None = None,
    cache: Path | None = None,
    release: str | None = None,
    version: str | None = None,
    extra_modules: Iterable[str] = (),
    log: Log = lambda line: None,
    step: Log = lambda label: None,
) -> BuildResult:
    """`step` is called at each of BUILD_STEPS stages (for a progress bar); `log` with details."""
    cache = cache_dir(cache)
    release = release or host_codename()
    version = version or datetime.now(UTC).strftime("%Y%m%d.%H%M%S")
    step("the kernel package")
    if kernel_deb is None:
        package = kernel_package_name or kernel_package()
        kernel_deb = fetch_deb(package, cache, log)
    elif not kernel_deb.is_file():
        raise BuildError(f"{kernel_deb}: no such file")
    package = kernel_deb.name.split("_", 1)[0]
    extra = list(extra_modules)
    log(f"reading {kernel_deb.name}")
    step("the kernel and its modules")
    kernel = read_kernel_deb(kernel_deb, [*DEFAULT_MODULES, *extra], required=extra)
    log(f"kernel {kernel.release}: {len(kernel.vmlinuz)} bytes; {len(kernel.modules)} modules for insmod")
    if kernel.missing:
        log(f"not in this kernel (skipped): {', '.join(kernel.missing)}")
    step("busybox and the initramfs")
    busybox_data, busybox_path = busybox_binary(busybox, cache, log)
    tools = collect_tools(lambda package: fetch_deb(package, cache, log))
    log(f"installer tools: {len(tools.members)} files, {tools.size} bytes, from {', '.join(tools.packages)}")
    initrd = initramfs(busybox_data, busybox_applets(busybox_path), kernel, version, tools)
    log(f"initramfs: {len(initrd)} bytes (gzip)")
    step("publishing the image")
    with tempfile.TemporaryDirectory(prefix="mp-ephemeral-") as tmp:
        staged = {"boot-kernel": kernel.vmlinuz, "boot-initrd": initrd}
        for ftype, data in staged.items():
            (Path(tmp) / ftype).write_bytes(data)
        files = publish_image(
            out,
            os_name="ephemeral",
            release=release,
            version=version,
            files={ftype: Path(tmp) / ftype for ftype in staged},
            title=f"metalplane ephemeral ({release}, kernel {kernel.release})",
            extra={"kflavor": "generic", "kernel_release": kernel.release, "kernel_package": package},
        )
    return BuildResult(
        name=f"ephemeral/{release}",
        architecture=BUILD_ARCHITECTURE,
        version=version,
        kernel_package=package,
        kernel_release=kernel.release,
        modules=[m.rsplit("/", 1)[-1] for m, _ in kernel.modules],
        missing_modules=kernel.missing,
        out=out,
        files=files,
    )


def qemu_command(kernel: Path, initrd: Path, append: str, memory_mib: int = 512) -> list[str]:
    return [
        "qemu-system-x86_64",
        "-accel",
        "tcg",
        "-m",
        str(memory_mib),
        "-kernel",
        str(kernel),
        "-initrd",
        str(initrd),
        "-append",
        append,
        "-nographic",
        "-no-reboot",
    ]
