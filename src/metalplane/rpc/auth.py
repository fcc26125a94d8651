"""Proving knowledge of the shared secret without sending it.

Each side sends a fresh nonce; each answers with HMAC-SHA256(secret, role,
both nonces, the server certificate's fingerprint). Binding the fingerprint
defeats a relay: a man in the middle shows the rack a different certificate,
so the rack's proof cannot verify at the real region.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

NONCE_BYTES = 32


def new_nonce() -> str:
    return secrets.token_hex(NONCE_BYTES)


def proof(secret: str, role: str, first_nonce: str, second_nonce: str, fingerprint: str) -> str:
    message = "\n".join(("metalplane-rpc-v1", role, first_nonce, second_nonce, fingerprint)).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    expected_secret: str, role: str, first_nonce: str, second_nonce: str, fingerprint: str, presented: str
) -> bool:
    expected = proof(expected_secret, role, first_nonce, second_nonce, fingerprint)
    return hmac.compare_digest(expected.encode(), presented.encode())
