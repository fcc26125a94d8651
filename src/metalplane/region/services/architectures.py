"""Architectures a node may have, in MAAS's `arch/subarch` form (e.g. amd64/generic).

MAAS offers the architectures of its usable boot images. metalplane also knows
the primary architectures Ubuntu and Debian boot on (with their `generic`,
`hwe-*` and `ga-*` subarchitectures), so a machine can be added before its
images are imported.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import boot_resources, nodes
from metalplane.region.errors import Invalid

PRIMARY = ("amd64", "arm64", "armhf", "i386", "ppc64el", "riscv64", "s390x")
KERNEL_SUBARCH = re.compile(r"^(generic|(hwe|ga)-[a-z0-9][a-z0-9.-]*)$")


def normalise(architecture: str, subarchitecture: str | None = None) -> str:
    """`amd64` + `hwe-22.04` -> `amd64/hwe-22.04`; a bare arch gets `generic`."""
    architecture = architecture.strip()
    if "/" in architecture:
        return architecture
    return f"{architecture}/{(subarchitecture or '').strip() or 'generic'}"


def is_known(architecture: str, imported: set[str]) -> bool:
    if architecture in imported:
        return True
    arch, _, sub = architecture.partition("/")
    return arch in PRIMARY and bool(KERNEL_SUBARCH.match(sub))


def choices(imported: set[str]) -> list[str]:
    return sorted({f"{a}/generic" for a in PRIMARY} | imported)


def invalid(value: str, imported: set[str], field: str = "architecture") -> Invalid:
    """MAAS's invalid-choice text (two spaces after the first sentence)."""
    listed = ", ".join(f"'{c}'" for c in choices(imported))
    return Invalid.field(field, f"'{value}' is not a valid architecture.  It should be one of: {listed}.")


async def imported(conn: AsyncConnection) -> set[str]:
    """Architectures of the boot images this MAAS has."""
    return set((await conn.execute(select(boot_resources.c.architecture).distinct())).scalars())


async def check(
    conn: AsyncConnection, value: str, subarchitecture: str | None = None, field: str = "architecture"
) -> str:
    """The architecture, normalised; 400 for `field` when nothing boots it."""
    normalised = normalise(value, subarchitecture)
    images = await imported(conn)
    if not is_known(normalised, images):
        raise invalid(value, images, field)
    return normalised


async def known_for_filters(conn: AsyncConnection) -> set[str]:
    """What `arch=` filters may name: the known ones and those machines have."""
    images = await imported(conn)
    in_use = {a for a in (await conn.execute(select(nodes.c.architecture).distinct())).scalars() if a}
    return set(choices(images)) | in_use
