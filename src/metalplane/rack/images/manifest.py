"""The region's image manifest, validated into plain frozen records (pure).

    {"images": [{"name": "ephemeral/bookworm", "architecture": "amd64", "subarch": "generic",
                 "version": "20261123",
                 "files": {"boot-kernel": {"sha256": "...", "size": 1234,
                                           "path": "/MAAS/boot-resources/file/<sha256>"},
                           "boot-initrd": {...}}}]}

Every name that ends up in a URL or on disk is checked here: image names are
"/"-separated segments of `[A-Za-z0-9._+-]`, never "." or "..", and never start
with `by-sha256` (the rack's URL space for content addresses). An image that fails
is skipped with a problem message; only a manifest whose shape is wrong as a whole
raises `ManifestError` (and then nothing changes on the rack).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeGuard

SHA256_RE = re.compile(r"[0-9a-f]{64}")
_SEGMENT = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]*")  # no leading dot: no "." / ".." / hidden
RESERVED_FIRST_SEGMENTS = {"by-sha256", "index.json"}


class ManifestError(ValueError):
    """The manifest as a whole is unusable."""


@dataclass(frozen=True)
class FileSpec:
    filetype: str
    sha256: str
    size: int
    path: str  # on the region: "/MAAS/boot-resources/file/<sha>" or an absolute URL

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size, "path": self.path}


@dataclass(frozen=True)
class ImageSpec:
    name: str
    architecture: str
    subarch: str
    version: str
    files: tuple[FileSpec, ...]  # sorted by filetype

    @property
    def key(self) -> tuple[str, str, str]:
        """What versions are versions of."""
        return (self.name, self.architecture, self.subarch)

    @property
    def ident(self) -> tuple[str, str, str, str]:
        return (self.name, self.architecture, self.subarch, self.version)

    def file(self, filetype: str) -> FileSpec | None:
        for spec in self.files:
            if spec.filetype == filetype:
                return spec
        return None

    def shas(self) -> set[str]:
        return {f.sha256 for f in self.files}

    def url_path(self, filetype: str) -> str:
        return "/images/" + "/".join((*self.ident, filetype))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "architecture": self.architecture,
            "subarch": self.subarch,
            "version": self.version,
            "files": {f.filetype: f.to_json() for f in self.files},
        }


@dataclass(frozen=True)
class Manifest:
    images: tuple[ImageSpec, ...]

    def wanted(self) -> dict[str, FileSpec]:
        """Every file by sha256, once (images may share files)."""
        out: dict[str, FileSpec] = {}
        for image in self.images:
            for spec in image.files:
                out.setdefault(spec.sha256, spec)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"images": [i.to_json() for i in self.images]}


def valid_segment(text: Any) -> TypeGuard[str]:
    return isinstance(text, str) and len(text) <= 128 and _SEGMENT.fullmatch(text) is not None


def valid_name(name: Any) -> TypeGuard[str]:
    if not isinstance(name, str) or not name or len(name) > 255:
        return False
    parts = name.split("/")
    return all(valid_segment(p) for p in parts) and parts[0] not in RESERVED_FIRST_SEGMENTS


def _parse_file(filetype: Any, raw: Any) -> FileSpec:
    if not valid_segment(filetype):
        raise ValueError(f"bad file type {filetype!r}")
    if not isinstance(raw, dict):
        raise ValueError(f"{filetype}: not an object")
    sha = raw.get("sha256")
    if not isinstance(sha, str) or not SHA256_RE.fullmatch(sha.lower()):
        raise ValueError(f"{filetype}: bad sha256 {sha!r}")
    size = raw.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError(f"{filetype}: bad size {size!r}")
    path = raw.get("path")
    if not isinstance(path, str) or not (path.startswith("/") or re.match(r"https?://", path)):
        raise ValueError(f"{filetype}: bad path {path!r}")
    return FileSpec(filetype, sha.lower(), size, path)


def parse_image(raw: Any) -> ImageSpec:
    if not isinstance(raw, dict):
        raise ValueError("image is not an object")
    name = raw.get("name")
    if not valid_name(name):
        raise ValueError(f"bad image name {name!r}")
    fields: dict[str, str] = {}
    for field in ("architecture", "subarch", "version"):
        value = raw.get(field)
        if not valid_segment(value):
            raise ValueError(f"{name}: bad {field} {value!r}")
        fields[field] = value
    files = raw.get("files")
    if not isinstance(files, dict) or not files:
        raise ValueError(f"{name}: no files")
    try:
        specs = tuple(sorted((_parse_file(k, v) for k, v in files.items()), key=lambda f: f.filetype))
    except ValueError as exc:
        raise ValueError(f"{name}/{fields['architecture']}/{fields['subarch']}/{fields['version']}: {exc}") from None
    return ImageSpec(name, fields["architecture"], fields["subarch"], fields["version"], specs)


def parse_manifest(raw: Any) -> tuple[Manifest, list[str]]:
    """(manifest of the valid images, problems). Raises ManifestError on a wrong shape."""
    if not isinstance(raw, dict) or not isinstance(raw.get("images"), list):
        raise ManifestError("a manifest is an object with a list of images")
    images: list[ImageSpec] = []
    problems: list[str] = []
    seen: set[tuple[str, str, str, str]] = set()
    sizes: dict[str, int] = {}
    for item in raw["images"]:
        try:
            image = parse_image(item)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if image.ident in seen:
            problems.append(f"{'/'.join(image.ident)}: listed twice (first kept)")
            continue
        clash = [f for f in image.files if sizes.get(f.sha256, f.size) != f.size]
        if clash:
            problems.append(
                f"{'/'.join(image.ident)}: {clash[0].filetype} has sha256 {clash[0].sha256} "
                f"with another size elsewhere in the manifest"
            )
            continue
        for f in image.files:
            sizes[f.sha256] = f.size
        seen.add(image.ident)
        images.append(image)
    return Manifest(tuple(images)), problems


def images_from_json(items: Iterable[Any]) -> list[ImageSpec]:
    """Images as stored in the cache's own index (already validated once; re-checked)."""
    out = []
    for item in items:
        try:
            out.append(parse_image(item))
        except ValueError:
            continue
    return out
