"""The UI's accounts and plumbing over plain HTTP: MAAS's authenticate/ (python-libmaas
login()), session expiry and extension, security and caching headers, event streams."""

from __future__ import annotations

import asyncio
import re
import threading
import time

import httpx
import pytest
from maas.client import login as libmaas_login
from sqlalchemy import select, text

from metalplane.region.bootstrap import run_db
from metalplane.region.db.tables import ui_sessions
from metalplane.region.services.sessions import key_hash

ADMIN_PASSWORD = "test-admin"  # tests.conftest.create_admin


def base_of(region) -> str:
    return region.url.rstrip("/").removesuffix("/MAAS")


def ui_login(client: httpx.Client, base: str, username: str = "admin", password: str = ADMIN_PASSWORD) -> str:
    """Log in through the form, as a browser does; the session key."""
    form = client.get(base + "/MAAS/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    done = client.post(
        base + "/MAAS/accounts/login/", data={"csrfmiddlewaretoken": token, "username": username, "password": password}
    )
    assert done.status_code == 303, done.text
    return client.cookies["sessionid"]


def set_config(api, name: str, value: str) -> None:
    assert api.post("maas/", op="set_config", name=name, value=value).status_code == 200


def test_version_advertises_authenticate_api(api):
    assert "authenticate-api" in api.get("version/").json()["capabilities"]


def test_authenticate_trades_a_password_for_the_users_token_as_maas_does(shared_region):
    url = base_of(shared_region) + "/MAAS/accounts/authenticate/"
    first = httpx.post(url, data={"username": "admin", "password": ADMIN_PASSWORD, "consumer": "ui-test@host"})
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"consumer_key", "name", "token_key", "token_secret"} and body["name"] == "ui-test@host"
    again = httpx.post(url, data={"username": "admin", "password": ADMIN_PASSWORD, "consumer": "ui-test@host"})
    assert again.json() == body, "an existing token of that consumer is returned, not a new one"
    # No consumer: the user's earliest token (the one the fixture made).
    earliest = httpx.post(url, data={"username": "admin", "password": ADMIN_PASSWORD}).json()
    assert shared_region.api_key == f"{earliest['consumer_key']}:{earliest['token_key']}:{earliest['token_secret']}"
    for data in ({"username": "admin", "password": "wrong"}, {"username": "nobody", "password": "x"}, {}):
        assert httpx.post(url, data=data).status_code == 403
    assert httpx.get(url).status_code == 405


def test_python_libmaas_login_with_username_and_password(shared_region):
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        client = libmaas_login(shared_region.url, username="admin", password=ADMIN_PASSWORD)
        assert client.users.whoami().username == "admin"
        assert "fabric-0" in [f.name for f in client.fabrics.list()]
        assert [r.hostname for r in client.region_controllers.list()] == ["region-a"]
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def test_sessions_expire_and_are_extended_on_use(shared_region, api):
    base = base_of(shared_region)
    config = shared_region.config
    set_config(api, "session_length", "600")
    try:
        with httpx.Client() as client:
            key = ui_login(client, base)

            async def expires(conn):
                return (
                    await conn.execute(
                        select(ui_sessions.c.expires, text("now()")).where(ui_sessions.c.key_hash == key_hash(key))
                    )
                ).one()

            until, now = run_db(config, expires)
            assert 590 <= (until - now).total_seconds() <= 600

            async def set_left(conn, seconds: int):
                await conn.execute(
                    text("UPDATE ui_sessions SET expires = now() + make_interval(secs => :s) WHERE key_hash = :k"),
                    {"s": seconds, "k": key_hash(key)},
                )

            # Used with less than half its length left: extended to the full length again.
            run_db(config, lambda conn: set_left(conn, 100))
            assert client.get(base + "/MAAS/r/controllers/").status_code == 200
            until, now = run_db(config, expires)
            assert (until - now).total_seconds() > 590

            # Expired: back to the login page, wherever the request lands.
            run_db(config, lambda conn: set_left(conn, -1))
            response = client.get(base + "/MAAS/r/controllers/")
            assert response.status_code == 303
            assert response.headers["location"] == "/MAAS/accounts/login/?next=/MAAS/r/controllers/"
    finally:
        set_config(api, "session_length", "1209600")


def test_session_length_is_validated_like_maas(api):
    refused = api.post("maas/", op="set_config", name="session_length", value="5")
    assert refused.status_code == 400
    assert refused.json() == {"session_length": ["Ensure this value is greater than or equal to 10."]}


def test_pages_carry_security_headers_and_static_files_cache_for_good(shared_region):
    base = base_of(shared_region)
    with httpx.Client() as client:
        ui_login(client, base)
        page = client.get(base + "/MAAS/r/controllers/")
        assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
        css = re.search(r'href="(/MAAS/r/static/metalplane\.css\?v=[0-9a-f]+)"', page.text).group(1)
        js = re.search(r'src="(/MAAS/r/static/metalplane\.js\?v=[0-9a-f]+)"', page.text).group(1)
    for path in (css, js):
        first = httpx.get(base + path)
        assert first.status_code == 200 and "immutable" in first.headers["cache-control"]
        again = httpx.get(base + path, headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
    assert httpx.get(base + "/MAAS/r/static/nothing.js").status_code == 404
    # Behind an https front end (X-Forwarded-Proto), cookies are Secure; over plain http they are not.
    plain = httpx.get(base + "/MAAS/accounts/login/").headers["set-cookie"]
    behind_tls = httpx.get(base + "/MAAS/accounts/login/", headers={"X-Forwarded-Proto": "https"}).headers["set-cookie"]
    assert "httponly" in plain.lower() and "samesite=lax" in plain.lower() and "secure" not in plain.lower()
    assert "; secure" in behind_tls.lower()
    assert httpx.get(base + "/MAAS/", follow_redirects=False).headers["location"] == "/MAAS/r/"


def test_an_open_event_stream_does_not_hold_up_a_stopping_region(region):
    base = base_of(region)
    lines: list[str] = []
    with httpx.Client(timeout=30) as client:
        ui_login(client, base)

        def listen():
            with client.stream("GET", base + "/MAAS/r/events/") as stream:
                for line in stream.iter_lines():  # one by one: the test reads `lines` meanwhile
                    lines.append(line)

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        deadline = time.monotonic() + 10
        while "event: ready" not in lines and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "event: ready" in lines
        started = time.monotonic()
        region.process.stop()
        stopped = time.monotonic() - started
        listener.join(5)
    assert not listener.is_alive(), "the stream ended when the region stopped"
    assert stopped < 4.0, f"region took {stopped:.1f} s to stop with a stream open"


@pytest.mark.parametrize("path", ["/MAAS/r/controllers/", "/MAAS/r/settings/", "/MAAS/r/events/"])
def test_pages_need_a_session(shared_region, path):
    response = httpx.get(base_of(shared_region) + path, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/MAAS/accounts/login/?next=")


def test_bad_input_is_a_400_never_a_500(shared_region):
    base = base_of(shared_region)
    assert (
        httpx.post(base + "/MAAS/accounts/authenticate/", data={"username": "ad\x00min", "password": "x"}).status_code
        == 400
    )
    with httpx.Client() as client:
        ui_login(client, base)
        page = client.get(base + "/MAAS/r/settings/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        nul = client.post(base + "/MAAS/r/settings/", data={"csrfmiddlewaretoken": token, "maas_name": "a\x00b"})
        assert nul.status_code == 400 and "Null characters are not allowed." in nul.text
        huge = client.get(base + "/MAAS/r/controllers/?page=100000000000000000000000")
        assert huge.status_code == 400
        assert client.get(base + "/MAAS/r/controller/nosuch/").status_code == 404
    with httpx.Client() as client:
        login = client.get(base + "/MAAS/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        refused = client.post(
            base + "/MAAS/accounts/login/",
            data={"csrfmiddlewaretoken": token, "username": "ad\x00min", "password": "x"},
        )
        assert refused.status_code == 400
