"""Write an image into a simplestreams mirror directory (what the region's import reads).

`publish_image` copies the files to OS/RELEASE/ARCH/VERSION/FILETYPE under the
mirror root and adds the version to streams/v1/CONTENT_ID.json and
streams/v1/index.json, keeping whatever else the mirror already lists. The
JSON files are replaced atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from metalplane.images import simplestreams as ss

CONTENT_ID = "com.metalplane:images"
# The one architecture metalplane's image builders make (images.build, images.debian).
BUILD_ARCH, BUILD_SUBARCH = "amd64", "generic"
BUILD_ARCHITECTURE = f"{BUILD_ARCH}/{BUILD_SUBARCH}"


def file_sha256(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def publish_image(
    root: Path,
    *,
    os_name: str,
    release: str,
    version: str,
    files: dict[str, Path],
    arch: str = BUILD_ARCH,
    subarch: str = BUILD_SUBARCH,
    label: str = "stable",
    title: str | None = None,
    extra: dict[str, Any] | None = None,
    content_id: str = CONTENT_ID,
    link: bool = False,
) -> list[ss.StreamItem]:
    """Add one version of image OS/RELEASE ARCH/SUBARCH with `files` {ftype: local path}."""
    for segment in (os_name, release, arch, subarch, version):
        if not ss.SEGMENT_RE.match(segment):
            raise ValueError(f"{segment!r}: use letters, digits and ._+- only")
    unknown = set(files) - set(ss.FILETYPES)
    if unknown:
        raise ValueError(f"unknown file types {sorted(unknown)}")
    root.mkdir(parents=True, exist_ok=True)
    published = []
    items: dict[str, dict[str, Any]] = {}
    for ftype, source in sorted(files.items()):
        relative = f"{os_name}/{release}/{arch}/{version}/{ftype}"
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() or target.is_symlink():
            target.unlink()
        if link:
            os.link(source, target)
        else:
            shutil.copyfile(source, target)
        target.chmod(0o644)
        sha256, size = file_sha256(target)
        items[ftype] = {"ftype": ftype, "path": relative, "sha256": sha256, "size": size}
        published.append(ss.StreamItem(ftype, relative, sha256, size))
    updated = format_datetime(datetime.now(UTC))
    product = ss.product_id(content_id, release, arch, subarch)
    fields = {
        "os": os_name,
        "release": release,
        "arch": arch,
        "subarch": subarch,
        "subarches": subarch,
        "label": label,
        "release_title": title or f"{os_name}/{release}",
        **(extra or {}),
    }
    products_rel = f"streams/v1/{content_id}.json"
    products = ss.merge_products(_read_json(root / products_rel), content_id, product, fields, version, items, updated)
    _write_json(root / products_rel, products)
    index = ss.merge_index(
        _read_json(root / ss.INDEX_PATH), content_id, products_rel, list(products["products"]), updated
    )
    _write_json(root / ss.INDEX_PATH, index)
    return published
