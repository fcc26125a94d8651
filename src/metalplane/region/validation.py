"""The one validation layer: every value a client sends is checked here, before it costs anything.

The MAAS API (`region/api/params.py` reads request arguments through it), the
metadata API and the web UI all use these functions, and services use them for
the rules a value must follow wherever it comes from. They are pure: no I/O.

Each `check_*` function returns the value in its normal form or raises
`Invalid.field(field, reason)` with MAAS's words (Django's where MAAS relies on
Django), so a caller never composes a message. Limits follow what PostgreSQL
and MAAS's models accept: a value that passes cannot make the database fail.

Small pieces other code may want on their own: `as_id` (an id in PostgreSQL's
range, or None), `parse_ip` (None instead of an error), the message texts and
the limits.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from metalplane.region.errors import Invalid

# -- limits ------------------------------------------------------------------------------

PG_INT_MIN = -(2**31)
PG_INT_MAX = 2**31 - 1  # PostgreSQL `integer`: every id and count column
PG_BIGINT_MAX = 2**63 - 1  # sizes in bytes
MAX_TEXT = 65_536  # any text value without a narrower limit (a description, a comment)
MAX_LARGE_TEXT = 2 * 1024 * 1024  # file-like text (a script, user data): bounded by the body limit
MAX_LIST = 1_000  # values of one repeated parameter, items of one list
MAX_PATH_PART = 256  # a {system_id}, {name}, {username}... in a URL (MAAS's longest names: 256)

# Parameters whose values are documents rather than words: only the body limit bounds them.
LARGE_FIELDS = frozenset(
    {
        "content",
        "user_data",
        "script",
        "data",
        "value",
        "key",
        "certificate",
        "power_parameters",
        "config",
        "definition",
    }
)

# -- messages (MAAS's / Django's, word for word) --------------------------------------------

NUL = "Null characters are not allowed."
REQUIRED = "This field is required."
WHOLE_NUMBER = "Enter a whole number."
INVALID_VALUE = "Enter a valid value."
INVALID_IP = "Enter a valid IPv4 or IPv6 address."
INVALID_EMAIL = "Enter a valid email address."
INVALID_USERNAME = "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."
NOT_TEXT = "Enter valid text (UTF-8, no control characters)."
CIDR_FORMAT = "Required format: <network>/<prefixlen>."


def too_long(limit: int, length: int) -> str:
    return f"Ensure this value has at most {limit} characters (it has {length})."


def not_a_choice(value: object) -> str:
    return f"Select a valid choice. {value} is not one of the available choices."


def at_least(limit: int) -> str:
    return f"Ensure this value is greater than or equal to {limit}."


def at_most(limit: int) -> str:
    return f"Ensure this value is less than or equal to {limit}."


def not_found(model: str) -> str:
    """MAAS's 404 text for a missing object of `model` ("Fabric", "VLAN", ...)."""
    return f"No {model} matches the given query."


# -- text -------------------------------------------------------------------------------------

# C0 controls and DEL: never part of a word (a key, an id, a name in a URL).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def text_problem(value: str, max_length: int | None = MAX_TEXT) -> str | None:
    """Why `value` cannot be stored as text, or None. PostgreSQL refuses NUL and
    text that is not UTF-8 (a lone surrogate from a JSON "\\ud800" escape)."""
    if "\x00" in value:
        return NUL
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return NOT_TEXT
    if max_length is not None and len(value) > max_length:
        return too_long(max_length, len(value))
    return None


def check_text(value: str, field: str, max_length: int | None = MAX_TEXT, required: bool = False) -> str:
    problem = text_problem(value, max_length)
    if problem:
        raise Invalid.field(field, problem)
    if required and not value.strip():
        raise Invalid.field(field, REQUIRED)
    return value


def default_max_length(field: str) -> int:
    """The cap for a parameter read without an explicit one."""
    return MAX_LARGE_TEXT if field in LARGE_FIELDS else MAX_TEXT


def check_word(value: str, field: str, max_length: int = MAX_PATH_PART) -> str:
    """A short single-line token (a key, an id, a name used for lookup only)."""
    check_text(value, field, max_length)
    if _CONTROL.search(value):
        raise Invalid.field(field, NOT_TEXT)
    return value


def check_list(values: Sequence[Any], field: str, max_items: int = MAX_LIST) -> Sequence[Any]:
    if len(values) > max_items:
        raise Invalid.field(field, f"Ensure this list has at most {max_items} items (it has {len(values)}).")
    return values


# -- numbers and ids ---------------------------------------------------------------------------

_INT = re.compile(r"^\s*[-+]?\d+\s*$")


def check_int(value: str | int, field: str, min_value: int | None = None, max_value: int | None = None) -> int:
    """A whole number, within [min_value, max_value] and always within PostgreSQL's integer."""
    if isinstance(value, bool):
        raise Invalid.field(field, WHOLE_NUMBER)
    if isinstance(value, int):
        number = value
    else:
        if not _INT.match(value) or len(value) > 40:
            raise Invalid.field(field, WHOLE_NUMBER)
        number = int(value)
    low = PG_INT_MIN if min_value is None else max(min_value, PG_INT_MIN)
    high = PG_INT_MAX if max_value is None else min(max_value, PG_INT_MAX)
    if number < low:
        raise Invalid.field(field, at_least(low))
    if number > high:
        raise Invalid.field(field, at_most(high))
    return number


def check_size(value: str | int, field: str) -> int:
    """A size in bytes: 0 .. PostgreSQL's bigint."""
    if isinstance(value, str) and (not _INT.match(value) or len(value) > 40):
        raise Invalid.field(field, WHOLE_NUMBER)
    number = int(value)
    if number < 0:
        raise Invalid.field(field, at_least(0))
    if number > PG_BIGINT_MAX:
        raise Invalid.field(field, at_most(PG_BIGINT_MAX))
    return number


def as_id(value: object) -> int | None:
    """`value` as a database id (decimal digits, 0 .. 2^31-1), or None when it cannot be one.

    For lookups: an id out of range names no object, so the caller answers
    "not found" (404) or "not a valid choice" (400) without asking PostgreSQL."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= PG_INT_MAX else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    number = int(text)
    return number if number <= PG_INT_MAX else None


def check_path_part(value: str) -> bool:
    """Whether a URL part ({system_id}, {name}, ...) can name anything at all."""
    return 0 < len(value) <= MAX_PATH_PART and text_problem(value, None) is None and not _CONTROL.search(value)


def check_document(value: Any, field: str, max_depth: int = 32) -> Any:
    """A JSON value PostgreSQL's jsonb stores: text without NUL, finite numbers, bounded
    nesting (json.loads takes NaN, Infinity and "\\u0000", which jsonb refuses)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise Invalid.field(field, f"Nested deeper than {max_depth} levels.")
        if isinstance(item, str):
            if text_problem(item, None):
                raise Invalid.field(field, text_problem(item, None) or NOT_TEXT)
        elif isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                raise Invalid.field(field, "Numbers must be finite.")
        elif isinstance(item, dict):
            stack.extend((k, depth + 1) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return value


def check_choice(value: str, field: str, choices: Iterable[str], message: str | None = None) -> str:
    if value not in set(choices):
        raise Invalid.field(field, message % {"value": value} if message else not_a_choice(value))
    return value


# -- addresses ---------------------------------------------------------------------------------

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_ip(value: object) -> IP | None:
    """An address PostgreSQL's inet stores as given, or None. Python accepts an IPv6
    zone id (`fe80::1%eth0`) that inet refuses, so a '%' is refused here."""
    if not isinstance(value, str) or "%" in value or len(value) > 64 or text_problem(value, None):
        return None
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def check_ip(value: str, field: str, version: int | None = None, message: str = INVALID_IP) -> str:
    address = parse_ip(value)
    if address is None or (version is not None and address.version != version):
        raise Invalid.field(field, message)
    return str(address)


def parse_network(value: object, prefix_required: bool = True) -> Network | None:
    """A network as `cidr` stores it (host bits dropped), or None; zone ids refused.
    Without `prefix_required` a bare address is its own /32 or /128."""
    if (
        not isinstance(value, str)
        or "%" in value
        or len(value) > 64
        or text_problem(value, None)
        or (prefix_required and "/" not in value)
    ):
        return None
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return None


def check_cidr(value: str, field: str = "cidr") -> Network:
    network = parse_network(value)
    if network is None:
        raise Invalid.field(field, CIDR_FORMAT)
    return network


# MAAS's accepted input forms: aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff
# (one-digit groups allowed in the first two, as MAAS allows). Matched lower-cased.
_MAC_FORMS = re.compile(
    r"^(?:(?:[0-9a-f]{1,2}:){5}[0-9a-f]{1,2}|(?:[0-9a-f]{1,2}-){5}[0-9a-f]{1,2}"
    r"|(?:[0-9a-f]{3,4}\.){2}[0-9a-f]{3,4})$"
)


def normalise_mac(value: str) -> str | None:
    """aa:bb:cc:dd:ee:ff (lower case), or None when `value` is not a MAC in a form MAAS accepts."""
    text = value.strip().lower() if isinstance(value, str) else ""
    if not _MAC_FORMS.match(text):
        return None
    if "." in text:
        digits = "".join(group.zfill(4) for group in text.split("."))
        if len(digits) != 12:
            return None
        return ":".join(digits[i : i + 2] for i in range(0, 12, 2))
    return ":".join(group.zfill(2) for group in re.split(r"[:-]", text))


def check_mac(value: str, field: str = "mac_address") -> str:
    mac = normalise_mac(value)
    if mac is None:
        raise Invalid.field(field, f"'{shown(value)}' is not a valid MAC address.")
    return mac


def check_macs(values: Iterable[object], field: str = "mac_addresses", message: str | None = None) -> list[str]:
    """Every MAC of a list (blank entries skipped), normalised; a list of strings is required."""
    out: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise Invalid.field(field, message or f"'{shown(str(value))}' is not a valid MAC address.")
        if not value.strip():
            continue
        mac = normalise_mac(value)
        if mac is None:
            raise Invalid.field(field, message or f"'{shown(value)}' is not a valid MAC address.")
        out.append(mac)
    check_list(out, field)
    return out


def shown(value: str, limit: int = 80) -> str:
    """A value quoted in a message, cut so a huge value cannot make a huge answer."""
    return value if len(value) <= limit else value[:limit] + "..."


# -- names ---------------------------------------------------------------------------------------

_LABEL_CHARS = re.compile(r"^[a-zA-Z0-9-]*$")


def hostname_problem(name: str) -> str | None:
    """MAAS's RFC 952/1123 hostname rule (a name may carry its domain), or None."""
    if len(name) > 255:
        return "Hostname is too long.  Maximum allowed is 255 characters."
    host = name.split(".")[0]
    if "_" in host:
        return f"Host label cannot contain underscore: {shown(host)!r}."
    return domain_problem(name)


def domain_problem(name: str) -> str | None:
    if len(name) > 255:
        return "Hostname is too long.  Maximum allowed is 255 characters."
    for label in name.split("."):
        if not label:
            return "DNS name contains an empty label."
        if len(label) > 63:
            return f"Label is too long: {shown(label)!r}.  Maximum allowed is 63 characters."
        if label.startswith("-") or label.endswith("-"):
            return f"Label cannot start or end with hyphen: {shown(label)!r}."
        if not _LABEL_CHARS.match(label):
            return f"Label contains disallowed characters: {shown(label)!r}."
    return None


def check_hostname(value: str, field: str = "hostname") -> str:
    check_text(value, field, None)
    problem = hostname_problem(value)
    if problem:
        raise Invalid.field(field, problem)
    return value


@dataclass(frozen=True)
class NameRule:
    """A model's name rule in MAAS: a pattern, a max_length and the message for a mismatch."""

    pattern: re.Pattern[str]
    max_length: int
    message: str = INVALID_VALUE  # may use {value}


_MODEL_NAME = re.compile(r"^\w[ \w-]*$")  # MAAS's MODEL_NAME_VALIDATOR (\w is Unicode-aware)
NAME_RULES: dict[str, NameRule] = {
    "zone": NameRule(_MODEL_NAME, 256),
    "resource_pool": NameRule(_MODEL_NAME, 256),
    "vlan": NameRule(_MODEL_NAME, 256),
    "fabric_class": NameRule(_MODEL_NAME, 256),
    "fabric": NameRule(re.compile(r"^[\w-]+$"), 256, "Invalid fabric name: {value}."),
    "space": NameRule(re.compile(r"^[\w-]+$"), 256, "Invalid space name: {value}."),
    "subnet": NameRule(re.compile(r"^[.: \w/-]+$"), 255),
    "tag": NameRule(re.compile(r"^[a-zA-Z0-9_-]+$"), 256),
    "interface": NameRule(
        re.compile(r"^[\w\-_.:]{1,15}$"),
        255,
        "The interface name must be 1 to 15 characters long and can only contain alphanumeric "
        "characters, hyphens ('-'), underscores ('_'), periods ('.'), and colons (':').",
    ),
}

# MAAS's model max_length for free-text fields (maas_wire.md); others get MAX_TEXT.
MAX_LENGTHS: dict[str, int] = {
    "node.hostname": 255,
    "node.architecture": 31,
    "node.min_hwe_kernel": 31,
    "node.hwe_kernel": 31,
    "node.osystem": 255,
    "node.distro_series": 255,
    "node.agent_name": 255,
    "node.error": 255,
    "node.license_key": 30,
    "node.default_user": 32,
    "node.hardware_uuid": 36,
    "iprange.comment": 255,
    "bmc.power_type": 10,
    "bmc.name": 255,
    "config.name": 255,
    "boot_resource.name": 255,
    "boot_resource.architecture": 255,
    "interface.vendor": 255,
    "user.username": 150,
    "user.email": 254,
    "sshkey.auth_id": 255,
    "token.name": 255,
    "event.description": 255,
}


def check_name(kind: str, value: str, field: str = "name") -> str:
    """A name under MAAS's rule for `kind` (a key of NAME_RULES)."""
    rule = NAME_RULES[kind]
    check_text(value, field, None)
    if len(value) > rule.max_length:
        raise Invalid.field(field, too_long(rule.max_length, len(value)))
    if not rule.pattern.match(value):
        raise Invalid.field(field, rule.message.format(value=shown(value)))
    return value


def check_max(key: str, value: str, field: str | None = None) -> str:
    """Free text under MAAS's max_length for `key` ("iprange.comment")."""
    return check_text(value, field or key.partition(".")[2], MAX_LENGTHS.get(key, MAX_TEXT))


_USERNAME = re.compile(r"^[\w.@+-]+\Z")


def check_username(value: str, field: str = "username") -> str:
    check_text(value, field, MAX_LENGTHS["user.username"], required=True)
    if not _USERNAME.match(value):
        raise Invalid.field(field, INVALID_USERNAME)
    return value


# Django's EmailValidator, in short: a dot-atom or quoted local part, a domain of DNS
# labels with a letter TLD (or "localhost"), or an address literal in brackets.
_EMAIL_USER = re.compile(
    r"(^[-!#$%&'*+/=?^_`{}|~0-9A-Z]+(\.[-!#$%&'*+/=?^_`{}|~0-9A-Z]+)*\Z"
    r'|^"([\001-\010\013\014\016-\037!#-\[\]-\177]|\\[\001-\011\013\014\016-\177])*"\Z)',
    re.IGNORECASE,
)
_EMAIL_DOMAIN = re.compile(r"((?:[A-Z0-9](?:[A-Z0-9-]{0,61}[A-Z0-9])?\.)+)(?:[A-Z0-9-]{2,63}(?<!-))\Z", re.IGNORECASE)


def email_problem(value: str) -> str | None:
    if not value or "@" not in value or len(value) > 320:
        return INVALID_EMAIL
    user, _, domain = value.rpartition("@")
    if not _EMAIL_USER.match(user):
        return INVALID_EMAIL
    if domain == "localhost" or _EMAIL_DOMAIN.match(domain):
        return None
    if domain.startswith("[") and domain.endswith("]") and parse_ip(domain[1:-1].removeprefix("IPv6:")):
        return None
    try:
        if _EMAIL_DOMAIN.match(domain.encode("idna").decode("ascii")):
            return None
    except UnicodeError:
        pass
    return INVALID_EMAIL


def check_email(value: str, field: str = "email", required: bool = False) -> str:
    check_text(value, field, MAX_LENGTHS["user.email"], required=required)
    if value and email_problem(value):
        raise Invalid.field(field, INVALID_EMAIL)
    return value
