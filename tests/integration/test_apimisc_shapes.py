"""Each resource answers with every key MAAS declares for it (tests/data/maas_shapes_apimisc.json)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from sqlalchemy import delete

from metalplane.region.bootstrap import run_db
from metalplane.region.db.tables import nodes
from metalplane.region.services import controllers
from metalplane.region.services import racks as rack_services

SHAPES = json.loads((Path(__file__).parent.parent / "data" / "maas_shapes_apimisc.json").read_text())


def ok(response, status: int = 200):
    assert response.status_code == status, (response.request.url, response.text)
    return response.json()


def certificate() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shape")])
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def samples(shared_region):
    """One object of each resource, as the API shows it; removed afterwards."""
    rack_id = controllers.new_system_id()

    async def add_rack(conn):
        await rack_services.register_rack(conn, rack_id, f"shape-rack-{rack_id}", "0.1", [])

    async def drop_rack(conn):
        await conn.execute(delete(nodes).where(nodes.c.system_id == rack_id))

    run_db(shared_region.config, add_rack)
    with shared_region.api() as api:
        key = (
            ed25519.Ed25519PrivateKey.generate()
            .public_key()
            .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
            .decode()
        )
        a, b = (ok(api.post("subnets/", cidr=c)) for c in ("10.202.130.0/24", "10.202.131.0/24"))
        filename = f"shape-{secrets.token_hex(2)}"
        assert api.post("files/", filename=filename, file=b"x").status_code == 201
        source = ok(api.get("boot-sources/"))[0]
        made = {
            "sshkey": ok(api.post("account/prefs/sshkeys/", key=key), 201),
            "sslkey": ok(api.post("account/prefs/sslkeys/", key=certificate()), 201),
            "user": ok(api.get("users/admin/")),
            "boot_source": source,
            "boot_source_selection": ok(api.get(f"boot-sources/{source['id']}/selections/"))[0],
            "package_repository": ok(api.get("package-repositories/main_archive/")),
            "license_key": ok(
                api.post(
                    "license-keys/",
                    osystem="windows",
                    distro_series="win2016",
                    license_key="ABCDE-12345-FGHIJ-67890-KLMNO",
                )
            ),
            "dhcp_snippet": ok(api.post("dhcp-snippets/", name="shape", value="x;")),
            "file": ok(api.get(f"files/{filename}/")),
            "static_route": ok(
                api.post("static-routes/", source=a["id"], destination=b["id"], gateway_ip="10.202.130.1")
            ),
            "space": ok(api.post("spaces/", name=f"shape-{secrets.token_hex(2)}")),
            "rack_controller": ok(api.get(f"rackcontrollers/{rack_id}/")),
            "region_controller": ok(api.get("regioncontrollers/"))[0],
        }
        yield made
        api.delete(f"account/prefs/sshkeys/{made['sshkey']['id']}/")
        api.delete(f"account/prefs/sslkeys/{made['sslkey']['id']}/")
        api.delete("license-key/windows/win2016")
        api.delete(f"dhcp-snippets/{made['dhcp_snippet']['id']}/")
        api.delete("files/", filename=filename)
        api.delete(f"static-routes/{made['static_route']['id']}/")
        api.delete(f"spaces/{made['space']['id']}/")
        for s in (a, b):
            api.delete(f"subnets/{s['id']}/")
    run_db(shared_region.config, drop_rack)


@pytest.mark.parametrize("resource", [k for k in SHAPES if not k.startswith("_")])
def test_no_key_maas_declares_is_missing(samples, resource):
    missing = set(SHAPES[resource]["keys"]) - set(samples[resource])
    assert not missing, f"{SHAPES[resource]['handler']} lacks {sorted(missing)}"
