"""The region's side of the disk-erasing contract (docs/boot.md, "Disk erasing").

`machine release erase=true` puts the machine in Disk erasing (services/lifecycle.py)
and it PXE-boots the ephemeral image in `mp_mode=erase` (ephemeral/erase.sh). The wipe
reads how to erase (`erase/config`), sends its whole output (`erase/output`, kept as
the `wipe-disks` result of the machine's release script set, MAAS's script name) and
the outcome (`erase/done`): ok -> Disks erased, Releasing, powered off, Ready; failed ->
Failed disk erasing with MAAS's "Failed to erase disks." and the reason. Each call
carries the machine's token and is refused unless the machine is Disk erasing.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.errors import Invalid, Refused
from metalplane.region.services import lifecycle
from metalplane.region.services import script_results as results_service
from metalplane.region.services.node_status import ERASE_FAILED, Status
from metalplane.region.services.rows import Row

SCRIPT_NAME = "wipe-disks"  # MAAS's release script that erases the disks
MAX_OUTPUT = 4 * 1024 * 1024
MAX_MESSAGE = 2000
MODES = ("secure-quick", "secure", "quick", "full")  # lifecycle.erase_mode


def require_erasing(machine: Row) -> None:
    if machine["status"] != Status.DISK_ERASING:
        raise Refused(f"Machine {machine['hostname']} is not erasing its disks.")


def config_for(machine: Row) -> Row:
    """`erase/config`: how to wipe (lifecycle.erase_mode's words)."""
    require_erasing(machine)
    mode = machine["erase_mode"] if machine["erase_mode"] in MODES else "full"
    return {"system_id": machine["system_id"], "mode": mode}


def outcome(body: Row, failed_text: str) -> tuple[bool, str]:
    """(succeeded, the reason a failure gives) from a `{"result": "ok" | "failed",
    "message": "..."}` report of the ephemeral environment (erase/done, rescue/booted)."""
    result = body.get("result")
    if result not in ("ok", "failed"):
        raise Invalid.field("result", "Expected ok or failed.")
    message = body.get("message") or ""
    if not isinstance(message, str):
        raise Invalid.field("message", "Expected a string.")
    if result == "ok":
        return True, ""
    return False, f"{failed_text} {message[:MAX_MESSAGE]}".strip()


def done_outcome(body: Row) -> tuple[bool, str]:
    return outcome(body, ERASE_FAILED)


async def store_output(conn: AsyncConnection, machine: Row, run: results_service.RunOutput) -> None:
    """The wipe's whole output, as the wipe-disks result of the release script set."""
    require_erasing(machine)
    await results_service.store_output(conn, machine["id"], results_service.RELEASE, SCRIPT_NAME, run, MAX_OUTPUT)
    await lifecycle.renew_deadline(conn, machine["id"])


async def finish(conn: AsyncConnection, machine: Row, body: Row) -> Row | None:
    """`erase/done`: ok -> Releasing (the machine the caller then powers off and releases);
    failed -> Failed disk erasing with the reason (None: nothing more to do)."""
    require_erasing(machine)
    ok, reason = done_outcome(body)
    if not ok:
        await lifecycle.fail(conn, machine["system_id"], Status.DISK_ERASING, reason)
        return None
    return await lifecycle.erased(conn, machine["system_id"])
