"""What an ELF executable links against: its program interpreter and DT_NEEDED libraries (pure)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NULL, DT_NEEDED, DT_STRTAB = 0, 1, 5


@dataclass(frozen=True)
class ElfLinks:
    interpreter: str | None
    needed: tuple[str, ...]


def elf_links(data: bytes) -> ElfLinks | None:
    """The interpreter and needed libraries of an ELF file (32/64-bit, either byte order); None if not ELF."""
    if data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return None
    is64, end = data[4] == 2, "<" if data[5] == 1 else ">"
    if is64:
        (phoff,) = struct.unpack_from(end + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 0x36)
    else:
        (phoff,) = struct.unpack_from(end + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 0x2A)
    interpreter = None
    loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
    dynamic: tuple[int, int] | None = None
    for i in range(phnum):
        at = phoff + i * phentsize
        if is64:
            p_type, _flags, offset, vaddr, _paddr, filesz = struct.unpack_from(end + "IIQQQQ", data, at)
        else:
            p_type, offset, vaddr, _paddr, filesz = struct.unpack_from(end + "IIIII", data, at)
        if p_type == PT_INTERP:
            interpreter = data[offset : offset + filesz].rstrip(b"\0").decode()
        elif p_type == PT_LOAD:
            loads.append((vaddr, offset, filesz))
        elif p_type == PT_DYNAMIC:
            dynamic = (offset, filesz)
    if dynamic is None:
        return ElfLinks(interpreter, ())
    entry, size = (end + "qQ", 16) if is64 else (end + "iI", 8)
    entries = []
    for pos in range(dynamic[0], dynamic[0] + dynamic[1] - size + 1, size):
        tag, value = struct.unpack_from(entry, data, pos)
        if tag == DT_NULL:
            break
        entries.append((tag, value))
    strtab_vaddr = next((v for t, v in entries if t == DT_STRTAB), None)
    if strtab_vaddr is None:
        return ElfLinks(interpreter, ())
    strtab = next((off + strtab_vaddr - va for va, off, filesz in loads if va <= strtab_vaddr < va + filesz), None)
    if strtab is None:
        raise ValueError("DT_STRTAB is outside every PT_LOAD segment")
    needed = []
    for tag, value in entries:
        if tag == DT_NEEDED:
            stop = data.index(b"\0", strtab + value)
            needed.append(data[strtab + value : stop].decode())
    return ElfLinks(interpreter, tuple(needed))


def is_static_elf(data: bytes) -> bool:
    """An ELF executable with no program interpreter (PT_INTERP) needs no libraries."""
    links = elf_links(data)
    return links is not None and links.interpreter is None
