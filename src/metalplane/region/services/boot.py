"""What a PXE-booting machine should boot: the region's answer to the rack.

Unknown MAC -> enlist (ephemeral image); commissioning, deploying until the
installer is done, disk erasing and rescue mode -> ephemeral image with an enrolment
credential for the address that asked (services/enrolment.py), which the image
exchanges for its metadata token; Deployed (and Deploying once the installer is done)
-> its local disk; any other status (Ready, Allocated, Broken, the failed ones...) ->
the ephemeral image in mode "poweroff", which powers the machine off at once without a
credential (MAAS's "poweroff" purpose, Node.get_boot_purpose: a machine that nobody is
using is kept off, whatever is on its disk).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from metalplane.region import validation
from metalplane.region.errors import Refused
from metalplane.region.services import boot_resources, commissioning, enrolment, lifecycle, machines
from metalplane.region.services.node_status import Status

log = logging.getLogger(__name__)
ENLIST, COMMISSION, DEPLOY, ERASE, RESCUE, LOCAL = "enlist", "commission", "deploy", "erase", "rescue", "local"
POWEROFF = "poweroff"
# The statuses whose machine boots the ephemeral image, and in which mode.
NETBOOT_MODES: dict[int, str] = {
    Status.DISK_ERASING: ERASE,
    Status.ENTERING_RESCUE_MODE: RESCUE,
    Status.RESCUE_MODE: RESCUE,
}
# How long a config request from a machine's address waits for its DHCP lease to
# reach the region (racks report leases within a second or so), polling.
LEASE_WAIT = 5.0
LEASE_POLL = 0.25


# The purposes whose ephemeral image talks to the region (it enrols first).
ENROLLING = (COMMISSION, DEPLOY, ERASE, RESCUE)


def purpose_for(status: int | None, netboot: bool = True, previous_status: int | None = None) -> str:
    """MAAS's rule (Node.get_boot_purpose), in metalplane's ephemeral modes. Differences:
    MAAS boots New, Releasing and Testing into its commissioning environment (its release
    scripts run there); metalplane has no run for them (the wipe is Disk erasing's own
    mode), so they are powered off. Exiting rescue mode towards Deployed boots the disk (the
    exit power-cycles the machine for that; MAAS would power it off if the PXE request came
    before the status changed back)."""
    if status is None:
        return ENLIST
    if status == machines.COMMISSIONING:
        return COMMISSION
    if status == Status.DEPLOYING:
        return DEPLOY if netboot else LOCAL
    if status == Status.DEPLOYED:
        return LOCAL
    if status == Status.EXITING_RESCUE_MODE and previous_status == Status.DEPLOYED:
        return LOCAL
    return NETBOOT_MODES.get(status, POWEROFF)


def pick_image(manifest: dict[str, Any], architecture: str) -> dict[str, Any] | None:
    """The newest ephemeral image for this architecture ("amd64" or "amd64/generic")."""
    arch = architecture.split("/")[0] or "amd64"
    found = [
        i
        for i in manifest.get("images", [])
        if i["architecture"] == arch
        and i["name"].startswith("ephemeral/")
        and {"boot-kernel", "boot-initrd"} <= set(i["files"])
    ]
    return max(found, key=lambda i: i["version"]) if found else None


def kernel_params(purpose: str, metadata_url: str, credential: str | None, mac: str) -> str:
    params = [
        "console=tty0",
        "console=ttyS0,115200",
        f"mp_mode={purpose}",
        f"metadata_url={metadata_url}",
        f"mp_after={'reboot' if purpose == DEPLOY else 'poweroff'}",
        "BOOTIF=01-" + mac.replace(":", "-"),
    ]
    if credential:
        params.append(f"enrol={credential}")
    return " ".join(params)


async def boot_config(
    engine: AsyncEngine,
    mac: str,
    architecture: str,
    metadata_url: str,
    client_ip: str | None = None,
    lease_wait: float = LEASE_WAIT,
) -> dict[str, Any]:
    """The answer for `mac`, asked from `client_ip`. A commissioning machine's address
    may not have its DHCP lease recorded yet: wait up to `lease_wait` for it, a short
    transaction per look."""
    deadline = time.monotonic() + lease_wait
    while True:
        try:
            async with engine.begin() as conn:
                return await _boot_config(
                    conn, validation.normalise_mac(mac) or mac, architecture, metadata_url, client_ip
                )
        except enrolment.LeasePending as exc:
            if time.monotonic() + LEASE_POLL > deadline:
                return _refused(mac, client_ip, exc)
        except Refused as exc:
            return _refused(mac, client_ip, exc)
        await asyncio.sleep(LEASE_POLL)


def _refused(mac: str, client_ip: str | None, exc: Refused) -> dict[str, Any]:
    problem = f"no enrolment credential for {mac} asked from {client_ip}: {exc.detail}"
    log.warning("boot config: %s; it boots from its local disk", problem)
    return {"purpose": LOCAL, "problem": problem}


async def _boot_config(
    conn: AsyncConnection, mac: str, architecture: str, metadata_url: str, client_ip: str | None
) -> dict[str, Any]:
    machine = (await commissioning.machines_with_macs(conn, [mac])).get(mac)
    purpose = purpose_for(machine["status"], machine["netboot"], machine["previous_status"]) if machine else ENLIST
    if purpose == LOCAL:
        return {"purpose": LOCAL}
    image = pick_image(await boot_resources.manifest(conn), machine["architecture"] if machine else architecture)
    if image is None:
        return {"purpose": LOCAL, "problem": "no ephemeral image is imported; see `metalplane images build-ephemeral`"}
    credential = None
    if purpose in ENROLLING:
        assert machine is not None
        credential = await enrolment.credential_for(conn, machine, mac, client_ip)
    if purpose in (DEPLOY, ERASE, RESCUE):
        assert machine is not None
        await lifecycle.renew_deadline(conn, machine["id"])  # it PXE-booted the ephemeral image: alive
    return {
        "purpose": purpose,
        "kernel": image["files"]["boot-kernel"]["sha256"],
        "initrd": image["files"]["boot-initrd"]["sha256"],
        "params": kernel_params(purpose, metadata_url, credential, mac),
    }
