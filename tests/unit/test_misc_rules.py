"""MAAS's rules for users, keys, boot source selections, package repositories, license
keys, static routes and object specifiers, as pure functions (the integration tests
drive the same rules through a real region)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from metalplane.images.simplestreams import StreamImage
from metalplane.region.api import bson
from metalplane.region.api.render_sources import timestamp
from metalplane.region.services import accountrules, boot_sources, lookups, static_routes
from metalplane.region.services import package_repositories as repos


def openssh(key) -> str:
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


@pytest.mark.parametrize(
    "name, ok",
    [
        ("admin", True),
        ("a.b@c+d-e_f", True),
        ("üser", True),
        ("a" * 150, True),
        ("", False),
        ("a/b", False),
        ("bad name", False),
        ("a" * 151, False),
        ("x\x00y", False),
        ("semi;colon", False),
    ],
)
def test_usernames_follow_djangos_rule(name, ok):
    assert (accountrules.check_username(name) == {}) is ok


def test_username_messages_are_djangos():
    assert accountrules.check_username("a/b") == {"username": [accountrules.BAD_USERNAME]}
    assert accountrules.check_username("a" * 151) == {
        "username": ["Ensure this value has at most 150 characters (it has 151)."]
    }


@pytest.mark.parametrize(
    "email, ok",
    [
        ("", True),
        ("admin@example.com", True),
        ("a.b+c@sub.example.org", True),
        ("root@localhost", True),
        ("x@exämple.com", True),
        ('"quoted.user!"@example.com', True),
        ("a@[10.0.0.1]", True),
        ("not-an-email", False),
        ("two@@example.com", False),
        ("a@b.c", False),
        ("sp ace@example.com", False),
        ("a@-bad-.com", False),
        ("a\x00@example.com", False),
        ("a@" + "x" * 250 + ".com", False),
    ],
)
def test_emails_follow_djangos_validator(email, ok):
    assert (accountrules.check_email(email) == {}) is ok


@pytest.mark.parametrize(
    "make",
    [
        lambda: rsa.generate_private_key(65537, 2048),
        lambda: ed25519.Ed25519PrivateKey.generate(),
        lambda: ec.generate_private_key(ec.SECP256R1()),
        lambda: ec.generate_private_key(ec.SECP384R1()),
        lambda: ec.generate_private_key(ec.SECP521R1()),
    ],
)
def test_real_public_keys_are_kept_with_their_comment(make):
    key = openssh(make())
    normalised, errors = accountrules.check_ssh_key(f"  {key}   me@host  laptop \n")
    assert errors == {} and normalised == f"{key} me@host laptop"


def test_ssh_key_reasons_are_maas():
    def reason(text: str) -> str:
        return accountrules.check_ssh_key(text)[1]["key"][0]

    assert reason("garbage") == (
        "Invalid SSH public key: Key should contain 2 or more space separated parts "
        "(key type, base64-encoded key, optional comments), not 1)"
    )
    assert reason("ssh-foo AAAA") == (
        "Invalid SSH public key: Key type ssh-foo not recognised; it should be one of: "
        "ecdsa-sha2-nistp256 ecdsa-sha2-nistp384 ecdsa-sha2-nistp521 ssh-dss "
        "ssh-ed25519 ssh-rsa"
    )
    ed = openssh(ed25519.Ed25519PrivateKey.generate()).split()[1]
    for bad in ("ssh-rsa AAAA", f"ssh-rsa {ed}", "ssh-ed25519 !!!not-base64!!!", f"ssh-ed25519 {ed[:-8]}"):
        assert reason(bad).startswith("Invalid SSH public key: Key could not be converted to RFC4716 form"), bad
    assert accountrules.check_ssh_key("") == ("", {"key": ["This field is required."]})
    assert accountrules.check_ssh_key("ssh-rsa AAAA\x00")[1] == {"key": ["Null characters are not allowed."]}
    assert "at most" in reason("ssh-rsa " + "A" * accountrules.KEY_MAX)


def test_ssl_keys_are_pem_certificates():
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    assert accountrules.check_ssl_key(pem) == {}
    assert accountrules.check_ssl_key("not a certificate") == {"key": ["Invalid SSL key."]}
    assert accountrules.check_ssl_key(pem.replace("A", "B", 5)) == {"key": ["Invalid SSL key."]}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("gh:octocat", ("gh", "octocat")),
        ("lp:someone", ("lp", "someone")),
        ("bare-name", ("lp", "bare-name")),
    ],
)
def test_keysources(text, expected):
    assert accountrules.parse_keysource(text) == expected


@pytest.mark.parametrize("text", [None, "", "xx:user", "gh:", "gh:../../etc", "gh:a b", "gh:a/b"])
def test_bad_keysources(text):
    with pytest.raises(ValueError):
        accountrules.parse_keysource(text)


def image(name: str, arch: str = "amd64/generic", label: str = "stable") -> StreamImage:
    return StreamImage(
        product="p", name=name, architecture=arch, subarches="generic", version="1", label=label, title="t", items=()
    )


def test_selections_select_by_os_release_arch_subarch_and_label():
    noble = {"os": "ubuntu", "release": "noble", "arches": ["amd64"], "subarches": ["*"], "labels": ["*"]}
    assert boot_sources.selects(noble, image("ubuntu/noble"))
    assert not boot_sources.selects(noble, image("ubuntu/jammy"))
    assert not boot_sources.selects(noble, image("ubuntu/noble", "arm64/generic"))
    assert not boot_sources.selects(noble, image("centos/noble"))
    any_os = {**noble, "os": "", "labels": ["candidate"]}
    assert boot_sources.selects(any_os, image("centos/noble", label="candidate"))
    assert not boot_sources.selects(any_os, image("centos/noble", label="stable"))
    hwe = {**noble, "subarches": ["hwe-24.04"]}
    assert boot_sources.selects(hwe, image("ubuntu/noble", "amd64/hwe-24.04"))
    assert not boot_sources.selects(hwe, image("ubuntu/noble"))


def test_boot_source_rules():
    assert boot_sources.check_url("http://images.maas.io/ephemeral-v3/stable/") == {}
    assert boot_sources.check_url("file:///srv/mirror/") == {}
    for bad in ("images.maas.io", "gopher://x/", "http:///nohost", "file://relative", "http://a b/"):
        assert boot_sources.check_url(bad) == {"url": ["Enter a valid URL."]}, bad
    assert boot_sources.check_keyring("", b"") == {
        "__all__": ["One of keyring_data or keyring_filename must be specified."]
    }
    assert boot_sources.check_keyring("/k.gpg", b"data") == {
        "__all__": ["Only one of keyring_filename or keyring_data can be specified."]
    }
    assert boot_sources.keyring_bytes(b"\x99\x01") == b"\x99\x01" and boot_sources.keyring_bytes(None) == b""
    assert boot_sources.split_list(["amd64,arm64", " i386 "]) == ["amd64", "arm64", "i386"]
    assert boot_sources.check_selection({"os": "ubuntu", "release": "x" * 21})["release"] == [
        "Ensure this value has at most 20 characters (it has 21)."
    ]


def test_package_repository_rules():
    assert repos.valid_url("http://archive.ubuntu.com/ubuntu") and repos.valid_url("ppa:owner/name")
    assert not repos.valid_url("not a url") and not repos.valid_url("file:///x")
    cleaned, errors = repos.clean_lists({"arches": [], "distributions": ["jammy, noble"]}, "custom", False)
    assert errors == {} and cleaned == {"arches": ["amd64", "i386"], "distributions": ["jammy", "noble"]}
    cleaned, _ = repos.clean_lists({"arches": []}, "ports_archive", True)
    assert cleaned["arches"] == repos.PORTS_ARCHES
    _, errors = repos.clean_lists({"arches": ["sparc"]}, "x", False)
    assert errors["arches"][0].startswith("'sparc' is not a valid architecture. Known architectures: amd64, arm64")
    _, errors = repos.clean_lists({"disabled_components": ["universe"]}, "x", False)
    assert errors == {"disabled_components": ["This is a custom repository. Please update 'components' instead."]}
    _, errors = repos.clean_lists({"components": ["main"]}, "main_archive", True)
    assert errors == {
        "components": ["This is a default Ubuntu repository. Please update 'disabled_components' instead."]
    }
    cleaned, errors = repos.clean_lists({"disabled_pockets": ["None"]}, "main_archive", True)
    assert (cleaned, errors) == ({"disabled_pockets": []}, {})


def test_license_key_rules():
    key = "ABCDE-12345-FGHIJ-67890-KLMNO"
    assert repos.check_license_key("windows", "win2019", key) == {}
    assert repos.check_license_key("windows", "windows/win2019", key) == {}
    assert repos.check_license_key("windows", "win2019", "short") == {"__all__": ["Invalid license key."]}
    assert repos.check_license_key("ubuntu", "noble", key)["osystem"] == [
        "'ubuntu' is not a valid osystem.  It should be one of: 'windows'."
    ]
    assert repos.check_license_key("windows", "win2008hvr2", key)["distro_series"][0].startswith(
        "'win2008hvr2' is not a valid distro_series.  It should be one of: 'windows/win2008r2'"
    )


def test_static_route_rules():
    src = {"id": 1, "cidr": "10.0.0.0/24"}
    dst = {"id": 2, "cidr": "10.1.0.0/24"}
    assert static_routes.check_route(src, dst, "10.0.0.1", 0) == {}
    assert static_routes.check_route(src, dst, "10.1.0.1", 0) == {"gateway_ip": ["Enter an IP address in 10.0.0.0/24."]}
    assert static_routes.check_route(src, src, "10.0.0.1", 0) == {
        "__all__": ["source and destination cannot be the same subnet."]
    }
    assert static_routes.check_route(src, {"id": 3, "cidr": "fd00::/64"}, "10.0.0.1", 0) == {
        "__all__": ["source and destination must be the same IP version."]
    }
    assert static_routes.check_route(src, dst, "fe80::1%eth0", 0) == {
        "gateway_ip": ["Enter a valid IPv4 or IPv6 address."]
    }


@pytest.mark.parametrize(
    "value, prefix, expected",
    [
        ("12", "fabric", 12),
        ("fabric-12", "fabric", 12),
        ("space-3", "fabric", None),
        ("name", "fabric", None),
        ("-1", "space", -1),
        ("99999999999", "fabric", -1),
        (" 7 ", "subnet", 7),
    ],
)
def test_object_ids(value, prefix, expected):
    assert lookups.object_id(value, prefix) == expected


def test_specifier_types():
    assert lookups.split("cidr:10.0.0.0/24", lookups.SUBNET_TYPES) == ("cidr", "10.0.0.0/24")
    assert lookups.split("unknown:x", lookups.SUBNET_TYPES) == (None, "unknown:x")
    assert lookups.split("fe80::1", lookups.SUBNET_TYPES) == (None, "fe80::1")


def test_bson_round_trip():
    document = {"lshw": b"<list/>\x00\xff", "lldp": None, "name": "text"}
    encoded = bson.encode(document)
    assert bson.decode(encoded) == document
    assert bson.encode({}) == b"\x05\x00\x00\x00\x00"


def test_timestamps_as_django_writes_them():
    from datetime import UTC, datetime

    assert timestamp(datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)) == "2024-05-01T10:00:00.123Z"
    assert timestamp(datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)) == "2024-05-01T10:00:00Z"
