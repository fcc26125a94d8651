"""`metalplane images build-debian`: a deployable Debian root image, built with debootstrap.

- The mirror is the one this host's apt sources name for the release (read at run
  time from /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list; `--mirror`
  overrides it). Downloads are kept in $METALPLANE_CACHE_DIR/debootstrap/RELEASE
  (debootstrap --cache-dir), so a second build fetches only the package indexes.
- Two stages (`--foreign`, then `--second-stage` in a chroot) so that the dpkg
  path-excludes of the lean variant (no docs, man pages, locales; no kernel
  modules for sound, video capture, wireless, GPUs...) are in place before the
  packages are unpacked: the kernel's initramfs is generated once, without them.
- Packages: minbase plus systemd (networkd configures the network), udev, dbus,
  a kernel (linux-image-amd64, or e.g. linux-image-cloud-amd64 for VMs; with
  initramfs-tools), openssh-server, grub-pc (and grub-efi-amd64-bin for UEFI),
  sudo, wget (the first-boot agent's HTTP client), iproute2, e2fsprogs, netbase.
- metalplane's first-boot agent (deployed/firstboot.sh) and two systemd units: one
  makes the machine's own SSH host keys before sshd starts (the image ships none),
  one runs user_data and reports "deployed" to the region's metadata API.
- A default user (`debian`, as in Debian's cloud images: locked password, sudo
  without one) for the SSH keys the installer writes.
- Output: a simplestreams mirror (publish.py): DISTRO/RELEASE/amd64/VERSION/root-tgz
  (MAAS's name for a gzipped root tarball) and `manifest` (package versions), in
  the same stream as the ephemeral image, for `boot-resources import`.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from metalplane.images.build import BuildError, cache_dir
from metalplane.images.publish import BUILD_ARCHITECTURE, publish_image
from metalplane.images.simplestreams import StreamItem

Log = Callable[[str], None]

APT_DIR = Path("/etc/apt")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
DEFAULT_USER = "debian"
PACKAGES = (
    "systemd-sysv",
    "udev",
    "dbus",
    "libpam-systemd",
    "openssh-server",
    "grub-pc",
    "grub-efi-amd64-bin",
    "sudo",
    "wget",
    "iproute2",
    "e2fsprogs",
    "netbase",
)
# Debian's kernel for any machine; linux-image-cloud-amd64 is its smaller flavour for virtual machines.
KERNEL = "linux-image-amd64"
# dpkg's path-exclude/path-include rules of the lean variant, in order (the last match wins).
# Docs (but not the copyright files), man pages, locales, and kernel modules a server
# does not need: sound, video capture and TV, wireless and Bluetooth, the big desktop
# GPU drivers (amdgpu, radeon, nouveau, i915; server BMC graphics such as ast and
# mgag200 stay), staging, industrial I/O, USB gadgets, ISDN and the kernel's self-tests.
LEAN_RULES = (
    ("exclude", "/usr/share/doc/*"),
    ("include", "/usr/share/doc/*/copyright"),
    ("exclude", "/usr/share/man/*"),
    ("exclude", "/usr/share/info/*"),
    ("exclude", "/usr/share/locale/*"),
    ("include", "/usr/share/locale/locale.alias"),
    *(
        ("exclude", f"{lib}/modules/*/kernel/{tree}/*")
        for lib in ("/lib", "/usr/lib")
        for tree in (
            "sound",
            "drivers/media",
            "drivers/net/wireless",
            "net/wireless",
            "net/mac80211",
            "net/bluetooth",
            "drivers/bluetooth",
            "drivers/staging",
            "drivers/comedi",
            "drivers/iio",
            "drivers/gpu/drm/amd",
            "drivers/gpu/drm/radeon",
            "drivers/gpu/drm/nouveau",
            "drivers/gpu/drm/i915",
            "drivers/usb/gadget",
            "drivers/isdn",
        )
    ),
    *(("exclude", f"{lib}/modules/*/kernel/lib/test_*") for lib in ("/lib", "/usr/lib")),
)
FIRSTBOOT = "/usr/lib/metalplane/firstboot"
FIRSTBOOT_DONE = "/var/lib/metalplane/booted"
AGENT_CONF = "/etc/metalplane/agent.conf"


# -- apt sources (pure) ------------------------------------------------------------------------


@dataclass(frozen=True)
class AptSource:
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]
    types: tuple[str, ...] = ("deb",)

    @property
    def is_security(self) -> bool:
        return any(s.endswith(("-security", "/updates")) for s in self.suites)


def parse_deb822_sources(text: str) -> list[AptSource]:
    """The stanzas of a deb822 `.sources` file (`Enabled: no` ones left out)."""
    found = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in " \t" and key:
                fields[key] += " " + line.strip()
                continue
            name, sep, value = line.partition(":")
            if not sep:
                continue
            key = name.strip().lower()
            fields[key] = value.strip()
        if not fields.get("uris") or fields.get("enabled", "yes").lower() == "no":
            continue
        found.append(
            AptSource(
                uris=tuple(fields["uris"].split()),
                suites=tuple(fields.get("suites", "").split()),
                components=tuple(fields.get("components", "").split()),
                types=tuple(fields.get("types", "deb").split()),
            )
        )
    return found


def parse_one_line_sources(text: str) -> list[AptSource]:
    """`deb [options] URI SUITE COMPONENT...` lines of a sources.list."""
    found = []
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] in ("deb", "deb-src"):
            found.append(
                AptSource(uris=(words[1],), suites=(words[2],), components=tuple(words[3:]), types=(words[0],))
            )
    return found


def host_sources(apt_dir: Path = APT_DIR) -> list[AptSource]:
    sources: list[AptSource] = []
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        sources += parse_deb822_sources(path.read_text(errors="replace"))
    for path in [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]:
        if path.is_file():
            sources += parse_one_line_sources(path.read_text(errors="replace"))
    return sources


def archive_mirror(sources: Iterable[AptSource], release: str) -> str:
    """The Debian archive URI the host uses: one that names `release` if any, else any non-security one."""
    archives = [s for s in sources if "deb" in s.types and not s.is_security and "main" in s.components]
    for s in archives:
        if release in s.suites:
            return s.uris[0]
    if archives:
        return archives[0].uris[0]
    raise BuildError(
        "this host's apt sources name no Debian archive with 'main' "
        "(looked in /etc/apt/sources.list.d/*.sources and sources.list): give --mirror URL"
    )


def security_mirror(sources: Iterable[AptSource]) -> str | None:
    for s in sources:
        if "deb" in s.types and s.is_security:
            return s.uris[0]
    return None


def image_sources(release: str, mirror: str, security: str | None) -> str:
    """The deployed machine's /etc/apt/sources.list.d/debian.sources: the build's mirrors."""
    text = f"Types: deb\nURIs: {mirror}\nSuites: {release} {release}-updates\nComponents: main\nSigned-By: {KEYRING}\n"
    if security:
        text += f"\nTypes: deb\nURIs: {security}\nSuites: {release}-security\nComponents: main\nSigned-By: {KEYRING}\n"
    return text


# -- the lean variant (pure) -------------------------------------------------------------------


def dpkg_lean_config(rules: Iterable[tuple[str, str]] = LEAN_RULES) -> str:
    lines = ["# metalplane's lean image: what dpkg does not unpack (see `man dpkg`, --path-exclude)."]
    lines += [f"path-{kind}={pattern}" for kind, pattern in rules]
    return "\n".join(lines) + "\n"


def lean_excludes(path: str, rules: Iterable[tuple[str, str]] = LEAN_RULES) -> bool:
    """Whether dpkg leaves `path` (absolute, as in a package) out: the last matching rule wins.

    dpkg matches with fnmatch(3) without FNM_PATHNAME, so "*" also matches "/".
    """
    verdict = False
    for kind, pattern in rules:
        if fnmatch.fnmatchcase(path, pattern):
            verdict = kind == "exclude"
    return verdict


# -- files the build writes into the image (pure) ----------------------------------------------


def hostkeys_unit() -> str:
    return (
        "[Unit]\nDescription=metalplane: this machine's own SSH host keys\n"
        "Before=ssh.service\n\n"
        "[Service]\nType=oneshot\nExecStart=/usr/bin/ssh-keygen -A\n\n"
        "[Install]\nWantedBy=ssh.service\n"
    )


def firstboot_unit() -> str:
    return (
        "[Unit]\nDescription=metalplane: first boot (run user_data, report deployed)\n"
        "Wants=network-online.target\nAfter=network-online.target ssh.service\n"
        f"ConditionPathExists={AGENT_CONF}\nConditionPathExists=!{FIRSTBOOT_DONE}\n\n"
        f"[Service]\nType=oneshot\nExecStart={FIRSTBOOT}\nStandardOutput=journal+console\n"
        "TimeoutStartSec=infinity\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


def grub_defaults() -> str:
    """Serial and VGA console (servers are watched through their BMC's serial-over-LAN)."""
    return (
        "# metalplane: consoles for servers (VGA and serial-over-LAN), a short menu timeout.\n"
        'GRUB_TIMEOUT=1\nGRUB_CMDLINE_LINUX_DEFAULT=""\n'
        'GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8"\n'
        'GRUB_TERMINAL="console serial"\nGRUB_SERIAL_COMMAND="serial --speed=115200"\n'
    )


def image_conf(name: str, version: str, user: str = DEFAULT_USER) -> str:
    """/etc/metalplane/image.conf: what the installer needs to know about the image."""
    return f"name={name}\nversion={version}\ndefault_user={user}\n"


# -- running things ----------------------------------------------------------------------------


def _run(args: list[str], log: Log, timeout: float = 1800, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    except FileNotFoundError:
        raise BuildError(f"{args[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise BuildError(f"{' '.join(args)} did not finish within {timeout:.0f} s") from None
    if done.returncode != 0:
        tail = (done.stderr.strip() + "\n" + done.stdout.strip()).strip()[-3000:]
        raise BuildError(f"{' '.join(args)} exited {done.returncode}:\n{tail}")
    return done.stdout


CHROOT_ENV = {
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "LC_ALL": "C.UTF-8",
    "DEBIAN_FRONTEND": "noninteractive",
    "HOME": "/root",
}


def _chroot(root: Path, args: list[str], log: Log, timeout: float = 1800) -> str:
    return _run(["chroot", str(root), *args], log, timeout, env=CHROOT_ENV)


def _write(root: Path, path: str, text: str, mode: int = 0o644) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)


def prune(root: Path, rules: Iterable[tuple[str, str]] = LEAN_RULES) -> int:
    """Delete what the lean rules exclude but debootstrap's first stage unpacked anyway; bytes freed."""
    rules = list(rules)
    freed = 0
    for top in ("usr/share", "usr/lib/modules"):
        base = root / top
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base, topdown=False):
            for name in filenames:
                path = Path(dirpath) / name
                if lean_excludes("/" + str(path.relative_to(root)), rules):
                    freed += path.lstat().st_size
                    path.unlink()
            for name in dirnames:
                path = Path(dirpath) / name
                if not path.is_symlink() and not any(path.iterdir()):
                    path.rmdir()
    return freed


def _agent_script() -> str:
    return resources.files("metalplane.images.deployed").joinpath("firstboot.sh").read_text()


def configure(root: Path, name: str, version: str, release: str, mirror: str, security: str | None, log: Log) -> None:
    """metalplane's part of the image, inside the debootstrapped tree."""
    _write(root, "/etc/apt/sources.list.d/debian.sources", image_sources(release, mirror, security))
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    _write(root, FIRSTBOOT, _agent_script(), 0o755)
    _write(root, "/etc/systemd/system/metalplane-hostkeys.service", hostkeys_unit())
    _write(root, "/etc/systemd/system/metalplane-firstboot.service", firstboot_unit())
    _write(root, "/etc/default/grub.d/50-metalplane.cfg", grub_defaults())
    _write(root, "/etc/metalplane/image.conf", image_conf(name, version))
    _write(
        root,
        "/etc/ssh/sshd_config.d/metalplane.conf",
        "# metalplane: keys only (the installer writes the user's authorized_keys).\nPasswordAuthentication no\n",
    )
    _write(root, f"/etc/sudoers.d/90-metalplane-{DEFAULT_USER}", f"{DEFAULT_USER} ALL=(ALL) NOPASSWD:ALL\n", 0o440)
    # network-online is reached when any link is up (else a NIC without a DHCP answer holds the first boot 2 min).
    _write(
        root,
        "/etc/systemd/system/systemd-networkd-wait-online.service.d/metalplane.conf",
        "[Service]\nExecStart=\nExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=120\n",
    )
    _write(root, "/etc/hostname", "localhost\n")
    # debootstrap copied the build host's: the installer writes the machine's own.
    _write(
        root,
        "/etc/hosts",
        "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n"
        "ff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n",
    )
    _write(root, "/etc/resolv.conf", "")
    _write(root, "/etc/fstab", "# written by the metalplane installer\n")
    _chroot(
        root,
        [
            "useradd",
            "--create-home",
            "--shell",
            "/bin/bash",
            "--groups",
            "sudo",
            "--comment",
            "Debian (metalplane default user)",
            DEFAULT_USER,
        ],
        log,
    )
    _chroot(
        root,
        [
            "systemctl",
            "enable",
            "systemd-networkd.service",
            "metalplane-hostkeys.service",
            "metalplane-firstboot.service",
        ],
        log,
    )
    # Nothing machine-specific: host keys come at first boot, the machine id too.
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    _write(root, "/etc/machine-id", "")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)


def clean(root: Path) -> None:
    """Caches, package lists and logs of the build: not part of the image."""
    for pattern in (
        "var/cache/apt/archives/*.deb",
        "var/cache/apt/*.bin",
        "var/lib/apt/lists/*",
        "var/cache/debconf/*-old",
        "var/lib/dpkg/*-old",
        "var/log/*.log",
        "var/log/apt/*",
        "tmp/*",
        "var/tmp/*",
    ):
        for path in root.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.name != "lock":
                path.unlink()


def kernel_release(root: Path) -> str:
    found = sorted(p.name.removeprefix("vmlinuz-") for p in (root / "boot").glob("vmlinuz-*"))
    if not found:
        raise BuildError("the image has no /boot/vmlinuz-*: the kernel package did not install")
    return found[-1]


def tree_size(root: Path) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            total += (Path(dirpath) / name).lstat().st_size
    return total


@dataclass
class DebianBuildResult:
    name: str
    architecture: str
    version: str
    kernel_release: str
    mirror: str
    packages: int
    root_bytes: int
    seconds: float
    out: Path
    files: list[StreamItem] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def path(self, ftype: str) -> Path:
        return self.out / next(f.path for f in self.files if f.ftype == ftype)


def _check_tools() -> None:
    for tool in ("debootstrap", "chroot", "tar", "gzip"):
        if shutil.which(tool) is None:
            raise BuildError(
                f"{tool} is not installed" + (" (apt-get install debootstrap)" if tool == "debootstrap" else "")
            )
    if os.geteuid() != 0:
        raise BuildError("building a Debian root image needs root (debootstrap, chroot)")


def build_debian(
    out: Path,
    *,
    release: str = "bookworm",
    cache: Path | None = None,
    version: str | None = None,
    mirror: str | None = None,
    kernel: str = KERNEL,
    extra_packages: Iterable[str] = (),
    lean: bool = True,
    log: Log = lambda line: None,
) -> DebianBuildResult:
    _check_tools()
    started = time.monotonic()
    timings: dict[str, float] = {}
    sources = host_sources()
    mirror = mirror or archive_mirror(sources, release)
    security = security_mirror(sources)
    version = version or datetime.now(UTC).strftime("%Y%m%d.%H%M%S")
    name = f"debian/{release}"
    downloads = cache_dir(cache) / "debootstrap" / release
    downloads.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    packages = [*PACKAGES, kernel, *extra_packages]
    with tempfile.TemporaryDirectory(dir=out, prefix=".build-debian-") as tmp:
        root = Path(tmp) / "root"
        log(f"debootstrap {release} from {mirror} (downloads cached in {downloads})")
        _run(
            [
                "debootstrap",
                "--foreign",
                "--variant=minbase",
                "--arch=amd64",
                f"--cache-dir={downloads}",
                f"--include={','.join(packages)}",
                release,
                str(root),
                mirror,
            ],
            log,
        )
        timings["first stage"] = time.monotonic() - started
        if lean:
            _write(root, "/etc/dpkg/dpkg.cfg.d/metalplane-lean", dpkg_lean_config())
        mark = time.monotonic()
        log("debootstrap --second-stage (installs and configures the packages)")
        _chroot(root, ["/debootstrap/debootstrap", "--second-stage"], log)
        timings["second stage"] = time.monotonic() - mark
        mark = time.monotonic()
        freed = prune(root) if lean else 0
        if freed:
            log(f"lean: removed {freed >> 20} MiB that the first stage unpacked before dpkg's excludes")
        configure(root, name, version, release, mirror, security, log)
        release_name = kernel_release(root)
        manifest = _chroot(root, ["dpkg-query", "-W", "-f", "${Package}\t${Version}\n"], log)
        clean(root)
        root_bytes = tree_size(root)
        timings["configure"] = time.monotonic() - mark
        mark = time.monotonic()
        staging = Path(tmp) / "files"
        staging.mkdir()
        (staging / "manifest").write_text(manifest)
        log(f"root: {root_bytes >> 20} MiB, {manifest.count(chr(10))} packages; writing root-tgz")
        # Numeric owners: the installer's busybox tar has no user database to map names.
        _run(
            ["tar", "--numeric-owner", "--one-file-system", "-C", str(root), "-czf", str(staging / "root-tgz"), "."],
            log,
        )
        timings["tarball"] = time.monotonic() - mark
        files = publish_image(
            out,
            os_name="debian",
            release=release,
            version=version,
            files={"root-tgz": staging / "root-tgz", "manifest": staging / "manifest"},
            title=f"Debian {release} (metalplane, kernel {release_name})",
            link=True,
            extra={
                "kflavor": "cloud" if "-cloud-" in release_name else "generic",
                "kernel_release": release_name,
                "kernel_package": kernel,
                "default_user": DEFAULT_USER,
            },
        )
    return DebianBuildResult(
        name=name,
        architecture=BUILD_ARCHITECTURE,
        version=version,
        kernel_release=release_name,
        mirror=mirror,
        packages=manifest.count("\n"),
        root_bytes=root_bytes,
        seconds=time.monotonic() - started,
        out=out,
        files=files,
        timings=timings,
    )
