"""Boot sources (the simplestreams mirrors images are imported from) and their selections.

As MAAS: a region has one default source (MAAS's image server, with its keyring
file) selecting the newest Ubuntu LTS for amd64, and `boot-resources import`
without a url or path imports, from every source, what its selections select.
Signatures are not checked: metalplane reads unsigned streams (index.json), so
the keyring fields are stored and shown but not used.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.images.simplestreams import StreamImage
from metalplane.region.db.tables import boot_source_selections, boot_sources, config
from metalplane.region.errors import FieldErrors, Invalid, NotFound, Refused, raise_if
from metalplane.region.services.rows import Row, delete_row, first_row, insert_unique, one, rows, update_unique

DEFAULT_URL = "http://images.maas.io/ephemeral-v3/stable/"
DEFAULT_KEYRING = "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg"
DEFAULT_OS, DEFAULT_RELEASE = "ubuntu", "noble"  # MAAS 3.7's default commissioning release
URL_SCHEMES = ("http", "https", "ftp", "ftps", "file")  # Django's URLField, plus file:// (metalplane)
SELECTION_FIELD_MAX = 20  # os and release, as MAAS's model
KEYRING_MAX = 1 << 20
DUPLICATE_URL = "Boot source with this Url already exists."
DUPLICATE_SELECTION = "Boot source selection with this Boot source, Os and Release already exists."


def host_arches() -> list[str]:
    """MAAS always selects amd64, and the region's own architecture beside it."""
    machine = platform.machine()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "ppc64le": "ppc64el", "s390x": "s390x"}.get(machine, "amd64")
    return ["amd64"] if arch == "amd64" else [arch, "amd64"]


# -- rules (pure) ----------------------------------------------------------------------


def check_url(url: str | None) -> FieldErrors:
    if url is None or not url.strip():
        return {"url": ["This field is required."]}
    parts = urlsplit(url.strip())
    if (
        parts.scheme not in URL_SCHEMES
        or (parts.scheme != "file" and not parts.hostname)
        or (parts.scheme == "file" and not parts.path.startswith("/"))
        or any(c.isspace() for c in url.strip())
    ):
        return {"url": ["Enter a valid URL."]}
    if len(url) > 200:  # Django's URLField default max_length
        return {"url": [f"Ensure this value has at most 200 characters (it has {len(url)})."]}
    return {}


def keyring_bytes(value: bytes | None) -> bytes:
    """The keyring file as sent (MAAS's form takes it as a file); bounded."""
    data = value or b""
    if len(data) > KEYRING_MAX:
        raise Invalid.field("keyring_data", f"A keyring may be at most {KEYRING_MAX} bytes.")
    return data


def check_keyring(filename: str, data: bytes) -> FieldErrors:
    if not filename and not data:
        return {"__all__": ["One of keyring_data or keyring_filename must be specified."]}
    if filename and data:
        return {"__all__": ["Only one of keyring_filename or keyring_data can be specified."]}
    if len(filename) > 4096:
        return {"keyring_filename": [f"Ensure this value has at most 4096 characters (it has {len(filename)})."]}
    return {}


def split_list(values: list[str]) -> list[str]:
    """Repeated fields and comma-separated values, as MAAS's multiple-choice fields take them."""
    out: list[str] = []
    for value in values:
        out += [v.strip() for v in value.split(",") if v.strip()]
    return out


def check_selection(fields: dict[str, Any]) -> FieldErrors:
    errors: FieldErrors = {}
    for name in ("os", "release"):
        value = fields.get(name) or ""
        if len(value) > SELECTION_FIELD_MAX:
            errors[name] = [f"Ensure this value has at most {SELECTION_FIELD_MAX} characters (it has {len(value)})."]
    if not fields.get("release"):
        errors.setdefault("release", ["This field is required."])
    for name in ("arches", "subarches", "labels"):
        for value in fields.get(name) or []:
            if len(value) > 255 or any(c.isspace() for c in value):
                errors.setdefault(name, []).append(f"{value!r} is not a valid value.")
    return errors


def selects(selection: Row, image: StreamImage) -> bool:
    """Whether `selection` asks for `image` (MAAS's rule: os and release equal, each of
    arch, subarch and label listed or "*")."""
    os_name, _, release = image.name.partition("/")
    arch, _, subarch = image.architecture.partition("/")

    def listed(values: list[str], value: str) -> bool:
        return "*" in values or value in values

    return (
        (not selection["os"] or selection["os"] == os_name)
        and selection["release"] == release
        and listed(selection["arches"], arch)
        and listed(selection["subarches"], subarch or "generic")
        and listed(selection["labels"], image.label)
    )


# -- sources ---------------------------------------------------------------------------


async def ensure_default_source(conn: AsyncConnection) -> None:
    """MAAS's default source and selection, when there is no source at all (as MAAS
    does at start-up: deleting every source brings the default back)."""
    if await first_row(conn, select(boot_sources.c.id).limit(1)) is not None:
        return
    source_id = (
        await conn.execute(  # another region starting at the same time may win
            pg_insert(boot_sources)
            .values(url=DEFAULT_URL, keyring_filename=DEFAULT_KEYRING)
            .on_conflict_do_nothing(index_elements=["url"])
            .returning(boot_sources.c.id)
        )
    ).scalar_one_or_none()
    if source_id is None:
        return
    await conn.execute(
        insert(boot_source_selections).values(
            boot_source_id=source_id,
            os=DEFAULT_OS,
            release=DEFAULT_RELEASE,
            arches=host_arches(),
            subarches=["*"],
            labels=["*"],
        )
    )


async def list_sources(conn: AsyncConnection) -> list[Row]:
    return rows(await conn.execute(select(boot_sources).order_by(boot_sources.c.id)))


async def get_source(conn: AsyncConnection, source_id: int) -> Row:
    return one(await conn.execute(select(boot_sources).where(boot_sources.c.id == source_id)), "BootSource")


async def create_source(
    conn: AsyncConnection, url: str | None, keyring_filename: str, keyring_data: bytes | None
) -> Row:
    data = keyring_bytes(keyring_data)
    raise_if({**check_url(url), **check_keyring(keyring_filename, data)})
    assert url is not None
    source_id = await insert_unique(
        conn, boot_sources, "url", DUPLICATE_URL, url=url.strip(), keyring_filename=keyring_filename, keyring_data=data
    )
    return await get_source(conn, source_id)


async def update_source(conn: AsyncConnection, source_id: int, changes: dict[str, Any]) -> Row:
    """A partial update; the keyring rule applies to the result."""
    current = await get_source(conn, source_id)
    url: str = changes["url"] if "url" in changes else current["url"]
    filename: str = changes["keyring_filename"] if "keyring_filename" in changes else current["keyring_filename"]
    data = bytes(current["keyring_data"])
    if "keyring_data" in changes:
        data = keyring_bytes(changes["keyring_data"])
    raise_if({**check_url(url), **check_keyring(filename, data)})
    await update_unique(
        conn,
        boot_sources,
        source_id,
        "url",
        DUPLICATE_URL,
        url=url.strip(),
        keyring_filename=filename,
        keyring_data=data,
    )
    return await get_source(conn, source_id)


async def delete_source(conn: AsyncConnection, source_id: int) -> None:
    await get_source(conn, source_id)
    await delete_row(conn, boot_sources, source_id)


# -- selections --------------------------------------------------------------------------


async def list_selections(conn: AsyncConnection, source_id: int) -> list[Row]:
    await get_source(conn, source_id)
    return rows(
        await conn.execute(
            select(boot_source_selections)
            .where(boot_source_selections.c.boot_source_id == source_id)
            .order_by(boot_source_selections.c.id)
        )
    )


async def get_selection(conn: AsyncConnection, source_id: int, selection_id: int) -> Row:
    await get_source(conn, source_id)
    row = await first_row(
        conn,
        select(boot_source_selections).where(
            boot_source_selections.c.boot_source_id == source_id, boot_source_selections.c.id == selection_id
        ),
    )
    if row is None:
        raise NotFound("BootSourceSelection")
    return dict(row._mapping)


def _selection_values(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: fields[k] for k in ("os", "release", "arches", "subarches", "labels") if k in fields}


async def create_selection(conn: AsyncConnection, source_id: int, fields: dict[str, Any]) -> Row:
    """A new selection; arches, subarches and labels default to "*" (everything)."""
    await get_source(conn, source_id)
    values = {
        "os": "",
        "release": "",
        "arches": ["*"],
        "subarches": ["*"],
        "labels": ["*"],
        **{k: v for k, v in _selection_values(fields).items() if v not in (None, [])},
    }
    raise_if(check_selection(values))
    selection_id = await insert_unique(
        conn, boot_source_selections, "__all__", DUPLICATE_SELECTION, boot_source_id=source_id, **values
    )
    return await get_selection(conn, source_id, selection_id)


async def update_selection(conn: AsyncConnection, source_id: int, selection_id: int, fields: dict[str, Any]) -> Row:
    current = await get_selection(conn, source_id, selection_id)
    values = {
        **{k: current[k] for k in ("os", "release", "arches", "subarches", "labels")},
        **{k: v for k, v in _selection_values(fields).items() if v is not None},
    }
    raise_if(check_selection(values))
    await update_unique(conn, boot_source_selections, selection_id, "__all__", DUPLICATE_SELECTION, **values)
    return await get_selection(conn, source_id, selection_id)


async def commissioning_release(conn: AsyncConnection) -> tuple[str, str]:
    """The commissioning OS and release settings (MAAS's defaults when unset)."""
    found = {
        r.name: r.value
        for r in await conn.execute(
            select(config.c.name, config.c.value).where(
                config.c.name.in_(("commissioning_osystem", "commissioning_distro_series"))
            )
        )
    }
    osystem, series = found.get("commissioning_osystem"), found.get("commissioning_distro_series")
    return (
        osystem if isinstance(osystem, str) and osystem else DEFAULT_OS,
        series if isinstance(series, str) and series else DEFAULT_RELEASE,
    )


async def delete_selection(conn: AsyncConnection, source_id: int, selection_id: int) -> None:
    selection = await get_selection(conn, source_id, selection_id)
    if (selection["os"], selection["release"]) == await commissioning_release(conn):
        raise Refused(
            f"Unable to delete {selection['os']} {selection['release']}. "
            "It is the operating system used for commissioning."
        )
    await delete_row(conn, boot_source_selections, selection_id)


@dataclass(frozen=True)
class Configured:
    """A source to import from and what to take from it."""

    url: str
    selections: list[Row]

    def wants(self, image: StreamImage) -> bool:
        return any(selects(s, image) for s in self.selections)


async def configured(conn: AsyncConnection) -> list[Configured]:
    """Every source with its selections, for `boot-resources import` without a url.
    Refused when there is nothing to import from."""
    sources = await list_sources(conn)
    if not sources:
        raise Refused(
            "No boot sources are configured: add one with boot-sources create, or import from url=... or path=...."
        )
    chosen = [Configured(s["url"], await list_selections(conn, s["id"])) for s in sources]
    chosen = [c for c in chosen if c.selections]
    if not chosen:
        raise Refused(
            "No boot source has a selection: add one with boot-source-selections create, "
            "or import from url=... or path=...."
        )
    return chosen
