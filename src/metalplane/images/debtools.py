"""Dynamically linked tools for the ephemeral image, taken from Debian .debs with their libraries.

The installer (ephemeral/install.sh) needs what busybox lacks: GPT partitioning
(sfdisk), ext4 (mke2fs) and FAT for the EFI system partition (mkfs.fat). Like the
kernel, they come from .deb files read with dpkg-deb, never installed: the tool
packages' files, then the shared libraries their ELF headers name (DT_NEEDED and
the program interpreter), looked up in the packages they depend on, recursively,
until every library is found (else the build fails and names it).
"""

from __future__ import annotations

import posixpath
import re
import struct
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from metalplane.images.elf import elf_links
from metalplane.images.errors import BuildError

# package -> the paths (as in the .deb, no leading "/") the ephemeral image takes from it
INSTALLER_TOOLS = {
    "fdisk": ("sbin/sfdisk",),
    "e2fsprogs": ("sbin/mke2fs", "sbin/mkfs.ext4", "etc/mke2fs.conf"),
    "dosfstools": ("sbin/mkfs.fat", "sbin/mkfs.vfat"),
}

FetchDeb = Callable[[str], Path]


@dataclass(frozen=True)
class Member:
    path: str  # no leading "/"
    data: bytes = b""
    link: str | None = None  # symlink target, as stored
    mode: int = 0o644


# -- package relations (pure) ------------------------------------------------------------


def depends(control_fields: str) -> list[str]:
    """Package names of Pre-Depends and Depends (first alternative, no versions)."""
    names = []
    for line in control_fields.splitlines():
        key, _, value = line.partition(":")
        if key.strip() not in ("Pre-Depends", "Depends"):
            continue
        for clause in value.split(","):
            first = clause.split("|")[0].strip()
            name = re.split(r"[\s(:]", first, maxsplit=1)[0]
            if name:
                names.append(name)
    return names


# -- .deb reading ------------------------------------------------------------------------------


def deb_members(deb: Path) -> Iterator[Member]:
    """Regular files and symlinks of a .deb's data (dpkg-deb --fsys-tarfile)."""
    try:
        proc = subprocess.Popen(
            ["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except FileNotFoundError:
        raise BuildError("dpkg-deb is not installed (package dpkg)") from None
    assert proc.stdout is not None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for m in tar:
                path = m.name.removeprefix("./").lstrip("/")
                if m.isfile():
                    f = tar.extractfile(m)
                    yield Member(path, f.read() if f else b"", None, m.mode & 0o7777)
                elif m.issym():
                    yield Member(path, b"", m.linkname, 0o777)
    except tarfile.TarError as exc:
        raise BuildError(f"{deb}: {exc}") from None
    finally:
        proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.wait() != 0 and err:
            raise BuildError(f"dpkg-deb --fsys-tarfile {deb}: {err.strip()}")


def control(deb: Path) -> str:
    done = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise BuildError(f"dpkg-deb -f {deb}: {done.stderr.strip()}")
    return done.stdout


def _resolve(path: str, link: str) -> str:
    target = link.lstrip("/") if link.startswith("/") else posixpath.join(posixpath.dirname(path), link)
    return posixpath.normpath(target)


# -- collecting --------------------------------------------------------------------------------


@dataclass
class Collected:
    members: dict[str, Member] = field(default_factory=dict)
    packages: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(len(m.data) for m in self.members.values())


def collect_tools(fetch: FetchDeb, tools: dict[str, tuple[str, ...]] = INSTALLER_TOOLS) -> Collected:
    """The tools' files plus every shared library they need, from their packages' dependencies."""
    out = Collected()
    wanted_sonames: set[str] = set()
    wanted_paths: set[str] = set()  # interpreters, by full path
    queue: list[str] = []
    seen: set[str] = set(tools)

    def take(member: Member, by_path: dict[str, Member]) -> None:
        out.members[member.path] = member
        if member.link is not None:
            target = by_path.get(_resolve(member.path, member.link))
            if target is not None and target.path not in out.members:
                take(target, by_path)
            return
        try:
            links = elf_links(member.data)
        except (ValueError, struct.error) as exc:
            raise BuildError(f"{member.path}: unreadable ELF: {exc}") from None
        if links:
            wanted_sonames.update(links.needed)
            if links.interpreter:
                wanted_paths.add(links.interpreter.lstrip("/"))

    def read(package: str) -> tuple[Path, dict[str, Member]]:
        deb = fetch(package)
        out.packages.append(deb.name)
        return deb, {m.path: m for m in deb_members(deb)}

    for package, paths in tools.items():
        deb, by_path = read(package)
        for path in paths:
            if path not in by_path:
                raise BuildError(f"{deb.name} has no {path}")
            take(by_path[path], by_path)
        queue += depends(control(deb))

    def missing() -> tuple[set[str], set[str]]:
        have = {posixpath.basename(p) for p in out.members}
        return wanted_sonames - have, {p for p in wanted_paths if p not in out.members}

    while any(missing()):
        if not queue:
            lacking_sonames, lacking_paths = missing()
            raise BuildError(f"no package the tools depend on has {', '.join(sorted(lacking_sonames | lacking_paths))}")
        package = queue.pop(0)
        if package in seen:
            continue
        seen.add(package)
        deb, by_path = read(package)
        lacking_sonames, lacking_paths = missing()
        for member in by_path.values():
            if member.path in lacking_paths or (
                posixpath.basename(member.path) in lacking_sonames and re.search(r"(^|/)lib[^/]*/", member.path)
            ):
                take(member, by_path)
        queue += depends(control(deb))
    return out
