"""What a PXE-booting machine should boot: the region's answer to the rack.

Unknown MAC -> enlist (ephemeral image); commissioning -> ephemeral image with
its metadata token; deploying (until the installer is done) -> the ephemeral
image as the installer, with the token; anything else (Deployed...) -> its local disk.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.services import boot_resources, commissioning, lifecycle, machines
from metalplane.region.services.node_status import Status

ENLIST, COMMISSION, DEPLOY, LOCAL = "enlist", "commission", "deploy", "local"


def purpose_for(status: int | None, netboot: bool = True) -> str:
    if status is None:
        return ENLIST
    if status == machines.COMMISSIONING:
        return COMMISSION
    if status == Status.DEPLOYING and netboot:
        return DEPLOY
    return LOCAL


def pick_image(manifest: dict[str, Any], architecture: str) -> dict[str, Any] | None:
    """The newest ephemeral image for this architecture ("amd64" or "amd64/generic")."""
    arch = architecture.split("/")[0] or "amd64"
    found = [i for i in manifest.get("images", []) if i["architecture"] == arch
             and i["name"].startswith("ephemeral/") and {"boot-kernel", "boot-initrd"} <= set(i["files"])]
    return max(found, key=lambda i: i["version"]) if found else None


def kernel_params(purpose: str, metadata_url: str, token: str | None, mac: str) -> str:
    # The installer reboots into the installed disk; enlist and commission stop the machine.
    after = "reboot" if purpose == DEPLOY else "poweroff"
    params = ["console=tty0", "console=ttyS0,115200", f"mp_mode={purpose}", f"metadata_url={metadata_url}",
              f"mp_after={after}", "BOOTIF=01-" + mac.replace(":", "-")]
    if token:
        params.append(f"token={token}")
    return " ".join(params)


async def boot_config(conn: AsyncConnection, mac: str, architecture: str, metadata_url: str) -> dict[str, Any]:
    mac = machines.normalise_mac(mac)
    machine = await commissioning.machine_by_mac(conn, mac)
    purpose = purpose_for(machine["status"] if machine else None, machine["netboot"] if machine else True)
    if purpose == LOCAL:
        return {"purpose": LOCAL}
    image = pick_image(await boot_resources.manifest(conn), machine["architecture"] if machine else architecture)
    if image is None:
        return {"purpose": LOCAL, "problem": "no ephemeral image is imported; see `metalplane images build-ephemeral`"}
    token = await commissioning.token_for(conn, machine["id"]) if purpose in (COMMISSION, DEPLOY) else None
    if purpose == DEPLOY:
        await lifecycle.renew_deadline(conn, machine["id"])  # it PXE-booted: alive
    return {
        "purpose": purpose,
        "kernel": image["files"]["boot-kernel"]["sha256"],
        "initrd": image["files"]["boot-initrd"]["sha256"],
        "params": kernel_params(purpose, metadata_url, token, mac),
    }
