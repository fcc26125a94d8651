"""OAuth 1.0 PLAINTEXT request authentication, as MAAS clients sign requests."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from oauthlib.oauth1.rfc5849.signature import sign_plaintext
from oauthlib.oauth1.rfc5849.utils import parse_authorization_header, unescape

from metalplane.region import validation
from metalplane.region.errors import Unauthenticated

MAX_HEADER = 8192  # characters of an Authorization header


@dataclass(frozen=True)
class OAuthCredentials:
    consumer_key: str
    token_key: str
    signature: str


def parse_oauth_header(header: str | None) -> OAuthCredentials | None:
    """None when no OAuth header is present; 401 when one is present but broken."""
    if not header or not header.lstrip().lower().startswith("oauth"):
        return None
    if len(header) > MAX_HEADER:
        raise Unauthenticated("Authorization Error: malformed OAuth header")
    try:
        fields = {k: unescape(v) for k, v in parse_authorization_header(header)}
    except (ValueError, IndexError, TypeError, KeyError, UnicodeError):
        raise Unauthenticated("Authorization Error: malformed OAuth header") from None
    method = fields.get("oauth_signature_method", "")
    if method != "PLAINTEXT":
        shown = validation.shown(method, 40)
        raise Unauthenticated(f"Authorization Error: unsupported signature method {shown!r}; use PLAINTEXT")
    try:
        credentials = OAuthCredentials(fields["oauth_consumer_key"], fields["oauth_token"], fields["oauth_signature"])
    except KeyError as exc:
        raise Unauthenticated(f"Authorization Error: missing {exc.args[0]}") from None
    # Keys are short printable words; anything else (a NUL from "%00") can name no token.
    if not all(validation.check_path_part(part) for part in (credentials.consumer_key, credentials.token_key)):
        raise Unauthenticated("Authorization Error: Invalid API key.")
    return credentials


def signature_matches(credentials: OAuthCredentials, token_secret: str) -> bool:
    # MAAS consumers have an empty secret, so the signature is "&" + token secret.
    expected = sign_plaintext("", token_secret)
    return hmac.compare_digest(expected.encode(), credentials.signature.encode())
