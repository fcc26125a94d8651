"""MAAS's (Django's) rules for user names, e-mail addresses, SSH and SSL keys, as pure functions.

Each check returns the field errors ({} when fine) in MAAS's words, so a
service can refuse before it writes anything.
"""

from __future__ import annotations

import base64
import hashlib
import re
import warnings

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from metalplane.region.errors import FieldErrors

USERNAME_MAX = 150  # Django's User.username
EMAIL_MAX = 254  # Django's User.email
KEY_MAX = 16 * 1024  # longer than any OpenSSH public key (16384-bit RSA is ~2.8 KiB) or a PEM certificate
USERNAME_RE = re.compile(r"^[\w.@+-]+\Z")
BAD_USERNAME = "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."
BAD_EMAIL = "Enter a valid email address."
# Django's EmailValidator: a dot-atom or quoted local part; a domain of DNS labels, a literal or localhost.
EMAIL_USER_RE = re.compile(
    r"(^[-!#$%&'*+/=?^_`{}|~0-9A-Z]+(\.[-!#$%&'*+/=?^_`{}|~0-9A-Z]+)*\Z"
    r'|^"([\001-\010\013\014\016-\037!#-\[\]-\177]|\\[\001-\011\013\014\016-\177])*"\Z)',
    re.IGNORECASE,
)
EMAIL_DOMAIN_RE = re.compile(r"((?:[A-Z0-9](?:[A-Z0-9-]{0,61}[A-Z0-9])?\.)+)(?:[A-Z0-9-]{2,63}(?<!-))\Z", re.IGNORECASE)
EMAIL_LITERAL_RE = re.compile(r"\[([A-F0-9:.]+)\]\Z", re.IGNORECASE)
SSH_KEY_TYPES = frozenset(
    (
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "ssh-dss",
        "ssh-ed25519",
        "ssh-rsa",
    )
)
KEY_PROTOCOLS = ("lp", "gh")
DUPLICATE_KEY = "This key has already been added for this user."


def too_long(value: str, limit: int) -> str | None:
    if len(value) > limit:
        return f"Ensure this value has at most {limit} characters (it has {len(value)})."
    return None


def check_username(username: str) -> FieldErrors:
    if not username:
        return {"username": ["This field is required."]}
    problem = too_long(username, USERNAME_MAX)
    if problem:
        return {"username": [problem]}
    if not USERNAME_RE.match(username):
        return {"username": [BAD_USERNAME]}
    return {}


def valid_email(value: str) -> bool:
    if "\x00" in value or "@" not in value or len(value) > 320:
        return False
    user, _, domain = value.rpartition("@")
    if not EMAIL_USER_RE.match(user):
        return False
    if domain.lower() == "localhost" or EMAIL_DOMAIN_RE.match(domain):
        return True
    try:  # an internationalised domain, as Django re-tries it
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_domain = ""
    if ascii_domain and EMAIL_DOMAIN_RE.match(ascii_domain):
        return True
    return bool(EMAIL_LITERAL_RE.match(domain))


def check_email(email: str) -> FieldErrors:
    """An empty e-mail is allowed (MAAS's users may have none); anything else must be valid."""
    if not email:
        return {}
    problem = too_long(email, EMAIL_MAX)
    if problem:
        return {"email": [problem]}
    return {} if valid_email(email) else {"email": [BAD_EMAIL]}


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class BadKey(ValueError):
    """An SSH key MAAS would refuse; the message is MAAS's reason."""


def normalise_ssh_key(text: str) -> str:
    """The key as MAAS stores it: "TYPE BASE64 [comment]" with the key data re-encoded
    from the parsed key. BadKey with MAAS's reason when it is not a valid public key."""
    parts = text.split()
    if len(parts) < 2:
        raise BadKey(
            "Key should contain 2 or more space separated parts (key type, base64-encoded key, "
            f"optional comments), not {len(parts)})"
        )
    keytype, data, *comments = parts
    if keytype not in SSH_KEY_TYPES:
        raise BadKey(f"Key type {keytype} not recognised; it should be one of: {' '.join(sorted(SSH_KEY_TYPES))}")
    try:
        blob = base64.b64decode(data, validate=True)
        with warnings.catch_warnings():  # ssh-dss is deprecated, still MAAS's
            warnings.simplefilter("ignore")
            public = serialization.load_ssh_public_key(f"{keytype} {data}".encode())
            canonical = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm) as exc:
        raise BadKey(f"Key could not be converted to RFC4716 form ({exc or 'not a valid key'}).") from None
    new_type, new_data = canonical.decode().split()[:2]
    if new_type != keytype or base64.b64decode(new_data) != blob:
        raise BadKey("Key could not be converted to RFC4716 form (the key data does not match its type).")
    return " ".join([new_type, new_data, *comments])


def check_ssh_key(text: str) -> tuple[str, FieldErrors]:
    """(normalised key, errors) for a key a user adds by hand."""
    if not text or not text.strip():
        return "", {"key": ["This field is required."]}
    problem = too_long(text, KEY_MAX)
    if problem:
        return "", {"key": [problem]}
    if "\x00" in text:
        return "", {"key": ["Null characters are not allowed."]}
    try:
        return normalise_ssh_key(text), {}
    except BadKey as exc:
        return "", {"key": [f"Invalid SSH public key: {exc}"]}


def check_ssl_key(text: str) -> FieldErrors:
    """MAAS's SSL keys are PEM certificates (validate_ssl_key)."""
    if not text or not text.strip():
        return {"key": ["This field is required."]}
    problem = too_long(text, KEY_MAX)
    if problem:
        return {"key": [problem]}
    try:
        x509.load_pem_x509_certificate(text.encode())
    except (ValueError, TypeError, UnicodeEncodeError):
        return {"key": ["Invalid SSL key."]}
    return {}


class BadAuthId(ValueError):
    """The user name part of a keysource cannot be one (refused naming the field)."""


def parse_keysource(keysource: str | None) -> tuple[str, str]:
    """ "gh:octocat" -> ("gh", "octocat"); a bare id means Launchpad, as in MAAS."""
    if keysource is None or not keysource.strip():
        raise ValueError("Importing SSH keys failed. Input needs to be in protocol:auth_id or auth_id format.")
    protocol, sep, auth_id = keysource.strip().partition(":")
    if not sep:
        protocol, auth_id = "lp", protocol
    if protocol not in KEY_PROTOCOLS:
        raise ValueError(f"Unknown protocol {protocol}. Valid protocols are 'lp' and 'gh'.")
    if not auth_id or not re.match(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,254}$", auth_id):
        raise BadAuthId(f"Invalid {protocol} user name: {auth_id!r}.")
    return protocol, auth_id
