"""Power types and their parameters: the schema both the region and the rack use.

Part of the region-rack contract (the region validates API input against it and
sends the parameters in `PowerAction` and `GetPowerTargets`; the rack's drivers
run them), so it lives in `rpc/`. Pure and import-light on purpose (standard
library only, no I/O).

Parameter names are MAAS's (``power_address``, ``power_user``, ``power_pass``,
``cipher_suite_id``, ``privilege_level``, ``node_id``, ``power_on_uri``...).
Values are strings, as MAAS stores them. A parameter marked ``secret`` (the
passwords, BMC keys and tokens) must never appear in a log line or an error
message: use :func:`redact` for parameters and :func:`scrub` for text.

    problems = validate_power_parameters("ipmi", {"power_address": "10.0.0.5"})
    # [] or [Problem(field="...", reason="...")]
    params = with_defaults("ipmi", {"power_address": "10.0.0.5", ...})
    bmc_identity("ipmi", params)     # "ipmi:10.0.0.5:623:admin" (one BMC, one lock)
    describe_power_types()           # MAAS-shaped list of dicts
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from metalplane.hostport import format_host_port, split_host_port

REDACTED = "********"

#: The three answers a power query can give.
POWER_STATES = ("on", "off", "unknown")


class Problem(NamedTuple):
    """One thing wrong with a set of power parameters."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


@dataclass(frozen=True)
class PowerField:
    """One power parameter.

    field_type is MAAS's: string, password, choice, multiple_choice,
    ip_address (an address or host name, optionally with a port), url, regex,
    mac_address. scope is "bmc" (shared by every machine behind the BMC) or
    "node" (per machine, e.g. the Redfish system id).
    """

    name: str
    label: str
    field_type: str = "string"
    required: bool = False
    default: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    scope: str = "bmc"
    secret: bool = False

    def describe(self) -> dict[str, Any]:
        default: Any = self.default
        if self.field_type == "multiple_choice":
            default = [v for v in self.default.split(",") if v]
        return {
            "name": self.name,
            "label": self.label,
            "required": self.required,
            "field_type": self.field_type,
            "choices": [list(c) for c in self.choices],
            "default": default,
            "scope": self.scope,
            "secret": self.secret,
        }


@dataclass(frozen=True)
class PowerType:
    """A power type: its name, its parameters and what the rack needs to run it."""

    name: str
    description: str
    fields: tuple[PowerField, ...]
    queryable: bool = True
    can_set_boot_device: bool = False
    #: (executable, Debian package) pairs the rack needs for this type.
    packages: tuple[tuple[str, str], ...] = ()
    _by_name: dict[str, PowerField] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_name.update({f.name: f for f in self.fields})

    def get_field(self, name: str) -> PowerField | None:
        return self._by_name.get(name)

    @property
    def secrets(self) -> frozenset[str]:
        return frozenset(f.name for f in self.fields if f.secret)

    def describe(self, missing_packages: Iterable[str] = ()) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "fields": [f.describe() for f in self.fields],
            "queryable": self.queryable,
            "chassis": False,
            "can_probe": False,
            "can_set_boot_order": self.can_set_boot_device,
            "missing_packages": sorted(set(missing_packages)),
        }


def choice(name: str, label: str, default: str, *choices: tuple[str, str]) -> PowerField:
    """A "choice" field: its default value and its (value, label) pairs, in order."""
    return PowerField(name, label, "choice", default=default, choices=choices)


# --------------------------------------------------------------------------- the types

IPMI_WORKAROUNDS = (
    ("opensesspriv", "Opensesspriv"),
    ("authcap", "Authcap"),
    ("idzero", "Idzero"),
    ("unexpectedauth", "Unexpectedauth"),
    ("forcepermsg", "Forcepermsg"),
    ("endianseq", "Endianseq"),
    ("intel20", "Intel20"),
    ("supermicro20", "Supermicro20"),
    ("sun20", "Sun20"),
    ("nochecksumcheck", "Nochecksumcheck"),
    ("integritycheckvalue", "Integritycheckvalue"),
    ("ipmiping", "Ipmiping"),
    ("none", "None"),
)

_YES_NO = (("n", "No"), ("y", "Yes"))

IPMI = PowerType(
    name="ipmi",
    description="IPMI",
    fields=(
        choice("power_driver", "Power driver", "LAN_2_0", ("LAN", "LAN [IPMI 1.5]"), ("LAN_2_0", "LAN_2_0 [IPMI 2.0]")),
        choice(
            "power_boot_type",
            "Power boot type",
            "auto",
            ("auto", "Automatic"),
            ("legacy", "Legacy boot"),
            ("efi", "EFI boot"),
        ),
        PowerField("power_address", "IP address", "ip_address", required=True),
        PowerField("power_user", "Power user"),
        PowerField("power_pass", "Power password", "password", secret=True),
        PowerField("k_g", "K_g BMC key", "password", secret=True),
        choice(
            "cipher_suite_id",
            "Cipher suite ID",
            "3",
            ("17", "17 - HMAC-SHA256::HMAC_SHA256_128::AES-CBC-128"),
            ("3", "3 - HMAC-SHA1::HMAC-SHA1-96::AES-CBC-128"),
            ("", "client default"),
            ("8", "8 - HMAC-MD5::HMAC-MD5-128::AES-CBC-128"),
            ("12", "12 - HMAC-MD5::MD5-128::AES-CBC-128"),
        ),
        choice(
            "privilege_level",
            "Privilege level",
            "OPERATOR",
            ("USER", "User"),
            ("OPERATOR", "Operator"),
            ("ADMIN", "Administrator"),
        ),
        PowerField(
            "workaround_flags",
            "Workaround flags (FreeIPMI)",
            "multiple_choice",
            default="opensesspriv",
            choices=IPMI_WORKAROUNDS,
        ),
        choice("power_off_mode", "Power off mode", "hard", ("hard", "Hard"), ("soft", "Soft (ACPI)")),
        # metalplane extension: which client the rack runs against this BMC.
        choice("ipmi_client", "IPMI client", "ipmitool", ("ipmitool", "ipmitool"), ("freeipmi", "FreeIPMI ipmipower")),
        PowerField("mac_address", "Power MAC", "mac_address", scope="node"),
    ),
    can_set_boot_device=True,
    packages=(("ipmitool", "ipmitool"), ("ipmipower", "freeipmi-tools")),
)

REDFISH = PowerType(
    name="redfish",
    description="Redfish",
    fields=(
        PowerField("power_address", "Redfish address", "ip_address", required=True),
        PowerField("power_user", "Redfish user"),
        PowerField("power_pass", "Redfish password", "password", secret=True),
        PowerField("node_id", "Node ID (Redfish system id)", scope="node"),
        choice("power_verify_ssl", "Verify the BMC's TLS certificate", "n", *_YES_NO),
    ),
    can_set_boot_device=True,
)

WEBHOOK = PowerType(
    name="webhook",
    description="Webhook",
    fields=(
        PowerField("power_on_uri", "URI to power on the node", "url", required=True),
        PowerField("power_off_uri", "URI to power off the node", "url", required=True),
        PowerField("power_query_uri", "URI to query the node's power status", "url"),
        PowerField("power_on_regex", "Regex to confirm the node is on", "regex", default=r"status.*\:.*running"),
        PowerField("power_off_regex", "Regex to confirm the node is off", "regex", default=r"status.*\:.*stopped"),
        PowerField("power_user", "Power user"),
        PowerField("power_pass", "Power password", "password", secret=True),
        PowerField("power_token", "Power token (Bearer)", "password", secret=True),
        choice("power_verify_ssl", "Verify the server's TLS certificate", "n", *_YES_NO),
    ),
)

MANUAL = PowerType(name="manual", description="Manual", fields=(), queryable=False)

POWER_TYPES: dict[str, PowerType] = {t.name: t for t in (IPMI, REDFISH, WEBHOOK, MANUAL)}


def get_power_type(name: str) -> PowerType:
    """The power type called `name`; KeyError names the known ones."""
    try:
        return POWER_TYPES[name]
    except KeyError:
        raise KeyError(f"unknown power type {name!r}; known: {', '.join(sorted(POWER_TYPES))}") from None


def describe_power_types(missing_packages: Mapping[str, Iterable[str]] | None = None) -> list[dict[str, Any]]:
    """MAAS-shaped description of every power type (``describe_power_types``).

    missing_packages: {power type: [package, ...]} the rack reported missing.
    """
    missing_packages = missing_packages or {}
    return [t.describe(missing_packages.get(t.name, ())) for t in POWER_TYPES.values()]


# --------------------------------------------------------------------------- addresses

_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$")


def redfish_base_url(address: str) -> str:
    """The BMC's base URL from a Redfish power_address ("host[:port]" or "http[s]://host[:port]").

    Without a scheme, HTTPS (as MAAS). Raises ValueError with a reason.
    """
    address = address.strip()
    if "://" in address:
        parts = urlsplit(address)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"scheme must be http or https, not {parts.scheme!r}")
        if parts.username or parts.password:
            raise ValueError("put the credentials in power_user/power_pass, not in the address")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("the address takes no path (the Redfish root is /redfish/v1)")
        scheme, netloc = parts.scheme, parts.netloc
    else:
        scheme, netloc = "https", address
    default_port = 443 if scheme == "https" else 80
    host, port = split_host_port(netloc, default_port)
    return f"{scheme}://{format_host_port(host, port, default_port)}"


def check_http_url(value: str) -> str:
    """`value` if it is an http(s) URL with a host; ValueError otherwise."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("the URL has no host")
    try:
        _ = parts.port  # raises on a bad port
    except ValueError as exc:
        raise ValueError(f"bad port: {exc}") from None
    return value.strip()


def url_origin(value: str) -> str:
    """scheme://host[:port] of a URL, without credentials, path or query (safe to show)."""
    parts = urlsplit(value)
    host = parts.hostname or "?"
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}" + (f":{parts.port}" if parts.port else "")


# --------------------------------------------------------------------------- validation


def _check_value(ptype: PowerType, f: PowerField, value: str) -> str | None:
    """Why `value` is not acceptable for `f`, or None."""
    if f.field_type == "choice":
        allowed = [c[0] for c in f.choices]
        if value not in allowed:
            return f"must be one of {', '.join(repr(a) for a in allowed)}"
    elif f.field_type == "multiple_choice":
        choices = {c[0] for c in f.choices}
        bad = [v for v in value.split(",") if v and v not in choices]
        if bad:
            return f"unknown value(s) {', '.join(bad)}; allowed: {', '.join(sorted(choices))}"
    elif f.field_type == "ip_address" and value:
        try:
            if ptype.name == "redfish":
                redfish_base_url(value)
            else:
                split_host_port(value, 623)
        except ValueError as exc:
            return f"not a valid address: {exc}"
    elif f.field_type == "url" and value:
        try:
            check_http_url(value)
        except ValueError as exc:
            return str(exc)
    elif f.field_type == "regex":
        try:
            re.compile(value)
        except re.error as exc:
            return f"not a valid regular expression: {exc}"
    elif f.field_type == "mac_address" and value and not _MAC_RE.match(value):
        return "not a MAC address"
    if any(ch in value for ch in "\x00\n\r"):
        return "contains a NUL or line break"
    return None


def _as_text(value: object) -> str | None:
    if value is None:
        return ""
    if isinstance(value, bool):
        return None
    if isinstance(value, (str, int)):
        return str(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    return None


def validate_power_parameters(
    power_type: str, params: Mapping[str, object], *, allow_unknown: bool = False
) -> list[Problem]:
    """Everything wrong with `params` for `power_type` (empty list: valid). Pure.

    Checks: the type exists, required fields are given, choices, address and
    URL syntax, regexes compile, no unknown parameter (unless allow_unknown).
    Reasons never contain a secret's value.
    """
    try:
        ptype = get_power_type(power_type)
    except KeyError as exc:
        return [Problem("power_type", exc.args[0])]
    problems: list[Problem] = []
    for name, raw in params.items():
        f = ptype.get_field(name)
        if f is None:
            if not allow_unknown:
                problems.append(Problem(name, f"unknown parameter for power type {power_type}"))
            continue
        value = _as_text(raw)
        if value is None:
            problems.append(Problem(name, "must be a string"))
            continue
        reason = _check_value(ptype, f, value.strip() if not f.secret else value)
        if reason:
            problems.append(Problem(name, reason))
    for f in ptype.fields:
        if f.required and not (_as_text(params.get(f.name)) or "").strip():
            problems.append(Problem(f.name, "required"))
    if power_type == "webhook":
        token = _as_text(params.get("power_token")) or ""
        user = _as_text(params.get("power_user")) or ""
        if token and user:
            problems.append(Problem("power_token", "give either power_token or power_user/power_pass, not both"))
    return problems


def with_defaults(power_type: str, params: Mapping[str, object]) -> dict[str, str]:
    """`params` as strings (non-secrets stripped) with every missing field at its default.

    Unknown parameters are kept. Does not validate: call validate_power_parameters first.
    """
    ptype = get_power_type(power_type)
    out: dict[str, str] = {}
    for name, raw in params.items():
        value = _as_text(raw)
        value = "" if value is None else value
        f = ptype.get_field(name)
        out[name] = value if f is not None and f.secret else value.strip()
    for f in ptype.fields:
        if not out.get(f.name) and f.default:
            out[f.name] = f.default
        out.setdefault(f.name, "")
    return out


def secret_values(power_type: str, params: Mapping[str, object]) -> list[str]:
    """The values of `params`'s secret fields (to scrub them out of text)."""
    ptype = POWER_TYPES.get(power_type)
    names = ptype.secrets if ptype else frozenset(n for n in params if "pass" in n or "token" in n or n == "k_g")
    return [str(params[n]) for n in names if params.get(n)]


def redact(power_type: str, params: Mapping[str, object]) -> dict[str, object]:
    """A copy of `params` with every secret replaced by ``********`` (safe to log)."""
    ptype = POWER_TYPES.get(power_type)
    secret = ptype.secrets if ptype else frozenset()
    return {k: (REDACTED if (k in secret or "pass" in k or "token" in k) and v else v) for k, v in params.items()}


def scrub(text: str, secrets: Iterable[str], *, min_length: int = 4) -> str:
    """`text` with every occurrence of each secret (of at least min_length chars) replaced.

    Shorter secrets are left alone so that a one-letter password cannot turn a
    message to mush; the drivers never put a secret into a message anyway, this
    is a second line of defence against a BMC echoing one back.
    """
    for secret in sorted({s for s in secrets if s and len(s) >= min_length}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


# --------------------------------------------------------------------------- identity


def bmc_address(power_type: str, params: Mapping[str, object]) -> str | None:
    """How to name the BMC in a message ("10.0.0.5", "10.0.0.5:1623", "https://bmc1"); no secrets."""
    if power_type == "ipmi":
        raw = str(params.get("power_address") or "")
        try:
            host, port = split_host_port(raw, 623)
        except ValueError:
            return raw.strip() or None
        return format_host_port(host, port, 623)
    if power_type == "redfish":
        raw = str(params.get("power_address") or "")
        try:
            return redfish_base_url(raw)
        except ValueError:
            return raw.strip() or None
    if power_type == "webhook":
        for name in ("power_query_uri", "power_on_uri", "power_off_uri"):
            if params.get(name):
                return url_origin(str(params[name]))
        return None
    return None


def bmc_identity(power_type: str, params: Mapping[str, object]) -> str | None:
    """A key naming one BMC: type, address with port, and user; None for types without a BMC.

    E.g. "ipmi:10.0.0.5:623:admin", "redfish:https://10.0.0.6:443:root". Two
    machines with the same key share a BMC: the rack runs at most one call
    against it at a time, and its failures back off together. No secret in it.
    """
    if power_type not in POWER_TYPES:
        return None
    address: str | None
    try:
        if power_type == "ipmi":
            host, port = split_host_port(str(params.get("power_address") or ""), 623)
            address = format_host_port(host.lower(), port)
        elif power_type == "redfish":
            parts = urlsplit(redfish_base_url(str(params.get("power_address") or "")))
            port = parts.port or (443 if parts.scheme == "https" else 80)
            address = f"{parts.scheme}://{format_host_port(parts.hostname or '', port)}"
        else:
            address = bmc_address(power_type, params)
    except ValueError:
        return None
    if not address:
        return None
    return ":".join([power_type, address, str(params.get("power_user") or "")])
