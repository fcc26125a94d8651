"""The minimal subset of simplestreams that metalplane writes and imports (pure, no I/O).

A mirror is a directory (or the same tree behind an HTTP URL):

    streams/v1/index.json              {"format": "index:1.0", "index": {CONTENT_ID: {
                                           "datatype": "image-downloads", "format": "products:1.0",
                                           "path": "streams/v1/CONTENT_ID.json", "products": [...]}}}
    streams/v1/CONTENT_ID.json         {"format": "products:1.0", "content_id": CONTENT_ID,
                                        "products": {PRODUCT: {
                                           "os": "ephemeral", "release": "bookworm",
                                           "arch": "amd64", "subarch": "generic", "label": "stable",
                                           "versions": {VERSION: {"items": {KEY: {
                                               "ftype": "boot-kernel", "path": "ephemeral/...",
                                               "sha256": "...", "size": 1234}}}}}}}
    ephemeral/bookworm/amd64/VERSION/boot-kernel, .../boot-initrd   (the files; `path` is
                                        relative to the mirror root)

Every `path` is relative to the mirror root and may not climb out of it. The
boot resource an image becomes is named "OS/RELEASE" (or the product's "name"),
with architecture "ARCH/SUBARCH". Only the newest version of each product is
imported (versions compare naturally: "20261123.10" > "20261123.9").
Signed streams (.sjson) and the rest of simplestreams are not supported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

INDEX_PATH = "streams/v1/index.json"
INDEX_FORMAT = "index:1.0"
PRODUCTS_FORMAT = "products:1.0"
DATATYPE = "image-downloads"
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# The same rule the rack applies to names that end up in its URLs and paths.
SEGMENT_RE = re.compile(r"^[A-Za-z0-9_+-][A-Za-z0-9._+-]*$")
# File types a boot resource set may hold (MAAS's names).
FILETYPES = (
    "boot-kernel",
    "boot-initrd",
    "boot-dtb",
    "squashfs",
    "root-tgz",
    "root-tbz",
    "root-txz",
    "root-dd",
    "root-dd.tar",
    "root-dd.raw",
    "root-dd.bz2",
    "root-dd.gz",
    "root-dd.xz",
    "root-dd.tar.xz",
    "root-image.gz",
    "manifest",
    "self-test",
    "archive.tar.xz",
)


class StreamError(ValueError):
    """The stream is unusable; the message says where and why."""


@dataclass(frozen=True)
class StreamItem:
    ftype: str
    path: str  # relative to the mirror root
    sha256: str
    size: int

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class StreamImage:
    product: str
    name: str  # "ephemeral/bookworm"
    architecture: str  # "amd64/generic"
    subarches: str
    version: str
    label: str
    title: str
    items: tuple[StreamItem, ...]
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def version_key(version: str) -> tuple:
    """Natural order: digit runs compare as numbers ("20261123.10" > "20261123.9")."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.findall(r"\d+|\D+", version))


def valid_name(name: str) -> bool:
    """ "os/release"-style names: "/"-separated segments the rack can put in URLs."""
    return bool(name) and all(SEGMENT_RE.match(s) for s in name.split("/"))


def safe_relative_path(path: Any) -> str:
    """A path inside the mirror: relative, no "..", no empty segments."""
    if not isinstance(path, str) or not path:
        raise StreamError(f"bad path {path!r}: must be a non-empty string")
    if path.startswith("/") or "://" in path or "\\" in path:
        raise StreamError(f"bad path {path!r}: must be relative to the mirror root")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise StreamError(f"bad path {path!r}: no empty, '.' or '..' segments allowed")
    return path


def _listing(where: str, doc: Any, what: str, doc_format: str, key: str) -> dict[str, Any]:
    """The object under `key` of a simplestreams document (`what`) of `doc_format`."""
    if not isinstance(doc, dict) or doc.get("format") != doc_format:
        raise StreamError(f"{where}: not a {what} (format must be {doc_format!r})")
    listed = doc.get(key)
    if not isinstance(listed, dict):
        raise StreamError(f"{where}: no {key!r} object")
    return listed


def product_paths(index: Any) -> list[str]:
    """The products files an index names (image-downloads only)."""
    entries = _listing(INDEX_PATH, index, "simplestreams index", INDEX_FORMAT, "index")
    paths = []
    for content_id, entry in sorted(entries.items()):
        if not isinstance(entry, dict):
            raise StreamError(f"{INDEX_PATH}: entry {content_id!r} is not an object")
        if entry.get("datatype", DATATYPE) != DATATYPE:
            continue
        if entry.get("format", PRODUCTS_FORMAT) != PRODUCTS_FORMAT:
            continue
        paths.append(safe_relative_path(entry.get("path")))
    if not paths:
        raise StreamError(f"{INDEX_PATH}: names no image-downloads products")
    return paths


def _item(where: str, key: str, raw: Any) -> StreamItem:
    if not isinstance(raw, dict):
        raise StreamError(f"{where}: item {key!r} is not an object")
    ftype = raw.get("ftype", key)
    if ftype not in FILETYPES:
        raise StreamError(f"{where}: item {key!r} has unknown ftype {ftype!r}")
    sha256 = raw.get("sha256")
    if not isinstance(sha256, str) or not SHA256_RE.match(sha256):
        raise StreamError(f"{where}: item {key!r} needs a sha256 (64 lower-case hex digits)")
    size = raw.get("size")
    if isinstance(size, str) and size.isdigit():
        size = int(size)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise StreamError(f"{where}: item {key!r} needs a size in bytes")
    try:
        path = safe_relative_path(raw.get("path"))
    except StreamError as exc:
        raise StreamError(f"{where}: item {key!r}: {exc}") from None
    return StreamItem(ftype, path, sha256, size)


def parse_products(products_path: str, doc: Any) -> list[StreamImage]:
    """The newest version of every product of one products file."""
    products = _listing(products_path, doc, "products file", PRODUCTS_FORMAT, "products")
    images = []
    for product, p in sorted(products.items()):
        where = f"{products_path}: product {product!r}"
        if not isinstance(p, dict):
            raise StreamError(f"{where} is not an object")
        name = p.get("name") or (f"{p.get('os')}/{p.get('release')}" if p.get("os") and p.get("release") else None)
        if not isinstance(name, str) or not valid_name(name):
            raise StreamError(f"{where}: needs 'os' and 'release' (or 'name') made of [A-Za-z0-9._+-]")
        arch, subarch = p.get("arch"), p.get("subarch", "generic")
        if (
            not isinstance(arch, str)
            or not SEGMENT_RE.match(arch)
            or not isinstance(subarch, str)
            or not SEGMENT_RE.match(subarch)
        ):
            raise StreamError(f"{where}: needs 'arch' (and optionally 'subarch') like amd64 / generic")
        versions = p.get("versions")
        if not isinstance(versions, dict) or not versions:
            raise StreamError(f"{where}: has no versions")
        version = max(versions, key=version_key)
        if not SEGMENT_RE.match(version):
            raise StreamError(f"{where}: bad version {version!r}")
        v = versions[version]
        items_raw = v.get("items") if isinstance(v, dict) else None
        if not isinstance(items_raw, dict) or not items_raw:
            raise StreamError(f"{where}: version {version!r} has no items")
        items = tuple(
            sorted((_item(f"{where} version {version!r}", k, r) for k, r in items_raw.items()), key=lambda i: i.ftype)
        )
        ftypes = [i.ftype for i in items]
        if len(set(ftypes)) != len(ftypes):
            raise StreamError(f"{where} version {version!r}: two items of the same ftype")
        extra = {k: p[k] for k in ("kflavor", "kernel_release", "os", "release") if isinstance(p.get(k), str)}
        images.append(
            StreamImage(
                product=product,
                name=name,
                architecture=f"{arch}/{subarch}",
                subarches=str(p.get("subarches") or subarch),
                version=version,
                label=str(v.get("label") or p.get("label") or "stable"),
                title=str(p.get("release_title") or p.get("title") or name),
                items=items,
                extra=extra,
            )
        )
    return images


# -- writing (metalplane images build-ephemeral) ----------------------------------------


def product_id(content_id: str, release: str, arch: str, subarch: str) -> str:
    return f"{content_id}:{release}:{arch}:{subarch}"


def merge_products(
    doc: dict[str, Any] | None,
    content_id: str,
    product: str,
    fields: dict[str, Any],
    version: str,
    items: dict[str, dict[str, Any]],
    updated: str,
) -> dict[str, Any]:
    """A products document with `version` of `product` added (other versions kept)."""
    doc = dict(doc or {})
    doc.update({"format": PRODUCTS_FORMAT, "datatype": DATATYPE, "content_id": content_id, "updated": updated})
    products = dict(doc.get("products") or {})
    entry = dict(products.get(product) or {})
    entry.update(fields)
    versions = dict(entry.get("versions") or {})
    versions[version] = {"items": items}
    entry["versions"] = versions
    products[product] = entry
    doc["products"] = products
    return doc


def merge_index(
    doc: dict[str, Any] | None, content_id: str, products_path: str, products: list[str], updated: str
) -> dict[str, Any]:
    doc = dict(doc or {})
    doc.update({"format": INDEX_FORMAT, "updated": updated})
    index = dict(doc.get("index") or {})
    index[content_id] = {
        "datatype": DATATYPE,
        "format": PRODUCTS_FORMAT,
        "path": products_path,
        "products": sorted(products),
        "updated": updated,
    }
    doc["index"] = index
    return doc
