"""What the ephemeral image reports to the metadata API, checked and bounded. Pure.

The metadata API is anonymous (enlist) or holds a machine's token (the rest):
nothing it is sent is trusted. Every value is checked for type and size before
anything is looked up or written, and a bad one is refused naming the field
(`Invalid`), so no input costs more than its bounded size and none can reach
the database in a form it refuses (NUL characters, integers past a column's
range). The shapes are docs/boot.md's "Ephemeral image <-> metadata API
contract".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeGuard

from metalplane.region import validation
from metalplane.region.errors import Invalid

MAX_MACS = 64  # NICs one machine reports
MAX_ITEMS = 256  # disks, interfaces, failed scripts
MAX_TEXT = 1024  # any string the image reports
MAX_DEPTH = 4  # nesting of the hardware facts
MAX_KEYS = 64  # keys of one reported object
MAX_SCRIPT_RESULTS = 256  # script results one commissioning run may post
MAX_SCRIPT_OUTPUT = 4 * 1024 * 1024  # what the image sends at most (head -c 4194304)
INT32_MAX = 2**31 - 1

ARCHITECTURE = re.compile(r"^[a-z0-9_-]{1,32}(/[a-z0-9_.+-]{1,32})?$")
BOOT_METHOD = re.compile(r"^[a-z0-9_.-]{1,32}$")
SCRIPT_NAME = re.compile(r"^[A-Za-z0-9._+-]{1,255}$")
EXIT_STATUS = re.compile(r"^-?[0-9]{1,3}$")  # ASCII digits only (str.isdigit takes other scripts' too)
HARDWARE_KEYS = ("cpu_model", "disks", "interfaces", "firmware", "kernel", "image", "memory_mib", "memory_physical_mib")
DEFAULT_ARCHITECTURE = "amd64/generic"


@dataclass(frozen=True)
class Enlistment:
    macs: list[str]  # normalised, unique, the boot NIC first
    architecture: str
    boot_method: str | None


@dataclass(frozen=True)
class Facts:
    cpu_count: int
    memory: int  # MiB installed
    architecture: str | None
    boot_method: str | None
    hardware: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    ok: bool
    failed_scripts: list[str]


def enlistment(report: dict[str, Any]) -> Enlistment:
    raw = report.get("mac_addresses")
    if not isinstance(raw, list) or not raw:
        raise Invalid.field("mac_addresses", "Expected a list of one or more MAC addresses.")
    if len(raw) > MAX_MACS:
        raise Invalid.field("mac_addresses", f"Expected at most {MAX_MACS} MAC addresses, got {len(raw)}.")
    macs: list[str] = []
    for value in raw:
        mac = validation.normalise_mac(value) if isinstance(value, str) and len(value) <= 32 else None
        if mac is None:
            shown = repr(value)[:40]
            raise Invalid.field(
                "mac_addresses", f"One or more MAC addresses is invalid. ({shown} is not a valid MAC address.)"
            )
        if mac not in macs:
            macs.append(mac)
    return Enlistment(macs, _architecture(report) or DEFAULT_ARCHITECTURE, _boot_method(report))


def facts(report: dict[str, Any]) -> Facts:
    cpu_count = report.get("cpu_count")
    if not _is_int(cpu_count) or not 1 <= cpu_count <= 65536:
        raise Invalid.field("cpu_count", "Expected a positive integer (at most 65536).")
    for key in ("memory_mib", "memory_physical_mib"):
        value = report.get(key)
        if value is not None and (not _is_int(value) or not 0 <= value <= INT32_MAX):
            raise Invalid.field(key, f"Expected an integer from 0 to {INT32_MAX}.")
    hardware = {key: report.get(key) for key in HARDWARE_KEYS}
    for key, value in hardware.items():
        _check_plain(value, key, 0)
    return Facts(cpu_count, _memory_mib(report), _architecture(report), _boot_method(report), hardware)


def outcome(report: dict[str, Any]) -> Outcome:
    result = report.get("result", "failed")
    if result not in ("ok", "failed"):
        raise Invalid.field("result", "Expected 'ok' or 'failed'.")
    failed = report.get("failed_scripts") or []
    if not isinstance(failed, list) or len(failed) > MAX_ITEMS:
        raise Invalid.field("failed_scripts", f"Expected a list of at most {MAX_ITEMS} script names.")
    names = []
    for name in failed:
        if not isinstance(name, str) or not SCRIPT_NAME.match(name):
            raise Invalid.field("failed_scripts", "Script names are 1-255 of A-Z a-z 0-9 . _ + -.")
        names.append(name)
    return Outcome(result == "ok" and not names, names)


def script_name(name: str) -> str:
    if not SCRIPT_NAME.match(name):
        raise Invalid.field("name", "Script names are 1-255 of A-Z a-z 0-9 . _ + -.")
    return name


def exit_status(raw: str | None) -> int | None:
    """The exit status a script result names (absent: unknown)."""
    if raw is None or raw == "":
        return None
    if not EXIT_STATUS.match(raw) or not -1 <= int(raw) <= 255:
        raise Invalid.field("exit_status", "Expected an integer from -1 to 255.")
    return int(raw)


def runtime(raw: str | None) -> int | None:
    """A script's runtime in seconds, as reported; absent or not a plain count: unknown."""
    if raw is None or not raw.isdigit() or len(raw) > 9:
        return None
    return int(raw)


def script_output(body: bytes) -> str:
    """Script output as text PostgreSQL stores (it refuses NUL characters)."""
    return body[:MAX_SCRIPT_OUTPUT].decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _memory_mib(report: dict[str, Any]) -> int:
    """Installed memory: the physical size the image measured when it could, else MemTotal."""
    for key in ("memory_physical_mib", "memory_mib"):
        value = report.get(key)
        if _is_int(value) and value > 0:
            return int(value)
    return 0


def _architecture(report: dict[str, Any]) -> str | None:
    value = _optional_text(
        report, "architecture", ARCHITECTURE, "Architecture not recognised (expected e.g. amd64/generic)."
    )
    return value if value is None or "/" in value else f"{value}/generic"


def _boot_method(report: dict[str, Any]) -> str | None:
    return _optional_text(report, "boot_method", BOOT_METHOD, "Expected a boot method such as pxe, ipxe or uefi.")


def _optional_text(report: dict[str, Any], key: str, pattern: re.Pattern[str], reason: str) -> str | None:
    value = report.get(key)
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not pattern.match(value):
        raise Invalid.field(key, reason)
    return value


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_plain(value: Any, field: str, depth: int) -> None:
    """JSON the database stores as is: bounded in size and depth, no NUL characters."""
    if depth > MAX_DEPTH:
        raise Invalid.field(field, f"Nested more than {MAX_DEPTH} levels deep.")
    if isinstance(value, str):
        if len(value) > MAX_TEXT or "\x00" in value:
            raise Invalid.field(field, f"Expected text of at most {MAX_TEXT} characters, without NUL characters.")
    elif isinstance(value, list):
        if len(value) > MAX_ITEMS:
            raise Invalid.field(field, f"Expected at most {MAX_ITEMS} items, got {len(value)}.")
        for item in value:
            _check_plain(item, field, depth + 1)
    elif isinstance(value, dict):
        if len(value) > MAX_KEYS:
            raise Invalid.field(field, f"Expected at most {MAX_KEYS} keys, got {len(value)}.")
        for key, item in value.items():
            if len(key) > 64 or "\x00" in key:
                raise Invalid.field(field, "Keys are at most 64 characters, without NUL characters.")
            _check_plain(item, field, depth + 1)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        raise Invalid.field(field, "Integers beyond 2^53 are not accepted.")
