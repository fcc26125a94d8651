"""MAAS's machine statuses: numbers, labels, allowed transitions, timeouts. Pure.

Facts from MAAS 3.7 (maascommon/enums/node.py NODE_STATUS, maasserver/node_status.py
NODE_TRANSITIONS and its status groups; research/maas_lifecycle.json). Every status
change a service makes goes through `require_transition`, which refuses what MAAS's
table does not allow with MAAS's 409 text.
"""

from __future__ import annotations

from datetime import timedelta
from enum import IntEnum

from metalplane.region.errors import Conflict


class Status(IntEnum):
    NEW = 0
    COMMISSIONING = 1
    FAILED_COMMISSIONING = 2
    MISSING = 3
    READY = 4
    RESERVED = 5
    DEPLOYED = 6
    RETIRED = 7
    BROKEN = 8
    DEPLOYING = 9
    ALLOCATED = 10
    FAILED_DEPLOYMENT = 11
    RELEASING = 12
    FAILED_RELEASING = 13
    DISK_ERASING = 14
    FAILED_DISK_ERASING = 15
    RESCUE_MODE = 16
    ENTERING_RESCUE_MODE = 17
    FAILED_ENTERING_RESCUE_MODE = 18
    EXITING_RESCUE_MODE = 19
    FAILED_EXITING_RESCUE_MODE = 20
    TESTING = 21
    FAILED_TESTING = 22


S = Status
LABELS: dict[int, str] = {
    S.NEW: "New",
    S.COMMISSIONING: "Commissioning",
    S.FAILED_COMMISSIONING: "Failed commissioning",
    S.MISSING: "Missing",
    S.READY: "Ready",
    S.RESERVED: "Reserved",
    S.DEPLOYED: "Deployed",
    S.RETIRED: "Retired",
    S.BROKEN: "Broken",
    S.DEPLOYING: "Deploying",
    S.ALLOCATED: "Allocated",
    S.FAILED_DEPLOYMENT: "Failed deployment",
    S.RELEASING: "Releasing",
    S.FAILED_RELEASING: "Releasing failed",
    S.DISK_ERASING: "Disk erasing",
    S.FAILED_DISK_ERASING: "Failed disk erasing",
    S.RESCUE_MODE: "Rescue mode",
    S.ENTERING_RESCUE_MODE: "Entering rescue mode",
    S.FAILED_ENTERING_RESCUE_MODE: "Failed to enter rescue mode",
    S.EXITING_RESCUE_MODE: "Exiting rescue mode",
    S.FAILED_EXITING_RESCUE_MODE: "Failed to exit rescue mode",
    S.TESTING: "Testing",
    S.FAILED_TESTING: "Failed testing",
}

# NODE_TRANSITIONS: status -> the statuses it may change to.
TRANSITIONS: dict[int, frozenset[int]] = {
    k: frozenset(v)
    for k, v in {
        S.NEW: (1, 3, 4, 7, 8, 17, 21),
        S.COMMISSIONING: (0, 2, 3, 4, 7, 8, 21),
        S.FAILED_COMMISSIONING: (1, 3, 7, 8, 17, 21),
        S.MISSING: (0, 1, 4, 8, 10, 17, 21),
        S.READY: (1, 3, 5, 7, 8, 10, 17, 21),
        S.RESERVED: (3, 4, 7, 8, 10, 12, 14, 17, 21),
        S.DEPLOYED: (3, 4, 8, 10, 12, 14, 17, 21),
        S.RETIRED: (0, 3, 4, 8, 17, 21),
        S.BROKEN: (1, 4, 6, 12, 14, 17, 21),
        S.DEPLOYING: (3, 4, 6, 8, 10, 11, 12, 14),
        S.ALLOCATED: (3, 4, 7, 8, 9, 12, 14, 17, 21),
        S.FAILED_DEPLOYMENT: (3, 4, 8, 10, 12, 14, 17, 21),
        S.RELEASING: (0, 3, 4, 5, 6, 8, 10, 11, 13, 15),
        S.FAILED_RELEASING: (4, 8, 12, 14, 21),
        S.DISK_ERASING: (4, 8, 12, 14, 15),
        S.FAILED_DISK_ERASING: (4, 8, 10, 12, 14, 17, 21),
        S.RESCUE_MODE: (8, 19, 21),
        S.ENTERING_RESCUE_MODE: (4, 6, 8, 16, 18, 19),
        S.FAILED_ENTERING_RESCUE_MODE: (8, 17, 19, 21),
        S.EXITING_RESCUE_MODE: (0, 2, 3, 4, 5, 6, 7, 8, 10, 11, 13, 15, 16, 18, 20, 22),
        S.FAILED_EXITING_RESCUE_MODE: (8, 19, 21),
        S.TESTING: (0, 1, 3, 4, 5, 6, 7, 8, 10, 11, 13, 15, 18, 20, 22),
        S.FAILED_TESTING: (1, 3, 4, 6, 8, 17, 21),
    }.items()
}

# A machine in one of these has been released to nobody yet: `release` applies.
RELEASABLE = frozenset(
    {
        S.ALLOCATED,
        S.RESERVED,
        S.BROKEN,
        S.DEPLOYING,
        S.DEPLOYED,
        S.FAILED_DEPLOYMENT,
        S.FAILED_DISK_ERASING,
        S.FAILED_RELEASING,
    }
)
# `release` of a machine already on its way back (or back) does nothing.
RELEASE_NOOP = frozenset({S.RELEASING, S.READY})
# MAAS's abort: what each abortable status becomes.
ABORTED_TO: dict[int, int] = {S.DISK_ERASING: S.FAILED_DISK_ERASING, S.COMMISSIONING: S.NEW, S.DEPLOYING: S.ALLOCATED}
FAILED_STATUS_OF: dict[int, int] = {
    S.COMMISSIONING: S.FAILED_COMMISSIONING,
    S.DEPLOYING: S.FAILED_DEPLOYMENT,
    S.RELEASING: S.FAILED_RELEASING,
    S.DISK_ERASING: S.FAILED_DISK_ERASING,
    S.ENTERING_RESCUE_MODE: S.FAILED_ENTERING_RESCUE_MODE,
    S.EXITING_RESCUE_MODE: S.FAILED_EXITING_RESCUE_MODE,
    S.TESTING: S.FAILED_TESTING,
}
# The statuses a region timer watches, and for how long: node_timeout minutes unless
# MAAS hard-codes it (Releasing and Exiting rescue mode: 5 minutes). Commissioning has
# its own setting (commissioning_timeout, services/commissioning.py).
HARD_TIMEOUTS = {S.RELEASING: timedelta(minutes=5), S.EXITING_RESCUE_MODE: timedelta(minutes=5)}
TIMED = frozenset({S.DEPLOYING, S.RELEASING, S.DISK_ERASING, S.ENTERING_RESCUE_MODE, S.EXITING_RESCUE_MODE})

# MAAS's failure texts.
INSTALLATION_FAILED = "Installation failed (refer to the installation log for more information)."
ERASE_FAILED = "Failed to erase disks."
RELEASE_FAILED = "Failed to release machine."
RESCUE_FAILED = "Failed to enter rescue mode."
EXIT_RESCUE_FAILED = "Failed to exit rescue mode."

# The statuses whose machine runs the ephemeral environment, which enrols for its token
# (services/enrolment.py): commissioning, the installer, the disk wipe, rescue mode.
ENROLLING = frozenset({S.COMMISSIONING, S.DEPLOYING, S.DISK_ERASING, S.ENTERING_RESCUE_MODE, S.RESCUE_MODE})
RESCUE_STATUSES = frozenset(
    {S.RESCUE_MODE, S.ENTERING_RESCUE_MODE, S.FAILED_ENTERING_RESCUE_MODE, S.FAILED_EXITING_RESCUE_MODE}
)


def rescue_previous(current: int, previous: int | None) -> int:
    """The status exit_rescue_mode returns to: the one before rescue mode, kept through a
    retry from a failed rescue status (MAAS's previous_status)."""
    if current in RESCUE_STATUSES:
        return S.READY if previous is None else previous
    return current


def exit_rescue_power(previous: int) -> str:
    """How leaving rescue mode powers the machine (MAAS's stop_rescue_mode): a Deployed machine
    is cycled to boot its disk again; any other is switched off."""
    return "cycle" if previous == S.DEPLOYED else "off"


def label(status: int) -> str:
    return LABELS.get(status, str(status))


def allowed(old: int, new: int) -> bool:
    return old == new or new in TRANSITIONS.get(old, frozenset())


def require_transition(old: int, new: int) -> None:
    """MAAS's NodeStateViolation (409) for a change its table does not allow."""
    if not allowed(old, new):
        raise Conflict(f"Invalid transition: {label(old)} -> {label(new)}.")


def timeout_for(status: int, node_timeout: timedelta) -> timedelta | None:
    """How long a machine may stay in `status` before the region fails it; None: forever."""
    if status not in TIMED:
        return None
    return HARD_TIMEOUTS.get(Status(status), node_timeout)


def timed_out_message(status: int, timeout: timedelta) -> str:
    """MAAS's status monitor's words (seconds for a deadline under a minute, which only
    the `timeout` option of deploy can set)."""
    seconds = int(timeout.total_seconds())
    amount = f"{seconds // 60} minutes" if seconds >= 60 else f"{seconds} seconds"
    return f"Node operation '{label(status)}' timed out after {amount}."
