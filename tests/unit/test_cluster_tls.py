"""The cluster CA and region certificate carry the extensions a verifying rack relies on."""

from __future__ import annotations

import pytest
from cryptography import x509

from metalplane.rpc import tls


def test_the_ca_may_sign_certificates_and_nothing_else_is_granted() -> None:
    pem = tls.make_cluster_tls("6f1c")
    ca = x509.load_pem_x509_certificate(pem["ca_cert"].encode())
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    granted = {name for name in tls.KEY_USAGES if name not in ("encipher_only", "decipher_only")}
    assert {name for name in granted if getattr(usage.value, name)} == {
        "digital_signature",
        "key_cert_sign",
        "crl_sign",
    }
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_key_usage_refuses_a_name_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="key_signing"):
        tls.key_usage("key_signing")
