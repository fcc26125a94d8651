"""Kernel modules without kmod: read a .ko's .modinfo section and order modules for insmod (pure).

Debian's kernel .deb ships modules but no modules.dep (depmod runs at install),
so the dependencies come from each module's own `depends=` field.
"""

from __future__ import annotations

import lzma
import struct
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

MODULE_SUFFIXES = (".ko", ".ko.xz")


class ModuleError(ValueError):
    pass


@dataclass(frozen=True)
class ModInfo:
    name: str
    depends: tuple[str, ...]


def module_name(path: str) -> str:
    """virtio_net from .../virtio_net.ko(.xz); kernel names use "_" where files may use "-"."""
    base = path.rsplit("/", 1)[-1]
    for suffix in MODULE_SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.replace("-", "_")


def decompress(path: str, data: bytes) -> bytes:
    """busybox insmod wants a plain ELF object."""
    if path.endswith(".xz"):
        return lzma.decompress(data)
    return data


def elf_section(data: bytes, wanted: str) -> bytes | None:
    """The bytes of a section of a 64- or 32-bit little-endian ELF object, or None."""
    if data[:4] != b"\x7fELF":
        raise ModuleError("not an ELF object")
    is64 = data[4] == 2
    if data[5] != 1:
        raise ModuleError("big-endian ELF is not supported")
    if is64:
        (shoff,) = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    else:
        (shoff,) = struct.unpack_from("<I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x2E)

    def header(index: int) -> tuple[int, int, int]:
        base = shoff + index * shentsize
        if is64:
            name, _, _, _, offset, size = struct.unpack_from("<IIQQQQ", data, base)
        else:
            name, _, _, _, offset, size = struct.unpack_from("<IIIIII", data, base)
        return name, offset, size

    if shnum == 0 or shstrndx >= shnum:
        return None
    _, str_off, str_size = header(shstrndx)
    names = data[str_off : str_off + str_size]
    for i in range(shnum):
        name_off, offset, size = header(i)
        end = names.find(b"\0", name_off)
        if names[name_off:end].decode(errors="replace") == wanted:
            return data[offset : offset + size]
    return None


def parse_modinfo(path: str, data: bytes) -> ModInfo:
    section = elf_section(data, ".modinfo")
    fields: dict[str, str] = {}
    for entry in (section or b"").split(b"\0"):
        key, sep, value = entry.decode(errors="replace").partition("=")
        if sep and key not in fields:
            fields[key] = value
    name = fields.get("name") or module_name(path)
    depends = tuple(d for d in fields.get("depends", "").split(",") if d)
    return ModInfo(name, depends)


def builtin_names(modules_builtin: str) -> set[str]:
    """Names in lib/modules/RELEASE/modules.builtin (paths like kernel/net/packet/af_packet.ko)."""
    return {module_name(line.strip()) for line in modules_builtin.splitlines() if line.strip()}


def load_order(
    wanted: Iterable[str],
    infos: Mapping[str, ModInfo],
    builtin: AbstractSet[str] = frozenset(),
    required: Iterable[str] = (),
) -> tuple[list[str], list[str]]:
    """(modules to insmod, dependencies first; names wanted but neither found nor built in).

    Built-in modules need no loading. A missing name in `required` raises; other
    missing names are returned so the caller can warn.
    """
    order: list[str] = []
    missing: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, chain: tuple[str, ...]) -> bool:
        name = name.replace("-", "_")
        if name in builtin:
            return True
        if state.get(name) == "done":
            return True
        if state.get(name) == "visiting":
            raise ModuleError(f"dependency cycle: {' -> '.join((*chain, name))}")
        info = infos.get(name)
        if info is None:
            return False
        state[name] = "visiting"
        for dep in info.depends:
            if not visit(dep, (*chain, name)):
                raise ModuleError(f"{name} needs {dep}, which this kernel has neither as a module nor built in")
        state[name] = "done"
        order.append(name)
        return True

    must = {r.replace("-", "_") for r in required}
    for name in wanted:
        if not visit(name, ()):
            if name.replace("-", "_") in must:
                raise ModuleError(f"module {name} is neither in this kernel package nor built in")
            missing.append(name)
    return order, missing
