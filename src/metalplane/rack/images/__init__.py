"""The rack's boot image cache: synced from the region's manifest, verified by sha256.

    cache = ImageCache("/var/lib/metalplane/images")
    cache.load()                                   # serve what is on disk, region or not
    result = await cache.sync(manifest, ["http://10.0.0.1:5240", "http://10.0.0.2:5240"])

See `cache` for the on-disk layout and rules, `plan` for the decisions (pure), and
`manifest` for the manifest's validation.
"""

from metalplane.rack.images.cache import CachedFile, ImageCache, SyncResult, hash_file
from metalplane.rack.images.manifest import FileSpec, ImageSpec, Manifest, ManifestError, parse_manifest
from metalplane.rack.images.plan import DEFAULT_KEEP_VERSIONS, region_base_urls

__all__ = [
    "DEFAULT_KEEP_VERSIONS",
    "CachedFile",
    "FileSpec",
    "ImageCache",
    "ImageSpec",
    "Manifest",
    "ManifestError",
    "SyncResult",
    "hash_file",
    "parse_manifest",
    "region_base_urls",
]
