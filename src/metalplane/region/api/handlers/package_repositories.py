"""package-repositories/ and license-keys/ (license-key/{osystem}/{distro_series})."""

from __future__ import annotations

from typing import Any

from metalplane.region.api import render_sources as render
from metalplane.region.api.checks import admins_only
from metalplane.region.api.context import Ctx
from metalplane.region.api.crud import Crud
from metalplane.region.api.framework import Handler
from metalplane.region.services import package_repositories as svc

repositories = Handler(
    "PackageRepositoriesHandler", "package-repositories/", "Manage the collection of all Package Repositories in MAAS."
)
repository = Handler(
    "PackageRepositoryHandler", "package-repositories/{id}/", "Manage an individual package repository."
)
license_keys = Handler("LicenseKeysHandler", "license-keys/", "Manage the license keys.")
license_key = Handler("LicenseKeyHandler", "license-key/{osystem}/{distro_series}", "Manage a license key.")

REPOSITORY_DOC = """
:param name: The name of the package repository.
:type name: unicode
:param url: The URL of the package repository (or a PPA location, ppa:OWNER/NAME).
:type url: unicode
:param distributions: Which package distributions to include (comma-separated or repeated).
:type distributions: unicode
:param disabled_pockets: The list of pockets to disable (updates, security, backports).
:type disabled_pockets: unicode
:param disabled_components: The list of components to disable (default archives only: restricted, universe, multiverse).
:type disabled_components: unicode
:param components: The list of components to enable (custom repositories only).
:type components: unicode
:param arches: The list of supported architectures (amd64, i386, armhf, arm64, ppc64el, s390x).
:type arches: unicode
:param key: The authentication key to use with the repository.
:type key: unicode
:param disable_sources: Disable deb-src lines.
:type disable_sources: boolean
:param enabled: Whether or not the repository is enabled.
:type enabled: boolean
"""


def _repository_fields(ctx: Ctx) -> dict[str, Any]:
    p = ctx.params
    fields: dict[str, Any] = {k: p.str(k) for k in ("name", "url", "key") if k in p}
    fields.update({k: p.bool(k) for k in ("enabled", "disable_sources") if k in p})
    fields.update({k: p.get_list(k) for k in svc.LIST_FIELDS if k in p})
    return fields


crud = Crud(repositories, (repository,), render.package_repository)
crud.list_all(svc.list_repositories, "List all available package repositories.")
crud.create(svc.create_repository, _repository_fields, "Create a new package repository.\n" + REPOSITORY_DOC)
crud.read(svc.get_repository, "Read a package repository (by id or name).")
crud.update(svc.update_repository, _repository_fields, "Update the package repository.\n" + REPOSITORY_DOC)
crud.delete(svc.delete_repository, "Delete a package repository (not main_archive or ports_archive).")


@license_keys.read
async def list_license_keys(ctx: Ctx) -> list:
    """List license keys."""
    admins_only(ctx)
    return [render.license_key(k) for k in await ctx.run(svc.list_license_keys)]


@license_keys.create
async def create_license_key(ctx: Ctx) -> dict:
    """Define a license key.

    For the Windows releases MAAS asks a license key for (osystem windows); the
    key has MAAS's form, five groups of five letters or digits.

    :param osystem: Operating system that the key belongs to.
    :type osystem: unicode
    :param distro_series: OS release that the key belongs to (RELEASE or OS/RELEASE).
    :type distro_series: unicode
    :param license_key: License key for osystem/distro_series combo.
    :type license_key: unicode
    """
    admins_only(ctx)
    p = ctx.params
    made = await ctx.run(svc.create_license_key, p.str("osystem"), p.str("distro_series"), p.str("license_key"))
    return render.license_key(made)


@license_key.read
async def read_license_key(ctx: Ctx) -> dict:
    """Read a license key."""
    admins_only(ctx)
    return render.license_key(await ctx.run(svc.get_license_key, ctx.path["osystem"], ctx.path["distro_series"]))


@license_key.update
async def update_license_key(ctx: Ctx) -> dict:
    """Update a license key.

    :param license_key: The new license key.
    :type license_key: unicode
    """
    admins_only(ctx)
    key = ctx.params.str("license_key")
    async with ctx.tx() as conn:
        return render.license_key(
            await svc.update_license_key(conn, ctx.path["osystem"], ctx.path["distro_series"], key)
        )


@license_key.delete
async def delete_license_key(ctx: Ctx) -> None:
    """Delete a license key."""
    admins_only(ctx)
    await ctx.run(svc.delete_license_key, ctx.path["osystem"], ctx.path["distro_series"])
