"""TLS material for rack↔region RPC: a cluster CA and one server certificate.

Every region serves the same certificate (kept in the database), so a rack
that has pinned the cluster CA can verify any region. A rack meeting the
cluster for the first time has no CA yet: it connects unverified and relies on
the shared-secret proof bound to the certificate it saw (see rpc.auth).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALIDITY = datetime.timedelta(days=3650)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "metalplane"),
        ]
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


# x509.KeyUsage's flags, every one of which it must be given.
KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def key_usage(*granted: str) -> x509.KeyUsage:
    """A KeyUsage extension that grants exactly `granted`."""
    unknown = set(granted) - set(KEY_USAGES)
    if unknown:
        raise ValueError(f"not a key usage: {sorted(unknown)}")
    return x509.KeyUsage(**{name: name in granted for name in KEY_USAGES})


def make_cluster_tls(cluster_uuid: str) -> dict[str, str]:
    """A CA and a server certificate signed by it, all as PEM strings."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"metalplane cluster {cluster_uuid}")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage("digital_signature", "key_cert_sign", "crl_sign"), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("metalplane region"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("metalplane-region")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return {
        "ca_cert": ca_cert.public_bytes(serialization.Encoding.PEM).decode(),
        "ca_key": _pem_key(ca_key),
        "cert": cert.public_bytes(serialization.Encoding.PEM).decode(),
        "key": _pem_key(key),
    }


def server_context(cert_pem: str, key_pem: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # load_cert_chain only reads files: use a private temporary directory.
    with tempfile.TemporaryDirectory(prefix="mp-tls-") as tmp:
        cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert_file.write_text(cert_pem)
        key_file.touch(mode=0o600)
        key_file.write_text(key_pem)
        context.load_cert_chain(cert_file, key_file)
    return context


@functools.lru_cache(maxsize=8)
def client_context(ca_pem: str | None) -> ssl.SSLContext:
    """Verify against the pinned cluster CA; without one (first contact) accept any
    certificate — the secret proof, bound to that certificate, authenticates.

    One per CA, shared by every connection (never changed once made): a new context and
    CA load per connection was 16% of a simulated-rack process's CPU while 250 connect."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False  # the CA is private to one cluster; names don't matter
    if ca_pem:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=ca_pem)
    else:
        context.verify_mode = ssl.CERT_NONE
    return context


def fingerprint_der(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def fingerprint_pem(pem: str) -> str:
    return fingerprint_der(x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER))
