"""JSON shapes of where images and packages come from: boot sources and their
selections, package repositories, license keys (MAAS's handler fields)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from metalplane.region.api.render import Row, columns, lists, uri


def timestamp(value: datetime) -> str:
    """Django's JSON encoder: ISO 8601, milliseconds when there are any, UTC as Z."""
    text = value.astimezone(UTC).isoformat()
    if value.microsecond:
        text = text[:23] + text[26:]
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def boot_source(s: Row) -> Row:
    return {
        **columns(s, "id", "url", "keyring_filename"),
        "keyring_data": base64.b64encode(bytes(s["keyring_data"])).decode(),
        "created": timestamp(s["created"]),
        "updated": timestamp(s["updated"]),
        "resource_uri": uri(f"boot-sources/{s['id']}/"),
    }


def boot_source_selection(s: Row) -> Row:
    return {
        **columns(s, "boot_source_id", "id", "os", "release"),
        **lists(s, "arches", "subarches", "labels"),
        "resource_uri": uri(f"boot-sources/{s['boot_source_id']}/selections/{s['id']}/"),
    }


def package_repository(r: Row) -> Row:
    return {
        **columns(r, "id", "name", "url"),
        **lists(r, "distributions", "disabled_pockets", "disabled_components"),
        "disable_sources": r["disable_sources"],
        **lists(r, "components", "arches"),
        **columns(r, "key", "enabled"),
        "resource_uri": uri(f"package-repositories/{r['id']}/"),
    }


def license_key(k: Row) -> Row:
    return {
        **columns(k, "osystem", "distro_series", "license_key"),
        "resource_uri": uri(f"license-key/{k['osystem']}/{k['distro_series']}"),
    }
