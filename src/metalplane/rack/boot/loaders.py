"""Boot loaders the rack serves over TFTP: whatever of iPXE, pxelinux and syslinux is installed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# (file name served, where Debian installs it)
CANDIDATES = (
    ("undionly.kpxe", "/usr/lib/ipxe/undionly.kpxe"),
    ("ipxe.efi", "/usr/lib/ipxe/ipxe.efi"),
    ("snponly.efi", "/usr/lib/ipxe/snponly.efi"),
    ("pxelinux.0", "/usr/lib/PXELINUX/pxelinux.0"),
    ("lpxelinux.0", "/usr/lib/PXELINUX/lpxelinux.0"),
    ("ldlinux.c32", "/usr/lib/syslinux/modules/bios/ldlinux.c32"),
)
# DHCP option 93 architectures (rack.dhcp) -> the loader that starts iPXE there.
FOR_ARCH = {"bios": "undionly.kpxe", "uefi-x64": "ipxe.efi"}


def copy_loaders(directory: Path) -> list[str]:
    """Copy every installed loader into `directory` (the TFTP root refuses symlinks
    out of it); returns the names available."""
    directory.mkdir(parents=True, exist_ok=True)
    found = []
    for name, source in CANDIDATES:
        target = directory / name
        if not os.path.exists(source):
            target.unlink(missing_ok=True)
            continue
        if not target.exists() or target.stat().st_size != os.stat(source).st_size:
            tmp = directory / f".{name}.tmp"
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        found.append(name)
    return found


def dhcp_loaders(available: list[str]) -> dict[str, str]:
    return {arch: name for arch, name in FOR_ARCH.items() if name in available}
