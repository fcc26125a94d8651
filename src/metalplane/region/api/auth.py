"""OAuth 1.0 PLAINTEXT request authentication, as MAAS clients sign requests."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from oauthlib.oauth1.rfc5849.signature import sign_plaintext
from oauthlib.oauth1.rfc5849.utils import parse_authorization_header, unescape

from metalplane.region.errors import Unauthenticated


@dataclass(frozen=True)
class OAuthCredentials:
    consumer_key: str
    token_key: str
    signature: str


def parse_oauth_header(header: str | None) -> OAuthCredentials | None:
    """None when no OAuth header is present; 401 when one is present but broken."""
    if not header or not header.lstrip().lower().startswith("oauth"):
        return None
    try:
        fields = {k: unescape(v) for k, v in parse_authorization_header(header)}
    except (ValueError, IndexError):
        raise Unauthenticated("Authorization Error: malformed OAuth header") from None
    method = fields.get("oauth_signature_method", "")
    if method != "PLAINTEXT":
        raise Unauthenticated(f"Authorization Error: unsupported signature method {method!r}; use PLAINTEXT")
    try:
        return OAuthCredentials(fields["oauth_consumer_key"], fields["oauth_token"], fields["oauth_signature"])
    except KeyError as exc:
        raise Unauthenticated(f"Authorization Error: missing {exc.args[0]}") from None


def signature_matches(credentials: OAuthCredentials, token_secret: str) -> bool:
    # MAAS consumers have an empty secret, so the signature is "&" + token secret.
    expected = sign_plaintext("", token_secret)
    return hmac.compare_digest(expected.encode(), credentials.signature.encode())
