"""Package repositories (MAAS's package-repositories/) and license keys (license-keys/).

MAAS always has two default repositories, main_archive (amd64, i386) and
ports_archive (the other architectures); their URLs are what the
`main_archive` and `ports_archive` settings read and write. Deployed machines
would get these as apt sources; metalplane stores them (nothing reads them yet).
License keys are stored for the Windows releases MAAS knows need one.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import license_keys, package_repositories
from metalplane.region.errors import FieldErrors, Invalid, NotFound, Refused, raise_if
from metalplane.region.services.rows import (
    Row,
    delete_row,
    execute_unique,
    first_row,
    insert_unique,
    one,
    rows,
    update_unique,
)

DUPLICATE_NAME = "Package repository with this Name already exists."

MAIN_ARCHES = ["amd64", "i386"]
PORTS_ARCHES = ["armhf", "arm64", "ppc64el", "s390x"]
KNOWN_ARCHES = MAIN_ARCHES + PORTS_ARCHES
POCKETS_TO_DISABLE = ["updates", "security", "backports"]
COMPONENTS_TO_DISABLE = ["restricted", "universe", "multiverse"]
DEFAULTS = {
    "main_archive": ("http://archive.ubuntu.com/ubuntu", MAIN_ARCHES),
    "ports_archive": ("http://ports.ubuntu.com/ubuntu-ports", PORTS_ARCHES),
}
NAME_MAX = 41  # MAAS's PackageRepository.name
LIST_FIELDS = ("distributions", "disabled_pockets", "disabled_components", "components", "arches")
EMPTY_LIST_WORDS = ([""], ["None"], ["[]"])  # MAAS: how a client clears a list
HOSTNAME = r"[a-z0-9\u00a1-\uffff](?:[a-z0-9\u00a1-\uffff-]{0,61}[a-z0-9\u00a1-\uffff])?"
PPA_RE = re.compile(rf"ppa:{HOSTNAME}/{HOSTNAME}", re.IGNORECASE)
BAD_URL = "Enter a valid repository URL or PPA location."


# -- rules (pure) ----------------------------------------------------------------------


def valid_url(value: str) -> bool:
    """Django's URLValidator (http, https, ftp, ftps) or a PPA location."""
    if PPA_RE.search(value):
        return True
    if any(c.isspace() for c in value) or len(value) > 2048:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https", "ftp", "ftps") and bool(parts.hostname)


def split_values(values: list[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        out += [v.strip() for v in value.split(",")]
    return out


def clean_lists(fields: dict[str, Any], name: str, is_default: bool) -> tuple[dict[str, list[str]], FieldErrors]:
    """MAAS's clean_* rules for the list fields given in `fields` (raw repeated values)."""
    cleaned: dict[str, list[str]] = {}
    errors: FieldErrors = {}
    for field in LIST_FIELDS:
        if field not in fields:
            continue
        values = split_values(fields[field])
        if values in EMPTY_LIST_WORDS:
            values = []
        values = [v for v in values if v]
        if field == "arches":
            bad = [v for v in values if v not in KNOWN_ARCHES]
            if bad:
                errors[field] = [
                    f"'{bad[0]}' is not a valid architecture. Known architectures: {', '.join(sorted(KNOWN_ARCHES))}"
                ]
            elif not values:
                values = PORTS_ARCHES if name == "ports_archive" else MAIN_ARCHES
        elif field == "disabled_pockets":
            bad = [v for v in values if v not in POCKETS_TO_DISABLE]
            if bad:
                errors[field] = [
                    f"'{bad[0]}' is not a valid Ubuntu archive pocket. You can only disable {POCKETS_TO_DISABLE}."
                ]
        elif field == "disabled_components":
            if values and not is_default:
                errors[field] = ["This is a custom repository. Please update 'components' instead."]
            bad = [v for v in values if v not in COMPONENTS_TO_DISABLE]
            if bad and field not in errors:
                errors[field] = [
                    f"'{bad[0]}' is not a valid Ubuntu archive component. You can only disable {COMPONENTS_TO_DISABLE}."
                ]
        elif field == "components" and values and is_default:
            errors[field] = ["This is a default Ubuntu repository. Please update 'disabled_components' instead."]
        cleaned[field] = values
    return cleaned, errors


def check_repository(values: dict[str, Any]) -> FieldErrors:
    errors: FieldErrors = {}
    name = values.get("name")
    if not name:
        errors["name"] = ["This field is required."]
    elif len(name) > NAME_MAX:
        errors["name"] = [f"Ensure this value has at most {NAME_MAX} characters (it has {len(name)})."]
    url = values.get("url")
    if not url:
        errors["url"] = ["This field is required."]
    elif not valid_url(url):
        errors["url"] = [BAD_URL]
    return errors


# -- package repositories ---------------------------------------------------------------


async def ensure_default_archives(conn: AsyncConnection) -> None:
    """main_archive and ports_archive, as MAAS's migration creates them (once, by name)."""
    for name, (url, arches) in DEFAULTS.items():
        await conn.execute(
            pg_insert(package_repositories)
            .values(name=name, url=url, arches=arches, is_default=True, enabled=True)
            .on_conflict_do_nothing(index_elements=["name"])
        )


async def list_repositories(conn: AsyncConnection) -> list[Row]:
    return rows(await conn.execute(select(package_repositories).order_by(package_repositories.c.id)))


async def get_repository(conn: AsyncConnection, ident: str) -> Row:
    """By id or name (MAAS's specifiers id:, name:)."""
    kind, _, value = ident.partition(":") if ident.startswith(("id:", "name:")) else ("", "", ident)
    query = select(package_repositories)
    if (kind in ("", "id")) and re.fullmatch(r"[0-9]{1,9}", value):
        query = query.where(package_repositories.c.id == int(value))
    elif kind in ("", "name") and "\x00" not in value:
        query = query.where(package_repositories.c.name == value)
    else:
        raise NotFound("PackageRepository")
    return one(await conn.execute(query), "PackageRepository")


def _scalar_values(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: fields[k] for k in ("name", "url", "key", "enabled", "disable_sources") if fields.get(k) is not None}


async def create_repository(conn: AsyncConnection, fields: dict[str, Any]) -> Row:
    values = {"enabled": True, **_scalar_values(fields)}
    lists, errors = clean_lists({"arches": [], **fields}, values.get("name") or "", is_default=False)
    raise_if({**check_repository(values), **errors})
    repository_id = await insert_unique(conn, package_repositories, "name", DUPLICATE_NAME, **values, **lists)
    return await get_repository(conn, str(repository_id))


async def update_repository(conn: AsyncConnection, ident: str, fields: dict[str, Any]) -> Row:
    current = await get_repository(conn, ident)
    values = {**{k: current[k] for k in ("name", "url", "key", "enabled", "disable_sources")}, **_scalar_values(fields)}
    lists, errors = clean_lists(fields, values["name"], is_default=current["is_default"])
    errors = {**check_repository(values), **errors}
    if current["is_default"] and not values["enabled"]:
        errors.setdefault("__all__", []).append("Default repositories may not be disabled.")
    raise_if(errors)
    await update_unique(conn, package_repositories, current["id"], "name", DUPLICATE_NAME, **values, **lists)
    return await get_repository(conn, str(current["id"]))


async def delete_repository(conn: AsyncConnection, ident: str) -> None:
    current = await get_repository(conn, ident)
    if current["is_default"]:
        raise Refused("Cannot delete default Ubuntu archives.")
    await delete_row(conn, package_repositories, current["id"])


async def archive_url(conn: AsyncConnection, name: str) -> str:
    """The `main_archive` / `ports_archive` setting: the default repository's URL."""
    row = await first_row(
        conn,
        select(package_repositories.c.url).where(
            package_repositories.c.name == name, package_repositories.c.is_default.is_(True)
        ),
    )
    return row.url if row else DEFAULTS[name][0]


async def set_archive_url(conn: AsyncConnection, name: str, url: str) -> None:
    if not valid_url(url):
        raise Invalid.field("value", BAD_URL)
    await ensure_default_archives(conn)
    await conn.execute(
        update(package_repositories).where(package_repositories.c.name == name).values(url=url, updated=func.now())
    )


# -- license keys -------------------------------------------------------------------------

# The Windows releases MAAS asks a license key for (its WindowsOS driver).
LICENSED_RELEASES = {
    "windows": [
        "win2008r2",
        "win2012",
        "win2012r2",
        "win2016",
        "win2016nano",
        "win2016-core",
        "win2016dc",
        "win2016dc-core",
        "win2019",
        "win2019-core",
        "win2019dc",
        "win2019dc-core",
        "win10ent",
    ]
}
WINDOWS_KEY_RE = re.compile(r"^([A-Za-z0-9]{5}-){4}[A-Za-z0-9]{5}$")


def invalid_choice(what: str, value: str, choices: list[str]) -> str:
    return f"'{value}' is not a valid {what}.  It should be one of: {', '.join(repr(c) for c in choices)}."


def check_license_key(osystem: str | None, distro_series: str | None, key: str | None) -> FieldErrors:
    """MAAS's LicenseKeyForm: a known OS and release that needs a key, and a key of its form."""
    errors: FieldErrors = {}
    for name, value in (("osystem", osystem), ("distro_series", distro_series), ("license_key", key)):
        if not value:
            errors[name] = ["This field is required."]
    if errors:
        return errors
    assert osystem is not None and distro_series is not None and key is not None
    if osystem not in LICENSED_RELEASES:
        return {"osystem": [invalid_choice("osystem", osystem, list(LICENSED_RELEASES))]}
    series_os, _, release = distro_series.rpartition("/")
    choices = [f"{o}/{r}" for o, releases in LICENSED_RELEASES.items() for r in releases]
    if f"{series_os or osystem}/{release}" not in choices:
        return {"distro_series": [invalid_choice("distro_series", distro_series, choices)]}
    if series_os and series_os != osystem:
        return {"__all__": [f"{release} in distro_series does not match with operating system {osystem}"]}
    if len(key) > 255 or not WINDOWS_KEY_RE.match(key):
        return {"__all__": ["Invalid license key."]}
    return {}


async def list_license_keys(conn: AsyncConnection) -> list[Row]:
    return rows(await conn.execute(select(license_keys).order_by(license_keys.c.osystem, license_keys.c.distro_series)))


async def get_license_key(conn: AsyncConnection, osystem: str, distro_series: str) -> Row:
    row = await first_row(
        conn,
        select(license_keys).where(license_keys.c.osystem == osystem, license_keys.c.distro_series == distro_series),
    )
    if row is None:
        raise NotFound("LicenseKey")
    return dict(row._mapping)


async def create_license_key(
    conn: AsyncConnection, osystem: str | None, distro_series: str | None, key: str | None
) -> Row:
    """`distro_series` may be RELEASE or OS/RELEASE (then osystem may be left out)."""
    if distro_series and "/" in distro_series and not osystem:
        osystem = distro_series.split("/", 1)[0]
    raise_if(check_license_key(osystem, distro_series, key))
    assert osystem and distro_series
    release = distro_series.rpartition("/")[2]
    await execute_unique(
        conn,
        insert(license_keys).values(osystem=osystem, distro_series=release, license_key=key),
        "__all__",
        "License key with this operating system and distro series already exists.",
    )
    return await get_license_key(conn, osystem, release)


async def update_license_key(conn: AsyncConnection, osystem: str, distro_series: str, key: str | None) -> Row:
    current = await get_license_key(conn, osystem, distro_series)
    new_key = current["license_key"] if key is None else key
    raise_if(check_license_key(osystem, distro_series, new_key))
    await conn.execute(
        update(license_keys).where(license_keys.c.id == current["id"]).values(license_key=new_key, updated=func.now())
    )
    return await get_license_key(conn, osystem, distro_series)


async def delete_license_key(conn: AsyncConnection, osystem: str, distro_series: str) -> None:
    """A key that is not there is already deleted (MAAS answers 204 too)."""
    await conn.execute(
        delete(license_keys).where(license_keys.c.osystem == osystem, license_keys.c.distro_series == distro_series)
    )
