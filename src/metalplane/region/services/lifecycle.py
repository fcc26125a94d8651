"""The machine lifecycle past Ready: deploy, release, abort, broken/fixed, lock, owner data.

MAAS's rules (research/maas_lifecycle.json, maas_deploy.md): every status change
goes through node_status.require_transition; who may act is services/permissions.py's table;
the words of each 409 are MAAS's. What the installer reports while a machine is
Deploying is services/deployment.py; allocation is services/allocation.py.

Power: deploy powers the machine on (cycled when it is on) so that it PXE-boots the
installer; release and abort power it off. These calls leave the database between
transactions (power.run), so each action is: a transaction that changes the status,
the BMC call, and a transaction with the outcome. A region dying between them leaves
the machine in a timed status (Deploying, Releasing) that `expire` fails later.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import node_tokens, node_user_data, nodes
from metalplane.region.db.transaction import Work
from metalplane.region.errors import Conflict, Invalid, PermissionDenied
from metalplane.region.services import (
    allocation,
    auto_addresses,
    boot_resources,
    commissioning,
    enrolment,
    events,
    ipaddresses,
    machines,
    permissions,
    power,
    script_results,
    settings,
)
from metalplane.region.services.node_status import (
    ABORTED_TO,
    ERASE_FAILED,
    FAILED_STATUS_OF,
    LABELS,
    RELEASABLE,
    RELEASE_NOOP,
    TIMED,
    Status,
    require_transition,
    timed_out_message,
)
from metalplane.region.services.rows import Row
from metalplane.region.services.users import User

MAX_USER_DATA = 4 * 1024 * 1024  # bytes, decoded
DEPLOY_IMAGE_FILETYPE = "root-tgz"
RELEASE_TIMEOUT = timedelta(minutes=5)  # MAAS's hard-coded Releasing timeout


@dataclass(frozen=True)
class DeployOptions:
    osystem: str | None = None
    distro_series: str | None = None
    user_data: bytes | None = None
    hwe_kernel: str | None = None
    comment: str = ""
    agent_name: str = ""
    timeout: int | None = None  # seconds; default node_timeout minutes


def decode_user_data(text: str) -> bytes:
    """MAAS stores user_data base64-decoded when it is base64 (libmaas wraps it every
    76 characters), else as given. 400 on the field when it is too big."""
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        data = text.encode()
    if len(data) > MAX_USER_DATA:
        raise Invalid.field("user_data", f"user_data is larger than {MAX_USER_DATA} bytes.")
    return data


def deployable_images(manifest: dict[str, Any], architecture: str) -> dict[str, Row]:
    """ "OS/SERIES" -> the imported image that has a root tarball for this architecture."""
    arch = architecture.split("/")[0] or "amd64"
    return {
        i["name"]: i
        for i in manifest.get("images", [])
        if i["architecture"] == arch and DEPLOY_IMAGE_FILETYPE in i["files"]
    }


def choose_image(manifest: dict[str, Any], architecture: str, osystem: str, series: str) -> Row:
    """The image to install, or MAAS's 400 on distro_series naming what there is."""
    found = deployable_images(manifest, architecture)
    image = found.get(f"{osystem}/{series}")
    if image is None:
        choices = ", ".join(sorted(found)) or "none (import one: metalplane images build-debian)"
        raise Invalid.field(
            "distro_series", f"'{osystem}/{series}' is not a valid distro_series.  It should be one of: {choices}."
        )
    return image


def release_to_deploy(
    images: dict[str, Row], osystem: str | None, series: str | None, default_os: str, default_series: str
) -> tuple[str, str]:
    """(OS, series) of a deploy: as given ("os/series" in distro_series too), else the
    defaults; a series given alone takes the OS of the one imported image that has it."""
    if series and "/" in series:
        os_part, _, series = series.partition("/")
        return os_part, series
    if series and not osystem:
        owners = {name.split("/")[0] for name in images if name.split("/", 1)[-1] == series}
        if len(owners) == 1:
            return owners.pop(), series
    return osystem or default_os, series or default_series


async def acting_on(conn: AsyncConnection, system_id: str, actor: User, action: str) -> Row:
    machine = await machines.get_machine(conn, system_id, lock=True)  # MAAS: 403, not 404, for others'
    permissions.require(actor, action, machine)
    return machine


async def set_status(
    conn: AsyncConnection, machine: Row, new: int, description: str = "", status_event: str | None = None, **values: Any
) -> None:
    """One status change: MAAS's transition table, the row, and the events."""
    require_transition(machine["status"], new)
    await conn.execute(
        update(nodes).where(nodes.c.id == machine["id"]).values(status=new, updated=func.now(), **values)
    )
    await events.status_changed(conn, machine, machine["status"], new, LABELS, description, status_event)


async def set_timed_status(conn: AsyncConnection, machine: Row, new: int, timeout: timedelta, **values: Any) -> None:
    """A status with a deadline (`expire` ends it when the machine never reports)."""
    await set_status(
        conn,
        machine,
        new,
        status_timeout=int(timeout.total_seconds()),
        status_expires=datetime.now(UTC) + timeout,
        **values,
    )


async def _fresh_token(conn: AsyncConnection, node_id: int) -> None:
    await conn.execute(delete(node_tokens).where(node_tokens.c.node_id == node_id))
    await commissioning.token_for(conn, node_id)


# -- deploy ------------------------------------------------------------------------------------------


async def start_deployment(conn: AsyncConnection, system_id: str, actor: User, options: DeployOptions) -> Row:
    """Allocated (or Ready, taken first) -> Deploying, with its image, user_data, token, deadline and
    its AUTO links' addresses (a full subnet: 503 and nothing changes, as MAAS's deploy)."""
    machine = await acting_on(conn, system_id, actor, "deploy")
    if machine["status"] == Status.READY:
        machine = await allocation.take(conn, machine, actor, options.agent_name, options.comment)
    if machine["status"] != Status.ALLOCATED:
        raise Conflict(f"Can't deploy a machine that is in the '{LABELS.get(machine['status'])}' state")
    manifest = await boot_resources.manifest(conn)
    osystem, series = release_to_deploy(
        deployable_images(manifest, machine["architecture"]),
        options.osystem,
        options.distro_series,
        await settings.get_setting(conn, "default_osystem"),
        await settings.get_setting(conn, "default_distro_series"),
    )
    choose_image(manifest, machine["architecture"], osystem, series)
    try:
        await auto_addresses.claim(conn, machine["id"])
    except ipaddresses.Exhausted:
        raise ipaddresses.Exhausted(auto_addresses.exhausted_message(system_id)) from None
    seconds = options.timeout or 60 * await settings.get_setting(conn, "node_timeout")
    await conn.execute(delete(node_user_data).where(node_user_data.c.node_id == machine["id"]))
    if options.user_data:
        await conn.execute(pg_insert(node_user_data).values(node_id=machine["id"], data=options.user_data))
    await _fresh_token(conn, machine["id"])
    await enrolment.forget(conn, machine["id"])  # a new run: the installer enrols afresh
    await script_results.start_set(conn, machine["id"], script_results.INSTALLATION)
    await events.record(
        conn, machine, "REQUEST_NODE_START_DEPLOYMENT", options.comment, action="start", username=actor.username
    )
    await set_timed_status(
        conn,
        machine,
        Status.DEPLOYING,
        osystem=osystem,
        distro_series=series,
        netboot=True,
        hwe_kernel=options.hwe_kernel or None,
        error_description="",
        timeout=timedelta(seconds=seconds),
    )
    return await machines.get_machine(conn, system_id)


async def deploy(work: Work, rpc_server: Any, system_id: str, actor: User, options: DeployOptions) -> machines.Machines:
    """`machine deploy`: Deploying, then power on through the BMC so that it PXE-boots the
    installer (cycled when it is on); Failed deployment when the BMC refuses."""
    async with work.tx() as conn:
        machine = await start_deployment(conn, system_id, actor, options)
    if machine["bmc_id"] is not None:
        try:
            await power.boot_it(work, rpc_server, system_id)
        except power.PowerFailed as exc:
            async with work.tx() as conn:
                if await fail(conn, system_id, Status.DEPLOYING, f"Powering the machine on failed: {exc.detail}"):
                    await auto_addresses.release(conn, machine["id"])  # MAAS: a start that fails gives them back
            raise
    async with work.tx() as conn:
        return await machines.show_machine(conn, system_id)


async def fail(conn: AsyncConnection, system_id: str, expected: int, message: str) -> bool:
    """A timed status ends in its failed one (Deploying -> Failed deployment...) with the reason;
    False when the machine has moved on meanwhile."""
    machine = await machines.get_machine(conn, system_id, lock=True)
    if machine["status"] != expected:
        return False
    await set_status(conn, machine, FAILED_STATUS_OF[expected], message, status_expires=None, error_description=message)
    await end_run(conn, machine)
    return True


# The script set each timed run of the ephemeral environment writes its output to.
RUN_RESULTS = {Status.DEPLOYING: script_results.INSTALLATION, Status.DISK_ERASING: script_results.RELEASE}


async def end_run(conn: AsyncConnection, machine: Row) -> None:
    """The run `machine` was in (its status before this change) is over: its script set ends."""
    result_type = RUN_RESULTS.get(machine["status"])
    if result_type is not None:
        await script_results.end_set(conn, await script_results.current_set_id(conn, machine["id"], result_type))


# -- release -----------------------------------------------------------------------------------------


def erase_mode(erase: bool | None, quick: bool | None, secure: bool | None, defaults: dict[str, bool]) -> str | None:
    """None (no wipe), "secure-quick", "secure", "quick" or "full", as MAAS picks it from the
    flags and settings: secure erase where a disk has it, else the quick wipe when quick
    was asked too, else the whole disk zeroed (MAAS's wipe-disks)."""
    if not (erase or defaults["enable_disk_erasing_on_release"]):
        return None
    quick = defaults["disk_erase_with_quick_erase"] if quick is None else quick
    secure = defaults["disk_erase_with_secure_erase"] if secure is None else secure
    if secure:
        return "secure-quick" if quick else "secure"
    return "quick" if quick else "full"


async def _erase_defaults(conn: AsyncConnection) -> dict[str, bool]:
    names = ("enable_disk_erasing_on_release", "disk_erase_with_quick_erase", "disk_erase_with_secure_erase")
    return {n: bool(await settings.get_setting(conn, n)) for n in names}


async def start_release(conn: AsyncConnection, machine: Row, actor: User, mode: str | None, comment: str) -> bool:
    """Into Releasing (False: already Ready or Releasing, nothing to do)."""
    if machine["status"] in RELEASE_NOOP:
        return False
    if machine["status"] not in RELEASABLE:
        raise Conflict(f"Machine cannot be released in its current state ('{LABELS.get(machine['status'])}').")
    await events.record(conn, machine, "REQUEST_NODE_RELEASE", comment, action="release", username=actor.username)
    await set_timed_status(
        conn,
        machine,
        Status.RELEASING,
        erase_mode=mode,
        timeout=RELEASE_TIMEOUT,
    )
    return True


async def start_erasing(conn: AsyncConnection, machine: Row, actor: User, mode: str, comment: str) -> bool:
    """Into Disk erasing (MAAS's release with only its wipe-disks script): a fresh token, a
    release script set for the wipe's output, the deadline; the next PXE boot runs the wipe.
    False: already Ready or Releasing, nothing to do (as a release without erase)."""
    if machine["status"] in RELEASE_NOOP:
        return False
    if machine["status"] not in RELEASABLE:
        raise Conflict(f"Machine cannot be released in its current state ('{LABELS.get(machine['status'])}').")
    await events.record(
        conn, machine, "REQUEST_NODE_ERASE_DISK", comment, action="start disk erasing", username=actor.username
    )
    seconds = 60 * await settings.get_setting(conn, "node_timeout")
    await _fresh_token(conn, machine["id"])
    await enrolment.forget(conn, machine["id"])
    await script_results.start_set(conn, machine["id"], script_results.RELEASE)
    await set_timed_status(
        conn,
        machine,
        Status.DISK_ERASING,
        erase_mode=mode,
        netboot=True,
        error_description="",
        timeout=timedelta(seconds=seconds),
    )
    return True


async def erased(conn: AsyncConnection, system_id: str) -> Row | None:
    """The wipe is done: Disk erasing -> Releasing (MAAS releases the machine once its
    ephemeral environment has finished); the caller powers it off and finishes the release.
    None when the machine has moved on meanwhile."""
    machine = await machines.get_machine(conn, system_id, lock=True)
    if machine["status"] != Status.DISK_ERASING:
        return None
    await end_run(conn, machine)
    await events.record(conn, machine, "NODE_DISKS_ERASED")
    await set_timed_status(
        conn,
        machine,
        Status.RELEASING,
        timeout=RELEASE_TIMEOUT,
    )
    return machine


async def finish_release(conn: AsyncConnection, system_id: str) -> None:
    """Releasing -> Ready: owner, deployment, user_data, token and AUTO links' addresses
    dropped; next PXE boot netboots."""
    machine = await machines.get_machine(conn, system_id, lock=True)
    if machine["status"] != Status.RELEASING:
        return
    await conn.execute(delete(node_user_data).where(node_user_data.c.node_id == machine["id"]))
    await conn.execute(delete(node_tokens).where(node_tokens.c.node_id == machine["id"]))
    await auto_addresses.release(conn, machine["id"])
    await set_status(
        conn,
        machine,
        Status.READY,
        status_event="RELEASED",
        owner_id=None,
        agent_name="",
        owner_data={},
        osystem="",
        distro_series="",
        hwe_kernel=None,
        netboot=True,
        locked=False,
        status_expires=None,
        error_description="",
        erase_mode=None,
    )


async def power_off_and_finish(work: Work, rpc_server: Any, machine: Row) -> None:
    if machine["bmc_id"] is not None:
        try:
            await power.run(work, rpc_server, machine["system_id"], "off")
        except power.PowerFailed as exc:
            async with work.tx() as conn:
                await fail(
                    conn,
                    machine["system_id"],
                    Status.RELEASING,
                    f"Failed to release machine. Powering it off failed: {exc.detail}",
                )
            raise
    async with work.tx() as conn:
        await finish_release(conn, machine["system_id"])


async def release(
    work: Work,
    rpc_server: Any,
    system_id: str,
    actor: User,
    erase: bool | None = None,
    quick_erase: bool | None = None,
    secure_erase: bool | None = None,
    comment: str = "",
) -> machines.Machines:
    """`machine release`: power off through the BMC, then Ready with the owner dropped.

    With `erase` (or enable_disk_erasing_on_release): Disk erasing first, the machine
    PXE-boots the ephemeral environment's wipe (services/erasing.py has its reports), and
    is released when the wipe reports it is done (docs/boot.md, "Disk erasing")."""
    async with work.tx() as conn:
        machine = await acting_on(conn, system_id, actor, "release")
        mode = erase_mode(erase, quick_erase, secure_erase, await _erase_defaults(conn))
        started = mode is None and await start_release(conn, machine, actor, None, comment)
    if mode is not None:
        await _erase(work, rpc_server, machine, actor, mode, comment)
    elif started:
        await power_off_and_finish(work, rpc_server, machine)
    async with work.tx() as conn:
        return await machines.show_machine(conn, system_id)


async def _erase(work: Work, rpc_server: Any, machine: Row, actor: User, mode: str, comment: str) -> None:
    """Disk erasing, then power on through the BMC so that it PXE-boots the wipe (cycled
    when it is on); Failed disk erasing when the BMC refuses (MAAS)."""
    async with work.tx() as conn:
        started = await start_erasing(conn, machine, actor, mode, comment)
    if not started or machine["bmc_id"] is None:
        return
    try:
        await power.boot_it(work, rpc_server, machine["system_id"])
    except power.PowerFailed as exc:
        async with work.tx() as conn:
            await fail(
                conn, machine["system_id"], Status.DISK_ERASING, f"{ERASE_FAILED} Powering it on failed: {exc.detail}"
            )
        raise


async def release_many(work: Work, rpc_server: Any, system_ids: list[str], actor: User, comment: str = "") -> list[str]:
    """`machines release`: all or none; MAAS's 403/409 name the machines in the way."""
    async with work.tx() as conn:
        found = await machines.list_machines(conn, system_ids)
        missing = sorted(set(system_ids) - {m["system_id"] for m in found})
        if missing:
            raise Invalid.field("machines", f"Unknown machine(s): {', '.join(missing)}.")
        denied = [
            m["system_id"]
            for m in found
            if not permissions.allowed(permissions.EDIT, actor, m["owner_id"], m["locked"])
        ]
        if denied:
            raise PermissionDenied(
                f"You don't have the required permission to release the following machine(s): {', '.join(denied)}."
            )
        stuck = [m for m in found if m["status"] not in RELEASABLE | RELEASE_NOOP]
        if stuck:
            raise Conflict(
                "Machine(s) cannot be released in their current state: "
                + ", ".join(f"{m['system_id']} ('{LABELS.get(m['status'])}')" for m in stuck)
                + "."
            )
        started = []
        for m in found:
            locked = await machines.get_machine(conn, m["system_id"], lock=True)
            if await start_release(conn, locked, actor, None, comment):
                started.append(locked)
    for m in started:
        await power_off_and_finish(work, rpc_server, m)
    return [m["system_id"] for m in started]


# -- abort, broken, fixed ----------------------------------------------------------------------------

ABORT_EVENTS = {
    Status.DEPLOYING: ("REQUEST_NODE_ABORT_DEPLOYMENT", "abort deploying", "ABORTED_DEPLOYMENT"),
    Status.COMMISSIONING: ("REQUEST_NODE_ABORT_COMMISSIONING", "abort commissioning", "ABORTED_COMMISSIONING"),
    Status.DISK_ERASING: ("REQUEST_NODE_ABORT_ERASE_DISK", "abort disk erasing", "ABORTED_DISK_ERASING"),
}
# The reason kept when the BMC refuses the abort's power-off (no MAAS text: MAAS leaves the
# machine in its status, its deadline cleared, and logs the error).
ABORT_FAILED = {
    Status.DEPLOYING: "Failed to abort deployment.",
    Status.COMMISSIONING: "Failed to abort commissioning.",
    Status.DISK_ERASING: "Failed to abort disk erasing.",
}


async def abort(work: Work, rpc_server: Any, system_id: str, actor: User, comment: str = "") -> machines.Machines:
    """Deploying -> Allocated, Commissioning -> New, Disk erasing -> Failed disk erasing; powered off.

    As MAAS, the status changes once the machine is off: a BMC that refuses the power-off ends
    the run in its failed status instead (Failed deployment, Failed commissioning, Failed disk
    erasing) with the BMC's reason, and the 503 names it. Meanwhile the machine keeps its
    status and deadline (a region dying there leaves it to `expire`); a Deploying machine's
    token goes at once, so the installer can no longer finish the deployment being aborted."""
    async with work.tx() as conn:
        machine = await acting_on(conn, system_id, actor, "abort")
        if machine["status"] not in ABORTED_TO:
            raise Conflict(
                f"Cannot abort in current state: node {system_id} is in state {LABELS.get(machine['status'])}."
            )
        request, action, _ = ABORT_EVENTS[machine["status"]]
        await events.record(conn, machine, request, comment, action=action, username=actor.username)
        if machine["status"] == Status.DEPLOYING:
            await conn.execute(delete(node_tokens).where(node_tokens.c.node_id == machine["id"]))
        if machine["bmc_id"] is None:  # manual power: nothing to wait for
            await _aborted(conn, machine)
    if machine["bmc_id"] is not None:
        try:
            await power.run(work, rpc_server, system_id, "off")
        except power.PowerFailed as exc:
            async with work.tx() as conn:
                reason = f"{ABORT_FAILED[machine['status']]} Powering it off failed: {exc.detail}"
                await fail(conn, system_id, machine["status"], reason)
            raise
        async with work.tx() as conn:
            current = await machines.get_machine(conn, system_id, lock=True)
            if current["status"] == machine["status"]:  # else it moved on (e.g. timed out) meanwhile
                await _aborted(conn, current)
    async with work.tx() as conn:
        return await machines.show_machine(conn, system_id)


async def _aborted(conn: AsyncConnection, machine: Row) -> None:
    done = ABORT_EVENTS[machine["status"]][2]
    await set_status(conn, machine, ABORTED_TO[machine["status"]], status_event=done, status_expires=None, netboot=True)
    await end_run(conn, machine)


async def mark_broken(conn: AsyncConnection, system_id: str, actor: User, comment: str) -> machines.Machines:
    machine = await acting_on(conn, system_id, actor, "mark_broken")
    await events.record(
        conn, machine, "REQUEST_NODE_MARK_BROKEN", comment, action="mark broken", username=actor.username
    )
    await set_status(
        conn,
        machine,
        Status.BROKEN,
        comment,
        previous_status=machine["status"],
        error_description=comment,
        status_expires=None,
    )
    return await machines.show_machine(conn, system_id)


async def mark_fixed(conn: AsyncConnection, system_id: str, actor: User, comment: str) -> machines.Machines:
    machine = await acting_on(conn, system_id, actor, "mark_fixed")
    if machine["status"] != Status.BROKEN:
        raise Conflict("Can't mark a non-broken node as 'Ready'.")
    back = Status.DEPLOYED if machine["previous_status"] == Status.DEPLOYED else Status.READY
    extra: dict[str, Any] = {} if back == Status.DEPLOYED else {"osystem": "", "distro_series": "", "hwe_kernel": None}
    await events.record(conn, machine, "REQUEST_NODE_MARK_FIXED", comment, action="mark fixed", username=actor.username)
    await set_status(conn, machine, back, previous_status=None, error_description="", **extra)
    return await machines.show_machine(conn, system_id)


# -- lock, owner data --------------------------------------------------------------------------------


async def lock(conn: AsyncConnection, system_id: str, actor: User, comment: str) -> machines.Machines:
    machine = await acting_on(conn, system_id, actor, "lock")
    if machine["locked"]:
        raise Conflict("Machine is already locked")
    if machine["status"] not in (Status.DEPLOYED, Status.DEPLOYING):
        raise Conflict("Can't lock, node is not deployed or deploying")
    await conn.execute(update(nodes).where(nodes.c.id == machine["id"]).values(locked=True, updated=func.now()))
    await events.record(conn, machine, "REQUEST_NODE_LOCK", comment, action="lock", username=actor.username)
    return await machines.show_machine(conn, system_id)


async def unlock(conn: AsyncConnection, system_id: str, actor: User, comment: str) -> machines.Machines:
    machine = await acting_on(conn, system_id, actor, "unlock")
    if not machine["locked"]:
        raise Conflict("Machine is not locked")
    await conn.execute(update(nodes).where(nodes.c.id == machine["id"]).values(locked=False, updated=func.now()))
    await events.record(conn, machine, "REQUEST_NODE_UNLOCK", comment, action="unlock", username=actor.username)
    return await machines.show_machine(conn, system_id)


MAX_OWNER_DATA_KEYS = 1000
MAX_OWNER_DATA_TEXT = 64 * 1024


def merged_owner_data(current: dict[str, str], given: dict[str, str]) -> dict[str, str]:
    """Every key given is set; an empty value deletes the key (MAAS). 400 names a bad key."""
    out = dict(current)
    for key, value in given.items():
        if not key or len(key) > 255 or "\x00" in key or "\x00" in value:
            raise Invalid.field(key or "key", "Keys are 1 to 255 characters, without NUL.")
        if len(value) > MAX_OWNER_DATA_TEXT:
            raise Invalid.field(key, f"Values are at most {MAX_OWNER_DATA_TEXT} characters.")
        if value == "":
            out.pop(key, None)
        else:
            out[key] = value
    if len(out) > MAX_OWNER_DATA_KEYS:
        raise Invalid.field("owner_data", f"At most {MAX_OWNER_DATA_KEYS} keys.")
    return out


async def set_owner_data(
    conn: AsyncConnection, system_id: str, actor: User, given: dict[str, str]
) -> machines.Machines:
    machine = await acting_on(conn, system_id, actor, "set_owner_data")
    data = merged_owner_data(dict(machine["owner_data"] or {}), given)
    await conn.execute(update(nodes).where(nodes.c.id == machine["id"]).values(owner_data=data, updated=func.now()))
    return await machines.show_machine(conn, system_id)


# -- timeouts ----------------------------------------------------------------------------------------


async def renew_deadline(conn: AsyncConnection, node_id: int) -> None:
    """Sign of life from a machine in a timed status (a PXE boot, an installer report): its
    deadline starts again, as MAAS renews status_expires."""
    await conn.execute(
        update(nodes)
        .where(nodes.c.id == node_id, nodes.c.status_timeout.is_not(None), nodes.c.status_expires.is_not(None))
        .values(status_expires=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, nodes.c.status_timeout))
    )


async def expire(conn: AsyncConnection) -> list[str]:
    """Machines past their deadline in a timed status: its failed status, with MAAS's words."""
    timed = sorted(TIMED)  # Deploying, Releasing, Disk erasing, Entering and Exiting rescue mode
    found = (
        await conn.execute(
            select(nodes.c.system_id, nodes.c.status, nodes.c.status_timeout)
            .where(nodes.c.status.in_(timed), nodes.c.status_expires < func.now())
            .with_for_update(skip_locked=True)
        )
    ).all()
    failed = []
    for row in found:
        allowed = timedelta(seconds=row.status_timeout or 0)
        if await fail(conn, row.system_id, row.status, timed_out_message(row.status, allowed)):
            failed.append(row.system_id)
    return failed
