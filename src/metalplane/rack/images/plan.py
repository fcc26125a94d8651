"""What the image cache does, decided by pure functions (no I/O; unit tested).

- `plan_fetch`: which files to download, from which offset (resume) and in what order;
  `fit_space`: which of them fit on the disk.
- `plan_retention`: which images the rack keeps indexed (and so serves): every image
  of the manifest, plus older versions of the same (name, arch, subarch) that are
  fully cached, until `keep_versions` complete versions are kept per image. Images
  whose (name, arch, subarch) left the manifest are dropped at once.
- `plan_gc`: which cached and partial files to delete (those no kept image needs).
- `url_order` / `file_url`: which region to ask first, and the URL of a file there.
- `version_key`: natural ordering of version strings ("20261123.2" < "20261123.10").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from metalplane.rack.images.manifest import FileSpec, ImageSpec, Manifest

DEFAULT_KEEP_VERSIONS = 2


@dataclass(frozen=True)
class Fetch:
    sha256: str
    size: int
    path: str
    resume_from: int  # bytes of a partial download to keep (0: start over)


@dataclass(frozen=True)
class GcPlan:
    delete_files: frozenset[str]  # complete, verified files no kept image needs
    delete_partials: frozenset[str]  # partial downloads of files no longer wanted


def resume_offset(partial_size: int | None, expected_size: int) -> int:
    """Where a download resumes: the partial file's size when it can be a prefix of the
    file, else 0 (start over). A partial of the full size is only hashed, not fetched."""
    if not partial_size or partial_size < 0 or partial_size > expected_size:
        return 0
    return partial_size


def plan_fetch(wanted: Mapping[str, FileSpec], complete: Iterable[str], partials: Mapping[str, int]) -> list[Fetch]:
    """Downloads needed for `wanted` (by sha256), smallest first: kernels land before
    initrds and squashfs images, so more images become bootable sooner."""
    have = set(complete)
    fetches = [
        Fetch(sha, spec.size, spec.path, resume_offset(partials.get(sha), spec.size))
        for sha, spec in wanted.items()
        if sha not in have
    ]
    return sorted(fetches, key=lambda f: (f.size - f.resume_from, f.sha256))


def fit_space(fetches: list[Fetch], free_bytes: int, reserve: int) -> tuple[list[Fetch], list[Fetch]]:
    """(fetches that fit in `free_bytes` less `reserve`, in order; those that do not).
    Old versions are only deleted after a sync, so the new files must fit beside them."""
    budget = free_bytes - reserve
    fit, left = [], []
    for fetch in fetches:
        need = fetch.size - fetch.resume_from
        if need <= budget:
            fit.append(fetch)
            budget -= need
        else:
            left.append(fetch)
    return fit, left


def version_key(version: str) -> tuple[tuple[int, int, str], ...]:
    """Natural sort key: digit runs compare as numbers, other runs as text."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.findall(r"\d+|\D+", version))


def image_complete(image: ImageSpec, complete: set[str] | frozenset[str]) -> bool:
    return all(f.sha256 in complete for f in image.files)


def plan_retention(
    manifest: Manifest,
    previous: Iterable[ImageSpec],
    complete: Iterable[str],
    keep_versions: int = DEFAULT_KEEP_VERSIONS,
) -> list[ImageSpec]:
    """The images to keep indexed after applying `manifest`, newest version first per image.

    Every manifest image is kept (fetched if missing). For each (name, arch, subarch) of
    the manifest, older (previously kept) versions that are fully cached are kept too, newest
    first, until `keep_versions` complete versions are kept: a machine that fetched the old
    kernel can still fetch the matching initrd while the rack moves to a new version, and a
    new version that is still downloading does not push the last good one out.
    """
    keep_versions = max(1, keep_versions)
    have = set(complete)
    in_manifest = {image.ident for image in manifest.images}
    by_key: dict[tuple[str, str, str], list[ImageSpec]] = {}
    for image in manifest.images:
        by_key.setdefault(image.key, []).append(image)
    older: dict[tuple[str, str, str], list[ImageSpec]] = {}
    for image in previous:
        if image.key in by_key and image.ident not in in_manifest and image_complete(image, have):
            older.setdefault(image.key, [])
            if all(o.ident != image.ident for o in older[image.key]):
                older[image.key].append(image)
    kept: list[ImageSpec] = []
    for key, current in by_key.items():
        complete_count = sum(1 for image in current if image_complete(image, have))
        extra = sorted(older.get(key, []), key=lambda i: version_key(i.version), reverse=True)
        extra = extra[: max(0, keep_versions - complete_count)]
        kept.extend(sorted(current + extra, key=lambda i: version_key(i.version), reverse=True))
    return kept


def plan_gc(
    kept: Iterable[ImageSpec], complete: Iterable[str], partials: Iterable[str], wanted: Iterable[str]
) -> GcPlan:
    needed: set[str] = set()
    for image in kept:
        needed |= image.shas()
    wanted_set = set(wanted)
    return GcPlan(frozenset(set(complete) - needed), frozenset(set(partials) - wanted_set))


def latest_complete(
    images: Iterable[ImageSpec], key: tuple[str, str, str], complete: set[str] | frozenset[str]
) -> ImageSpec | None:
    """The newest fully cached version of an image (the `latest` URL alias)."""
    candidates = [i for i in images if i.key == key and image_complete(i, complete)]
    return max(candidates, key=lambda i: version_key(i.version), default=None)


def url_order(base_urls: list[str], sha256: str) -> list[str]:
    """Regions to try for one file, in order: rotated by the file's digest so that a sync's
    files are spread over the regions, and each failure moves on to the next region."""
    if not base_urls:
        return []
    start = int(sha256[:8], 16) % len(base_urls) if sha256 else 0
    return base_urls[start:] + base_urls[:start]


def file_url(base_url: str, path: str) -> str:
    """The region's URL for a manifest path. An absolute path is taken from the base URL's
    origin ("http://10.0.0.1:5240/MAAS" + "/MAAS/boot-resources/file/x" does not repeat
    /MAAS); an absolute URL is used as it is."""
    if path.startswith(("http://", "https://")):
        return path
    parts = urlsplit(base_url)
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"not a base URL: {base_url!r}")
    return f"{parts.scheme}://{parts.netloc}{path}"


def region_base_urls(maas_urls: Iterable[str]) -> list[str]:
    """Region origins from the rack's `maas_url` list, duplicates dropped, order kept."""
    out: list[str] = []
    for url in maas_urls:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if parts.scheme and parts.netloc and origin not in out:
            out.append(origin)
    return out
