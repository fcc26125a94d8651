"""users/, account/ and the caller's SSH and SSL keys, against real regions.

Key imports fetch from a local HTTP server standing in for GitHub and Launchpad
(the region's METALPLANE_GITHUB_URL / METALPLANE_LAUNCHPAD_URL); the Launchpad
one points at a closed port, which is what a site without internet sees.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from metalplane.client.http import MaasHttp
from tests.conftest import RunningRegion, create_admin, make_region_config
from tests.support.api_users import add_user, drop_user
from tests.support.databases import world_traversable_tempdir
from tests.support.processes import RegionProcess

PREFIX = "/MAAS/api/2.0/"


def ok(response, status: int = 200):
    assert response.status_code == status, (response.status_code, response.text)
    return response.json() if response.headers.get("content-type", "").startswith("application/json") else response


def public_key(make=lambda: ed25519.Ed25519PrivateKey.generate()) -> str:
    return make().public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def certificate() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"cert-{secrets.token_hex(2)}")])
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


@pytest.fixture
def other(shared_region) -> Iterator[tuple[str, MaasHttp]]:
    username, key = add_user(shared_region.config, "acct-user")
    with shared_region.api(key) as client:
        yield username, client
    drop_user(shared_region.config, username)


# -- users ------------------------------------------------------------------------------------


def test_create_read_and_delete_a_user(api):
    name = f"acct-{secrets.token_hex(3)}"
    made = ok(api.post("users/", username=name, email=f"{name}@example.com", password="pw", is_superuser="0"))
    assert made == {
        "username": name,
        "email": f"{name}@example.com",
        "is_superuser": False,
        "is_local": True,
        "resource_uri": f"{PREFIX}users/{name}/",
    }
    assert ok(api.get(f"users/{name}/")) == made
    admin = ok(api.post("users/", username=name + "-a", email=f"a{name}@example.com", password="pw", is_superuser="1"))
    assert admin["is_superuser"] is True
    ok(api.delete(f"users/{name}/"), 204)
    ok(api.delete(f"users/{name}-a/"), 204)
    assert api.get(f"users/{name}/").status_code == 404
    assert api.delete(f"users/{name}/").status_code == 204  # MAAS: deleting a missing user is a no-op


@pytest.mark.parametrize(
    "fields, status, body",
    [
        ({"email": "x@example.com", "password": "pw", "is_superuser": "0"}, 400, "No provided username!"),
        ({"username": "u1", "password": "pw", "is_superuser": "0"}, 400, "No provided email!"),
        ({"username": "u1", "email": "x@example.com", "is_superuser": "0"}, 400, "No provided password!"),
        ({"username": "u1", "email": "x@example.com", "password": "pw"}, 400, "No provided is_superuser!"),
        (
            {"username": "a/b", "email": "x@example.com", "password": "pw", "is_superuser": "0"},
            400,
            {
                "username": [
                    "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."
                ]
            },
        ),
        (
            {"username": "a" * 151, "email": "x@example.com", "password": "pw", "is_superuser": "0"},
            400,
            {"username": ["Ensure this value has at most 150 characters (it has 151)."]},
        ),
        ({"username": "bad name!", "email": "x@example.com", "password": "pw", "is_superuser": "0"}, 400, None),
        (
            {"username": "u1", "email": "not an email", "password": "pw", "is_superuser": "0"},
            400,
            {"email": ["Enter a valid email address."]},
        ),
        (
            {"username": "admin", "email": "x@example.com", "password": "pw", "is_superuser": "0"},
            400,
            {"username": ["A user with that username already exists."]},
        ),
        ({"username": "u1", "email": "x@example.com", "password": "pw", "is_superuser": "maybe"}, 400, None),
    ],
)
def test_bad_users_are_refused(api, fields, status, body):
    before = ok(api.get("users/"))
    response = api.post("users/", **fields)
    assert response.status_code == status, response.text
    if isinstance(body, str):
        assert response.text == body
    elif body is not None:
        assert response.json() == body
    assert ok(api.get("users/")) == before


def test_a_user_with_a_slash_never_exists(api):
    """Issue 11: such a name used to be created and then could not be read or deleted."""
    assert api.post("users/", username="x/y", email="x@example.com", password="pw", is_superuser="0").status_code == 400
    assert "x/y" not in [u["username"] for u in ok(api.get("users/"))]


def test_deleting_a_user_who_owns_ranges_needs_a_transfer(api, shared_region):
    name, key = add_user(shared_region.config, "acct-owner")
    heir, _ = add_user(shared_region.config, "acct-heir")
    subnet = ok(api.post("subnets/", cidr="10.202.170.0/24"))
    try:
        with shared_region.api(key) as owner:
            owned = ok(
                owner.post(
                    "ipranges/", type="reserved", subnet=subnet["id"], start_ip="10.202.170.10", end_ip="10.202.170.20"
                )
            )
        response = api.delete(f"users/{name}/")
        assert (response.status_code, response.text) == (
            400,
            f"User {name} cannot be deleted: 1 IP range(s) are still allocated",
        )
        assert api.delete(f"users/{name}/", transfer_resources_to="nobody-here").status_code == 404
        assert ok(api.get(f"users/{name}/"))["username"] == name
        ok(api.delete(f"users/{name}/", transfer_resources_to=heir), 204)
        assert ok(api.get(f"ipranges/{owned['id']}/"))["user"]["username"] == heir
        assert api.get(f"users/{name}/").status_code == 404
    finally:
        for r in ok(api.get("ipranges/")):
            if r["subnet"]["id"] == subnet["id"]:
                api.delete(f"ipranges/{r['id']}/")
        api.delete(f"subnets/{subnet['id']}/")
        drop_user(shared_region.config, heir)


def test_only_admins_create_or_delete_users(other):
    _, client = other
    assert (
        client.post("users/", username="sneaky", email="s@example.com", password="pw", is_superuser="1").status_code
        == 403
    )
    assert client.delete("users/admin/").status_code == 403
    assert client.get("users/admin/").status_code == 200


# -- account tokens ------------------------------------------------------------------------------


def test_rename_a_token_by_key_or_whole_credentials(api):
    token = ok(api.post("account/", op="create_authorisation_token", name="before"))
    whole = f"{token['consumer_key']}:{token['token_key']}:{token['token_secret']}"
    try:
        response = api.post("account/", op="update_token_name", token=token["token_key"], name="after")
        assert (response.status_code, response.text) == (202, "Accepted")
        assert {"name": "after", "token": whole} in ok(api.get("account/", op="list_authorisation_tokens"))
        ok(api.post("account/", op="update_token_name", token=whole, name="again"), 202)
        assert {"name": "again", "token": whole} in ok(api.get("account/", op="list_authorisation_tokens"))
        assert api.post("account/", op="update_token_name", token="nosuch", name="x").status_code == 404
        response = api.post("account/", op="update_token_name", token=token["token_key"])
        assert (response.status_code, response.text) == (400, "No provided name!")
    finally:
        api.post("account/", op="delete_authorisation_token", token_key=token["token_key"])


def test_a_user_cannot_rename_someone_elses_token(api, other):
    token = ok(api.post("account/", op="create_authorisation_token", name="mine"))
    try:
        assert (
            other[1].post("account/", op="update_token_name", token=token["token_key"], name="theirs").status_code
            == 404
        )
    finally:
        api.post("account/", op="delete_authorisation_token", token_key=token["token_key"])


# -- SSH keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: rsa.generate_private_key(65537, 2048),
        lambda: ed25519.Ed25519PrivateKey.generate(),
        lambda: ec.generate_private_key(ec.SECP384R1()),
    ],
)
def test_add_read_list_and_delete_an_ssh_key(api, make):
    key = public_key(make)
    made = ok(api.post("account/prefs/sshkeys/", key=f"{key} me@laptop"), 201)
    assert made == {
        "id": made["id"],
        "key": f"{key} me@laptop",
        "keysource": "",
        "resource_uri": f"{PREFIX}account/prefs/sshkeys/{made['id']}/",
    }
    assert ok(api.get(f"account/prefs/sshkeys/{made['id']}/")) == made
    assert made in ok(api.get("account/prefs/sshkeys/"))
    response = api.post("account/prefs/sshkeys/", key=f"{key} me@laptop")
    assert (response.status_code, response.json()) == (400, {"key": ["This key has already been added for this user."]})
    ok(api.delete(f"account/prefs/sshkeys/{made['id']}/"), 204)
    assert api.get(f"account/prefs/sshkeys/{made['id']}/").text == "No SSHKey matches the given query."


@pytest.mark.parametrize(
    "key, reason",
    [
        ("garbage", "Key should contain 2 or more space separated parts"),
        ("ssh-foo AAAAB3NzaC1yc2E", "Key type ssh-foo not recognised"),
        ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ", "Key could not be converted to RFC4716 form"),
        ("ssh-ed25519 !!!!", "Key could not be converted to RFC4716 form"),
    ],
)
def test_garbage_ssh_keys_are_refused_with_maas_reason(api, key, reason):
    before = ok(api.get("account/prefs/sshkeys/"))
    response = api.post("account/prefs/sshkeys/", key=key)
    assert response.status_code == 400
    (message,) = response.json()["key"]
    assert message.startswith("Invalid SSH public key: " + reason), message
    assert ok(api.get("account/prefs/sshkeys/")) == before


def test_ssh_keys_belong_to_their_user(api, other):
    username, client = other
    mine = ok(api.post("account/prefs/sshkeys/", key=public_key()), 201)
    try:
        assert ok(client.get(f"account/prefs/sshkeys/{mine['id']}/"))["id"] == mine["id"]  # as MAAS: readable
        assert mine not in ok(client.get("account/prefs/sshkeys/"))
        response = client.delete(f"account/prefs/sshkeys/{mine['id']}/")
        assert (response.status_code, response.text) == (403, "Can't delete a key you don't own.")
        response = client.post("account/prefs/sshkeys/", key=public_key(), user="admin")
        assert (response.status_code, response.text) == (
            400,
            "Only administrators can specify a user when creating an SSH key.",
        )
        theirs = ok(api.post("account/prefs/sshkeys/", key=public_key(), user=username), 201)
        assert theirs in ok(client.get("account/prefs/sshkeys/"))
        response = api.post("account/prefs/sshkeys/", key=public_key(), user="nobody-here")
        assert (response.status_code, response.text) == (400, "Supplied username does not match any current users.")
    finally:
        api.delete(f"account/prefs/sshkeys/{mine['id']}/")


@pytest.mark.parametrize(
    "path", ["account/prefs/sshkeys/987654/", "account/prefs/sshkeys/x/", "account/prefs/sshkeys/99999999999/"]
)
def test_missing_ssh_keys_are_404(api, path):
    assert (api.get(path).status_code, api.delete(path).status_code) == (404, 404)


# -- SSL keys -----------------------------------------------------------------------------------


def test_ssl_keys(api, other):
    pem = certificate()
    made = ok(api.post("account/prefs/sslkeys/", key=pem), 201)
    assert made == {"id": made["id"], "key": pem, "resource_uri": f"{PREFIX}account/prefs/sslkeys/{made['id']}/"}
    assert ok(api.get(f"account/prefs/sslkeys/{made['id']}/")) == made
    assert made in ok(api.get("account/prefs/sslkeys/"))
    response = api.post("account/prefs/sslkeys/", key=pem)
    assert response.json() == {"key": ["This key has already been added for this user."]}
    assert api.post("account/prefs/sslkeys/", key="nope").json() == {"key": ["Invalid SSL key."]}
    response = other[1].get(f"account/prefs/sslkeys/{made['id']}/")
    assert (response.status_code, response.text) == (403, "Can't get a key you don't own.")
    response = other[1].delete(f"account/prefs/sslkeys/{made['id']}/")
    assert (response.status_code, response.text) == (403, "Can't delete a key you don't own.")
    ok(api.delete(f"account/prefs/sslkeys/{made['id']}/"), 204)
    assert api.get(f"account/prefs/sslkeys/{made['id']}/").text == "No SSLKey matches the given query."


# -- importing SSH keys ------------------------------------------------------------------------


class KeyServer:
    """GitHub's /users/NAME/keys and Launchpad's /~NAME/+sshkeys, on 127.0.0.1."""

    def __init__(self, keys: dict[str, list[str]]):
        self.keys = keys
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                name = self.path.split("/")[2] if self.path.startswith("/users/") else self.path[2:].split("/")[0]
                if name == "slow":
                    time.sleep(25)  # longer than the region waits
                if name not in server.keys:
                    self.send_response(404)
                    self.end_headers()
                    return
                if self.path.startswith("/users/"):
                    body = json.dumps([{"id": n, "key": k} for n, k in enumerate(server.keys[name])]).encode()
                else:
                    body = "".join(k + "\n" for k in server.keys[name]).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def keys_region(databases):
    """A region whose GitHub is a local server and whose Launchpad is a closed port."""
    server = KeyServer(
        {
            "octocat": [public_key(), public_key()],
            "alice": [public_key()],
            "garbage": ["not a key at all"],
            "nokeys": [],
        }
    )
    root = world_traversable_tempdir("mp-keys-")
    dbname = databases.new_database()
    config = make_region_config(databases, dbname, root / "data")
    key = create_admin(config)
    process = RegionProcess(config, root / "region")
    process.env = {
        "METALPLANE_GITHUB_URL": server.url,
        "METALPLANE_LAUNCHPAD_URL": f"http://127.0.0.1:{closed_port()}/",
    }
    process.start_and_wait()
    yield RunningRegion(process, key), server
    process.stop()
    server.close()
    databases.drop_database(dbname)
    shutil.rmtree(root, ignore_errors=True)


def test_import_keys_from_github(keys_region):
    region, server = keys_region
    with region.api() as api:
        imported = ok(api.post("account/prefs/sshkeys/", op="import", keysource="gh:octocat"))
        assert sorted(k["key"] for k in imported) == sorted(server.keys["octocat"])
        assert {k["keysource"] for k in imported} == {"gh:octocat"}
        again = ok(api.post("account/prefs/sshkeys/", op="import", keysource="gh:octocat"))
        assert sorted(k["id"] for k in again) == sorted(k["id"] for k in imported)  # nothing added twice
        listed = ok(api.get("account/prefs/sshkeys/"))
        assert {k["id"] for k in imported} <= {k["id"] for k in listed}
        for k in imported:
            ok(api.delete(f"account/prefs/sshkeys/{k['id']}/"), 204)


@pytest.mark.parametrize(
    "keysource, status, text",
    [
        ("gh:ghost", 400, '{"auth_id": ["Unable to import SSH keys. Github user ghost doesn\'t exist."]}'),
        ("gh:nokeys", 400, '{"auth_id": ["Unable to import SSH keys. There are no SSH keys for gh user nokeys."]}'),
        ("xx:someone", 400, "Unknown protocol xx. Valid protocols are 'lp' and 'gh'."),
        ("", 400, "Importing SSH keys failed. Input needs to be in protocol:auth_id or auth_id format."),
    ],
)
def test_import_refusals(keys_region, keysource, status, text):
    region, _ = keys_region
    with region.api() as api:
        response = api.post("account/prefs/sshkeys/", op="import", keysource=keysource)
        assert (response.status_code, response.text.replace(" ", "")) == (status, text.replace(" ", ""))
        assert ok(api.get("account/prefs/sshkeys/")) == []


def test_import_of_garbage_keys_stores_nothing(keys_region):
    region, _ = keys_region
    with region.api() as api:
        response = api.post("account/prefs/sshkeys/", op="import", keysource="gh:garbage")
        assert response.status_code == 400
        assert response.json()["key"][0].startswith("Invalid SSH public key:")
        assert ok(api.get("account/prefs/sshkeys/")) == []


def test_import_without_internet_is_one_clear_503_line(keys_region):
    """Launchpad is unreachable (a closed port): no 500, no hang, one line naming the host."""
    region, _ = keys_region
    with region.api() as api:
        started = time.monotonic()
        response = api.post("account/prefs/sshkeys/", op="import", keysource="lp:alice")
        assert time.monotonic() - started < 5
        assert response.status_code == 503
        assert response.text.startswith("Unable to import SSH keys: 127.0.0.1 could not be reached (ConnectError")
        assert "\n" not in response.text
        bare = api.post("account/prefs/sshkeys/", op="import", keysource="alice")  # a bare name means Launchpad
        assert bare.status_code == 503


def test_a_source_that_never_answers_is_given_up_on(keys_region):
    region, _ = keys_region
    with region.api() as api:
        started = time.monotonic()
        response = api.post("account/prefs/sshkeys/", op="import", keysource="gh:slow")
        took = time.monotonic() - started
        assert response.status_code == 503 and "could not be reached" in response.text, response.text
        assert 5 < took < 20, took
