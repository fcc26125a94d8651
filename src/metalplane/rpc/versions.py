"""Rack and region must run the same major.minor version (the seeds' rule)."""

from __future__ import annotations


def major_minor(version: str) -> tuple[str, str]:
    parts = (version.split("+")[0].split("-")[0].split(".") + ["0", "0"])[:2]
    return parts[0], parts[1]


def compatible(rack_version: str, region_version: str) -> bool:
    return major_minor(rack_version) == major_minor(region_version)


def mismatch_message(rack_version: str, region_version: str) -> str:
    return (f"rack version {rack_version} does not match region version {region_version}: "
            f"rack controllers must run the same major.minor version as the region")
