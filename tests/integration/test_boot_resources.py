"""Boot resources on the region: upload, import (directory, HTTP), progress, refusals,
the file download with ranges, and a second region serving the same bytes from the database.

API tests run against the shared region and delete what they create (names start
with "bt-"); tests that import, kill workers or start a second region get a region
of their own.
"""

from __future__ import annotations

import email.policy
import hashlib
import io
import json
import os
import secrets
import signal
from email.generator import BytesGenerator
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from metalplane.client.http import MaasHttp, oauth_header
from metalplane.region.bootstrap import run_db
from metalplane.region.services import boot_resources as svc
from tests.conftest import start_region
from tests.support.image_mirror import MirrorServer, make_mirror
from tests.support.processes import wait_until

PREFIX = "/MAAS/api/2.0/"
MiB = 1 << 20


def ok(response, status: int = 200):
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    assert response.headers.get("content-type")
    if status == 204:
        return None
    return response.json()


def started(response) -> None:
    assert response.status_code == 200, response.text
    assert response.text.startswith("Import of boot resources started")


def unique(prefix: str = "bt") -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_url(region_url: str, digest: str) -> str:
    return region_url.rstrip("/") + "/boot-resources/file/" + digest  # region_url ends in /MAAS/


def multipart_with_file(fields: dict[str, str], name: str, filename: str, data: bytes) -> tuple[str, bytes]:
    """As maascli sends a file part: base64, with a filename."""
    message = MIMEMultipart("form-data")
    for key, value in fields.items():
        part = MIMEApplication(value.encode(), charset="utf-8")
        part.set_type("text/plain")
        part.add_header("Content-Disposition", "form-data", name=key)
        message.attach(part)
    part = MIMEApplication(data)
    part.add_header("Content-Disposition", "form-data", name=name, filename=filename)
    message.attach(part)
    out = io.BytesIO()
    BytesGenerator(out, policy=email.policy.HTTP).flatten(message)
    _, _, body = out.getvalue().partition(b"\r\n\r\n")
    return message["Content-Type"], body


def post_file(api: MaasHttp, fields: dict[str, str], data: bytes, filename: str = "vmlinuz") -> httpx.Response:
    url = api.url("boot-resources/")
    content_type, body = multipart_with_file(fields, "content", filename, data)
    return api.http.post(
        url, content=body, headers={"Content-Type": content_type, "Authorization": oauth_header(api.api_key, url)}
    )


def put_pieces(api: MaasHttp, upload_uri: str, data: bytes, piece: int = 4 * MiB) -> list[httpx.Response]:
    """maascli's boot_resources_create: signed raw PUTs of 4 MiB."""
    url = api.root.split(PREFIX)[0] + upload_uri
    out = []
    for start in range(0, len(data), piece):
        chunk = data[start : start + piece]
        out.append(
            api.http.put(
                url,
                content=chunk,
                headers={"Content-Type": "application/octet-stream", "Authorization": oauth_header(api.api_key, url)},
            )
        )
    return out


def only_set(resource: dict) -> dict:
    (s,) = resource["sets"].values()
    return s


@pytest.fixture
def cleanup(api):
    made: list[int] = []
    yield made
    for resource_id in made:
        api.delete(f"boot-resources/{resource_id}/")


# -- describe/ --------------------------------------------------------------------------------


def test_boot_resources_are_described(shared_region):
    body = httpx.get(shared_region.url + "api/2.0/describe/").json()
    found = {r["name"]: r["auth"] for r in body["resources"]}
    assert found["BootResourcesHandler"]["path"] == PREFIX + "boot-resources/"
    assert found["BootResourceHandler"]["params"] == ["id"]
    actions = {(a["name"], a["method"]) for a in found["BootResourcesHandler"]["actions"]}
    assert {
        ("read", "GET"),
        ("create", "POST"),
        ("import", "POST"),
        ("is_importing", "GET"),
        ("stop_import", "POST"),
        ("import_status", "GET"),
    } <= actions
    assert {(a["name"], a["method"]) for a in found["BootResourceHandler"]["actions"]} == {
        ("read", "GET"),
        ("delete", "DELETE"),
    }


# -- upload --------------------------------------------------------------------------------------


def test_upload_with_a_content_part(api, shared_region, cleanup):
    data = secrets.token_bytes(MiB + 4321)  # two chunks, the second partial
    name = unique()
    created = ok(
        post_file(
            api,
            {
                "name": f"custom/{name}",
                "architecture": "amd64/generic",
                "filetype": "boot-kernel",
                "title": "Test kernel",
            },
            data,
        ),
        201,
    )
    cleanup.append(created["id"])
    assert {k: created[k] for k in ("type", "name", "architecture", "subarches", "title")} == {
        "type": "Uploaded",
        "name": f"custom/{name}",
        "architecture": "amd64/generic",
        "subarches": "generic",
        "title": "Test kernel",
    }
    assert created["resource_uri"] == f"{PREFIX}boot-resources/{created['id']}/"
    rset = only_set(created)
    assert rset["complete"] and rset["progress"] == 100.0 and rset["label"] == "uploaded"
    assert rset["files"]["boot-kernel"] == {
        "filename": "boot-kernel",
        "filetype": "boot-kernel",
        "sha256": sha(data),
        "size": len(data),
        "complete": True,
        "progress": 100.0,
        "download_uri": "/MAAS/boot-resources/file/" + sha(data),
    }

    listed = ok(api.get("boot-resources/"))
    mine = [r for r in listed if r["id"] == created["id"]]
    assert mine == [
        {
            "id": created["id"],
            "type": "Uploaded",
            "name": f"custom/{name}",
            "architecture": "amd64/generic",
            "subarches": "generic",
            "title": "Test kernel",
            "last_deployed": None,
            "resource_uri": created["resource_uri"],
        }
    ]
    assert created["id"] in [r["id"] for r in ok(api.get("boot-resources/", type="uploaded"))]
    assert created["id"] not in [r["id"] for r in ok(api.get("boot-resources/", type="synced"))]
    response = api.get("boot-resources/", type="nonsense")
    assert response.status_code == 400 and "not a valid boot resource type" in response.text

    got = httpx.get(file_url(shared_region.url, sha(data)))
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-length"] == str(len(data))
    assert got.headers["etag"] == f'"{sha(data)}"'

    ok(api.delete(f"boot-resources/{created['id']}/"), 204)
    cleanup.remove(created["id"])
    assert api.get(f"boot-resources/{created['id']}/").status_code == 404
    assert httpx.get(file_url(shared_region.url, sha(data))).status_code == 404  # stored bytes went too


def test_upload_in_pieces_as_maascli_does(api, shared_region, cleanup):
    data = secrets.token_bytes(9 * MiB + 77)  # three 4 MiB PUTs, the last one short
    name = unique()
    created = ok(
        api.post(
            "boot-resources/", name=name, architecture="amd64", filetype="ddraw", sha256=sha(data), size=str(len(data))
        ),
        201,
    )
    cleanup.append(created["id"])
    assert created["name"] == f"custom/{name}" and created["architecture"] == "amd64/generic"
    rset = only_set(created)
    rfile = rset["files"]["root-dd.raw"]
    assert (rfile["complete"], rfile["progress"], rset["complete"]) == (False, 0.0, False)
    assert rfile["upload_uri"].startswith(f"{PREFIX}boot-resources/{created['id']}/upload/")

    responses = put_pieces(api, rfile["upload_uri"], data[: 4 * MiB])
    assert [r.status_code for r in responses] == [200]
    partial = only_set(ok(api.get(f"boot-resources/{created['id']}/")))
    assert partial["files"]["root-dd.raw"]["progress"] == round(4 * MiB * 100 / len(data), 1)
    assert not partial["complete"]
    assert httpx.get(file_url(shared_region.url, sha(data))).status_code == 404  # not served until complete

    assert [r.status_code for r in put_pieces(api, rfile["upload_uri"], data[4 * MiB :])] == [200, 200]
    done = only_set(ok(api.get(f"boot-resources/{created['id']}/")))
    assert done["complete"] and done["files"]["root-dd.raw"]["complete"]
    assert "upload_uri" not in done["files"]["root-dd.raw"]
    assert httpx.get(file_url(shared_region.url, sha(data))).content == data
    again = put_pieces(api, rfile["upload_uri"], b"more")
    assert (again[0].status_code, again[0].text) == (400, "Cannot upload to a complete file.")

    # The same bytes again: complete at once (maascli then uploads nothing).
    second = ok(
        api.post(
            "boot-resources/",
            name=unique(),
            architecture="amd64/generic",
            filetype="ddraw",
            sha256=sha(data),
            size=str(len(data)),
        ),
        201,
    )
    cleanup.append(second["id"])
    assert only_set(second)["files"]["root-dd.raw"]["complete"]


def test_upload_in_odd_pieces(api, shared_region, cleanup):
    """Pieces that do not line up with the 1 MiB chunks (python-libmaas, curl...)."""
    data = secrets.token_bytes(3 * MiB + 333)
    created = ok(
        api.post(
            "boot-resources/",
            name=unique(),
            architecture="amd64/generic",
            filetype="squashfs",
            sha256=sha(data),
            size=str(len(data)),
        ),
        201,
    )
    cleanup.append(created["id"])
    upload_uri = only_set(created)["files"]["squashfs"]["upload_uri"]
    assert {r.status_code for r in put_pieces(api, upload_uri, data, piece=700_001)} == {200}
    assert only_set(ok(api.get(f"boot-resources/{created['id']}/")))["complete"]
    got = httpx.get(file_url(shared_region.url, sha(data)), headers={"Range": f"bytes={MiB - 3}-{MiB + 2}"})
    assert got.content == data[MiB - 3 : MiB + 3]
    assert httpx.get(file_url(shared_region.url, sha(data))).content == data


def test_kernel_and_initrd_in_one_set(api, shared_region, cleanup):
    kernel, initrd = secrets.token_bytes(3000), secrets.token_bytes(5000)
    name = f"ephemeral/{unique()}"
    first = ok(
        post_file(
            api,
            {"name": name, "architecture": "amd64/generic", "filetype": "boot-kernel", "version": "20261123.1"},
            kernel,
        ),
        201,
    )
    cleanup.append(first["id"])
    both = ok(
        post_file(
            api,
            {"name": name, "architecture": "amd64/generic", "filetype": "boot-initrd", "version": "20261123.1"},
            initrd,
            "initrd.gz",
        ),
        201,
    )
    assert both["id"] == first["id"]
    rset = both["sets"]["20261123.1"]
    assert set(rset["files"]) == {"boot-kernel", "boot-initrd"} and rset["complete"]
    assert rset["size"] == len(kernel) + len(initrd)
    clash = post_file(
        api,
        {"name": name, "architecture": "amd64/generic", "filetype": "boot-initrd", "version": "20261123.1"},
        b"other",
    )
    assert clash.status_code == 400 and "already has a boot-initrd" in clash.text

    async def manifest(conn):
        return await svc.manifest(conn)

    images = [i for i in run_db(shared_region.config, manifest)["images"] if i["name"] == name]
    assert images == [
        {
            "name": name,
            "architecture": "amd64",
            "subarch": "generic",
            "version": "20261123.1",
            "files": {
                "boot-kernel": {
                    "sha256": sha(kernel),
                    "size": len(kernel),
                    "path": f"/MAAS/boot-resources/file/{sha(kernel)}",
                },
                "boot-initrd": {
                    "sha256": sha(initrd),
                    "size": len(initrd),
                    "path": f"/MAAS/boot-resources/file/{sha(initrd)}",
                },
            },
        }
    ]


def test_upload_refusals(api, shared_region, cleanup):
    data = secrets.token_bytes(2 * MiB + 5)
    response = api.post("boot-resources/", name=unique(), architecture="amd64/generic")
    assert response.status_code == 400
    assert response.json() == {"sha256": ["This field is required."], "size": ["This field is required."]}
    response = post_file(api, {"name": unique(), "architecture": "amd64/generic", "sha256": "0" * 64}, data)
    assert response.status_code == 400 and f"The content's sha256 is {sha(data)}" in response.json()["sha256"][0]
    response = api.post(
        "boot-resources/", name="bad name!", architecture="amd64", filetype="nope", sha256=sha(data), size="5"
    )
    assert set(response.json()) == {"name", "filetype"}
    assert api.post(
        "boot-resources/", name=unique(), architecture="a/b/c", sha256=sha(data), size="5"
    ).json().keys() == {"architecture"}

    # Pieces whose bytes are not what sha256 promised: refused, emptied, never complete.
    wrong = secrets.token_bytes(len(data))
    created = ok(
        api.post(
            "boot-resources/",
            name=unique(),
            architecture="amd64/generic",
            filetype="tgz",
            sha256=sha(data),
            size=str(len(data)),
        ),
        201,
    )
    cleanup.append(created["id"])
    upload_uri = only_set(created)["files"]["root-tgz"]["upload_uri"]
    last = put_pieces(api, upload_uri, wrong, piece=MiB)[-1]
    assert last.status_code == 400
    assert last.text.startswith("Saved content does not match given SHA256 value")
    rfile = only_set(ok(api.get(f"boot-resources/{created['id']}/")))["files"]["root-tgz"]
    assert (rfile["complete"], rfile["progress"]) == (False, 0.0)
    assert "does not match" in rfile["error"]
    too_much = put_pieces(api, upload_uri, data + b"x", piece=len(data) + 1)[0]
    assert too_much.status_code == 400 and "Too much data" in too_much.text
    # ... and the right bytes still go in afterwards.
    assert [r.status_code for r in put_pieces(api, upload_uri, data)] == [200]
    assert only_set(ok(api.get(f"boot-resources/{created['id']}/")))["complete"]

    # Only admins upload; nobody uploads unsigned.
    url = shared_region.url + f"api/2.0/boot-resources/{created['id']}/upload/1/"
    assert httpx.put(url, content=b"x").status_code == 401


def test_non_admins_read_but_do_not_change(shared_region, api, cleanup):
    from tests.conftest import create_user

    key = create_user(shared_region.config, unique("bt-user"))
    created = ok(post_file(api, {"name": unique(), "architecture": "amd64/generic"}, b"tiny"), 201)
    cleanup.append(created["id"])
    with shared_region.api(key) as user:
        assert ok(user.get(f"boot-resources/{created['id']}/"))["id"] == created["id"]
        assert ok(user.get("boot-resources/", op="is_importing")) in (True, False)
        assert user.delete(f"boot-resources/{created['id']}/").status_code == 403
        assert user.request("POST", "boot-resources/", "import", {"path": "/tmp"}).status_code == 403
        url = user.url(only_set(created)["files"]["root-tgz"]["download_uri"])
    assert url  # the download itself is anonymous (below)


# -- the file download ------------------------------------------------------------------------------


def test_download_ranges_and_validators(api, shared_region, cleanup):
    data = secrets.token_bytes(3 * MiB + 100)
    created = ok(post_file(api, {"name": unique(), "architecture": "amd64/generic"}, data), 201)
    cleanup.append(created["id"])
    url = file_url(shared_region.url, sha(data))
    etag = f'"{sha(data)}"'
    size = len(data)
    cases = [
        ("bytes=0-0", data[:1], f"bytes 0-0/{size}"),
        ("bytes=100-199", data[100:200], f"bytes 100-199/{size}"),
        (f"bytes={MiB - 10}-{2 * MiB + 9}", data[MiB - 10 : 2 * MiB + 10], f"bytes {MiB - 10}-{2 * MiB + 9}/{size}"),
        (f"bytes={3 * MiB}-", data[3 * MiB :], f"bytes {3 * MiB}-{size - 1}/{size}"),
        ("bytes=-50", data[-50:], f"bytes {size - 50}-{size - 1}/{size}"),
        (f"bytes=10-{size * 2}", data[10:], f"bytes 10-{size - 1}/{size}"),
    ]
    with httpx.Client() as http:
        for header, expected, content_range in cases:
            r = http.get(url, headers={"Range": header})
            assert r.status_code == 206, header
            assert r.content == expected, header
            assert r.headers["content-range"] == content_range
            assert r.headers["content-length"] == str(len(expected))
        r = http.get(url, headers={"Range": f"bytes={size}-"})
        assert (r.status_code, r.headers["content-range"]) == (416, f"bytes */{size}")
        r = http.get(url, headers={"Range": "bytes=0-1,5-6"})  # several ranges: the whole file
        assert (r.status_code, len(r.content)) == (200, size)
        r = http.get(url, headers={"Range": "bytes=0-9", "If-Range": '"something-else"'})
        assert (r.status_code, len(r.content)) == (200, size)
        r = http.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
        assert (r.status_code, r.content) == (206, data[:10])
        assert http.get(url, headers={"If-None-Match": etag}).status_code == 304
        head = http.head(url)
        assert (head.status_code, head.headers["content-length"], head.content) == (200, str(size), b"")
        assert head.headers["accept-ranges"] == "bytes" and head.headers["etag"] == etag
        assert http.get(file_url(shared_region.url, "0" * 64)).status_code == 404
        assert http.get(file_url(shared_region.url, "not-a-sha")).status_code == 404


# -- imports --------------------------------------------------------------------------------------------


def corrupt_sha(root: Path, ftype: str, bogus: str) -> None:
    products = root / "streams/v1/com.metalplane:images.json"
    doc = json.loads(products.read_text())
    for product in doc["products"].values():
        for version in product["versions"].values():
            if ftype in version["items"]:
                version["items"][ftype]["sha256"] = bogus
    products.write_text(json.dumps(doc))


def wait_import(api: MaasHttp, timeout: float = 60) -> dict:
    wait_until(lambda: not api.get("boot-resources/", op="is_importing").json(), timeout, 0.2, "import to end")
    return api.get("boot-resources/", op="import_status").json()["imports"][0]


def resource_named(api: MaasHttp, name: str) -> dict:
    (found,) = [r for r in ok(api.get("boot-resources/")) if r["name"] == name]
    return ok(api.get(f"boot-resources/{found['id']}/"))


def test_import_from_a_directory(region, workdir):
    kernel, initrd = secrets.token_bytes(700_000), secrets.token_bytes(3 * MiB + 1)
    mirror = workdir / "mirror"
    shas = make_mirror(mirror, "dirtest", {"boot-kernel": kernel, "boot-initrd": initrd})
    with region.api() as api:
        for source in ok(api.get("boot-sources/")):  # without url or path, the boot sources are used
            ok(api.delete(f"boot-sources/{source['id']}/"), 204)
        assert api.post("boot-resources/", op="import").status_code == 400
        assert api.request("POST", "boot-resources/", "import", {"path": "relative/dir"}).status_code == 400
        assert api.request("POST", "boot-resources/", "import", {"path": str(workdir / "nope")}).status_code == 400
        response = api.request("POST", "boot-resources/", "import", {"path": str(mirror)})
        assert response.status_code == 200 and response.text.startswith("Import of boot resources started")
        job = wait_import(api)
        assert job["state"] == "done", job
        assert (job["files_total"], job["files_done"], job["bytes_total"]) == (2, 2, len(kernel) + len(initrd))
        resource = resource_named(api, "ephemeral/dirtest")
        assert (resource["type"], resource["architecture"], resource["title"]) == (
            "Synced",
            "amd64/generic",
            "Test dirtest",
        )
        rset = resource["sets"]["20261123.1"]
        assert rset["complete"] and rset["label"] == "stable"
        assert {n: (f["sha256"], f["complete"]) for n, f in rset["files"].items()} == {
            "boot-kernel": (shas["boot-kernel"], True),
            "boot-initrd": (shas["boot-initrd"], True),
        }
        assert httpx.get(file_url(region.url, shas["boot-initrd"])).content == initrd

        # Again, with a newer version that shares the kernel: only the new initrd is fetched.
        initrd2 = secrets.token_bytes(MiB)
        make_mirror(mirror, "dirtest", {"boot-kernel": kernel, "boot-initrd": initrd2}, version="20261123.10")
        started(api.post("boot-resources/", op="import", url=f"file://{mirror}/streams/v1/index.json"))
        job = wait_import(api)
        assert (job["state"], job["files_total"], job["bytes_total"]) == ("done", 1, len(initrd2))

    async def manifest(conn):
        return await svc.manifest(conn)

    (image,) = run_db(region.config, manifest)["images"]
    assert image["version"] == "20261123.10"  # natural order: .10 is newer than .1
    assert image["files"]["boot-initrd"]["sha256"] == sha(initrd2)


def test_import_over_http_shows_progress(region, workdir):
    initrd = secrets.token_bytes(6 * MiB)
    mirror = workdir / "mirror"
    shas = make_mirror(mirror, "httptest", {"boot-kernel": b"k" * 1000, "boot-initrd": initrd})
    with MirrorServer(mirror, rate=MiB) as server, region.api() as api:  # ~6 s for the initrd: 2-3 heartbeats
        started(api.post("boot-resources/", op="import", url=server.url))
        assert api.get("boot-resources/", op="is_importing").json() is True
        seen: list[float] = []

        def partway() -> bool:
            resources = [r for r in ok(api.get("boot-resources/")) if r["name"] == "ephemeral/httptest"]
            if not resources:
                return False
            rset = ok(api.get(f"boot-resources/{resources[0]['id']}/"))["sets"]["20261123.1"]
            progress = rset["files"]["boot-initrd"]["progress"]
            seen.append(progress)
            return 0 < progress < 100 and not rset["complete"]

        wait_until(partway, 30, 0.1, "a partly imported initrd")
        # The job's own counters follow with its heartbeat (every 2 s).
        status = wait_until(
            lambda: (s := ok(api.get("boot-resources/", op="import_status")))["imports"][0]["bytes_done"] > 0 and s,
            10,
            0.2,
            "job progress",
        )
        job = status["imports"][0]
        assert status["importing"] and job["state"] == "running"
        assert 0 < job["bytes_done"] < job["bytes_total"] and 0 < job["progress"] < 100
        job = wait_import(api)
        assert job["state"] == "done", job
        rset = resource_named(api, "ephemeral/httptest")["sets"]["20261123.1"]
        assert rset["complete"] and rset["files"]["boot-initrd"]["progress"] == 100.0
        assert httpx.get(file_url(region.url, shas["boot-initrd"])).content == initrd

        # All bytes stored but never checked (a crash between the last chunk and the check):
        # the next import checks them without fetching anything.
        async def uncheck(conn):
            await conn.execute(
                text("UPDATE boot_resource_contents SET complete = false WHERE sha256 = :s"), {"s": shas["boot-initrd"]}
            )

        run_db(region.config, uncheck)
        server.requests.clear()
        started(api.post("boot-resources/", op="import", url=server.url))
        assert wait_import(api)["state"] == "done"
        assert not [p for p, _ in server.requests if p.endswith("boot-initrd")]
        assert resource_named(api, "ephemeral/httptest")["sets"]["20261123.1"]["complete"]


def test_stop_import_keeps_what_is_stored(region, workdir):
    initrd = secrets.token_bytes(4 * MiB)
    mirror = workdir / "mirror"
    make_mirror(mirror, "stoptest", {"boot-initrd": initrd})
    # 16 s of download at this rate: the stop is seen at the import's next heartbeat (every 2 s),
    # well before the file could be whole even on a busy machine.
    with MirrorServer(mirror, rate=MiB // 4) as server, region.api() as api:
        started(api.post("boot-resources/", op="import", url=server.url))
        wait_until(
            lambda: ok(api.get("boot-resources/", op="import_status"))["imports"][0]["bytes_done"] > 0,
            20,
            0.2,
            "some progress",
        )
        response = api.post("boot-resources/", op="stop_import", id="999999")  # another import: no effect
        assert response.status_code == 200
        assert api.get("boot-resources/", op="is_importing").json() is True
        assert api.post("boot-resources/", op="stop_import").text == "Import of boot resources is being stopped"
        job = wait_import(api, 30)
        assert job["state"] == "stopped" and "resume" in job["message"], job
        rfile = resource_named(api, "ephemeral/stoptest")["sets"]["20261123.1"]["files"]["boot-initrd"]
        assert rfile["complete"] is False and 0 < rfile["progress"] < 100
        server.rate = None
        started(api.post("boot-resources/", op="import", url=server.url))
        assert wait_import(api)["state"] == "done"
        assert resource_named(api, "ephemeral/stoptest")["sets"]["20261123.1"]["complete"]


def test_import_refuses_a_sha256_mismatch(region, workdir):
    good, bad = secrets.token_bytes(1000), secrets.token_bytes(2 * MiB + 3)
    mirror = workdir / "mirror"
    make_mirror(mirror, "badsum", {"boot-kernel": good, "boot-initrd": bad})
    corrupt_sha(mirror, "boot-initrd", "ab" * 32)
    with MirrorServer(mirror) as server, region.api() as api:
        started(api.post("boot-resources/", op="import", url=server.url))
        job = wait_import(api)
        assert job["state"] == "failed"
        assert "boot-initrd" in job["message"]
        assert f"does not match given SHA256 value: expected {'ab' * 32}, got {sha(bad)}" in job["message"]
        rset = resource_named(api, "ephemeral/badsum")["sets"]["20261123.1"]
        assert rset["complete"] is False
        initrd = rset["files"]["boot-initrd"]
        assert (initrd["complete"], initrd["progress"]) == (False, 0.0)
        assert "does not match" in initrd["error"]
        assert rset["files"]["boot-kernel"]["complete"]  # the good file is kept
        assert httpx.get(file_url(region.url, "ab" * 32)).status_code == 404
        assert httpx.get(file_url(region.url, sha(bad))).status_code == 404

    async def manifest(conn):
        return await svc.manifest(conn)

    assert run_db(region.config, manifest) == {"images": []}  # an incomplete set never reaches racks


def test_bad_streams_fail_with_a_reason(region, workdir):
    mirror = workdir / "mirror"
    (mirror / "streams/v1").mkdir(parents=True)
    (mirror / "streams/v1/index.json").write_text(
        json.dumps({"format": "index:1.0", "index": {"x": {"datatype": "image-downloads", "path": "../../etc/passwd"}}})
    )
    with region.api() as api:
        started(api.request("POST", "boot-resources/", "import", {"path": str(mirror)}))
        job = wait_import(api)
        assert job["state"] == "failed" and "'..'" in job["message"], job
        (mirror / "streams/v1/index.json").write_text("{not json")
        started(api.request("POST", "boot-resources/", "import", {"path": str(mirror)}))
        job = wait_import(api)
        assert job["state"] == "failed" and "not valid JSON" in job["message"], job


def worker_rss_peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_killed_import_resumes_and_never_completes_half_a_file(region, workdir):
    """SIGKILL the worker mid-file: the file stays incomplete, is_importing turns false once
    the heartbeat is stale, and the next import resumes from the stored chunks (a Range
    request) and completes with a matching sha256."""
    initrd = secrets.token_bytes(40 * MiB)
    mirror = workdir / "mirror"
    shas = make_mirror(mirror, "crash", {"boot-kernel": b"k" * 100, "boot-initrd": initrd})

    def stored(api: MaasHttp) -> float:
        resources = [r for r in ok(api.get("boot-resources/")) if r["name"] == "ephemeral/crash"]
        if not resources:
            return 0.0
        files = ok(api.get(f"boot-resources/{resources[0]['id']}/"))["sets"]["20261123.1"]["files"]
        return files["boot-initrd"]["progress"]

    with MirrorServer(mirror, rate=8 * MiB) as server:
        with region.api() as api:
            started(api.post("boot-resources/", op="import", url=server.url))
            owner = ok(api.get("boot-resources/", op="import_status"))["imports"][0]["owner"]
            pid = int(owner.rsplit("pid ", 1)[1].rstrip(")"))
            assert pid in region.process.worker_pids()
            wait_until(lambda: stored(api) > 30, 60, 0.2, "a third of the initrd stored")
            os.kill(pid, signal.SIGKILL)
        with region.api() as api:  # new connections: the old ones may have been the dead worker's
            progress_at_kill = stored(api)
            assert 30 < progress_at_kill < 100
            rfile = resource_named(api, "ephemeral/crash")["sets"]["20261123.1"]["files"]["boot-initrd"]
            assert rfile["complete"] is False
            assert httpx.get(file_url(region.url, shas["boot-initrd"])).status_code == 404
            # The job counts as running until its heartbeat is stale, then not.
            wait_until(
                lambda: api.get("boot-resources/", op="is_importing").json() is False,
                40,
                0.5,
                "the dead import to stop counting",
            )
            server.requests.clear()
            server.rate = None
            started(api.post("boot-resources/", op="import", url=server.url))
            job = wait_import(api)
            assert job["state"] == "done", job
            previous = ok(api.get("boot-resources/", op="import_status"))["imports"][1]
            assert previous["state"] == "failed" and "interrupted" in previous["message"]
            ranges = [r for path, r in server.requests if path.endswith("boot-initrd")]
            assert len(ranges) == 1 and ranges[0] not in (None, "bytes=0-"), ranges
            got = httpx.get(file_url(region.url, shas["boot-initrd"]))
            assert got.status_code == 200 and sha(got.content) == shas["boot-initrd"]


def test_a_40_mib_file_never_sits_in_a_worker(region, workdir):
    """Import, then download, a 40 MiB initrd: the peak RSS of the worker that did it grows
    by far less than the file (it streams 1 MiB chunks both ways)."""
    initrd = secrets.token_bytes(40 * MiB)
    mirror = workdir / "mirror"
    shas = make_mirror(mirror, "big", {"boot-initrd": initrd})
    del initrd
    pids = region.process.worker_pids()
    before = {pid: worker_rss_peak_kib(pid) for pid in pids}
    with region.api() as api:
        started(api.request("POST", "boot-resources/", "import", {"path": str(mirror)}))
        job = wait_import(api)
        assert job["state"] == "done", job
        pid = int(job["owner"].rsplit("pid ", 1)[1].rstrip(")"))
    digest = hashlib.sha256()
    with httpx.stream("GET", file_url(region.url, shas["boot-initrd"])) as response:
        for block in response.iter_bytes():
            digest.update(block)
    assert digest.hexdigest() == shas["boot-initrd"]
    growth = {p: (worker_rss_peak_kib(p) - before[p]) / 1024 for p in pids}
    assert max(growth.values()) < 20, f"peak RSS growth per worker (MiB): {growth}; importer {pid}"


def test_a_second_region_serves_the_same_files(region, databases, workdir):
    data = secrets.token_bytes(2 * MiB + 9)
    with region.api() as api:
        created = ok(
            post_file(api, {"name": unique(), "architecture": "amd64/generic", "filetype": "boot-initrd"}, data), 201
        )
    other = start_region(databases, workdir, name="region-b", num_workers=1, dbname=region.config.database_name)
    try:
        url = file_url(other.url, sha(data))
        assert httpx.get(url).content == data
        r = httpx.get(url, headers={"Range": "bytes=1048570-1048585"})
        assert (r.status_code, r.content) == (206, data[1048570:1048586])
        with MaasHttp(other.url, region.api_key) as api_b:
            read = ok(api_b.get(f"boot-resources/{created['id']}/"))
            assert only_set(read)["files"]["boot-initrd"]["sha256"] == sha(data)
            assert ok(api_b.get("boot-resources/", op="is_importing")) is False
    finally:
        other.stop()


def test_the_cli_grammar(shared_region, tmp_path):
    """`metalplane PROFILE boot-resources ...` as the maas command spells it; content@=FILE
    sends the file as a plain bytes part, which the region takes as the raw bytes."""
    import subprocess
    import sys

    env = {**os.environ, "METALPLANE_PROFILES": str(tmp_path / "profiles.json")}

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "metalplane", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    cli("login", "bt", shared_region.url, shared_region.api_key)
    data = bytes(range(256)) * 5000  # not UTF-8
    (tmp_path / "root.tgz").write_bytes(data)
    created = json.loads(
        cli(
            "bt",
            "boot-resources",
            "create",
            f"name={unique()}",
            "architecture=amd64/generic",
            f"content@={tmp_path / 'root.tgz'}",
        )
    )
    try:
        assert only_set(created)["files"]["root-tgz"]["sha256"] == sha(data)
        read = json.loads(cli("bt", "boot-resource", "read", str(created["id"])))
        assert only_set(read)["complete"]
        assert json.loads(cli("bt", "boot-resources", "is-importing")) is False
        assert "imports" in json.loads(cli("bt", "boot-resources", "import-status"))
        assert httpx.get(file_url(shared_region.url, sha(data))).content == data
    finally:
        cli("bt", "boot-resource", "delete", str(created["id"]))


def test_a_built_image_uploads_with_progress_lines_off_a_terminal(api, shared_region, tmp_path, monkeypatch, capsys):
    """`images build-ephemeral --import-into PROFILE`'s upload: off a terminal, a plain line at
    each tenth of each file (a terminal gets a bar, tests/unit/test_operations.py), and the set
    is complete on the region."""
    import subprocess
    import sys

    from metalplane.cli.images_cmd import upload_build
    from metalplane.images.build import BuildResult
    from metalplane.images.simplestreams import StreamItem

    out = tmp_path / "image"
    out.mkdir()
    contents = {"boot-kernel": secrets.token_bytes(9 * MiB + 77), "boot-initrd": secrets.token_bytes(5000)}
    for ftype, data in contents.items():
        (out / ftype).write_bytes(data)
    result = BuildResult(
        name=f"ephemeral/{unique()}",
        architecture="amd64/generic",
        version="20261124.1",
        kernel_package="linux-image-test",
        kernel_release="6.1.0-test",
        modules=[],
        missing_modules=[],
        out=out,
        files=[StreamItem(ftype, ftype, sha(data), len(data)) for ftype, data in contents.items()],
    )
    monkeypatch.setenv("METALPLANE_PROFILES", str(tmp_path / "profiles.json"))
    login = subprocess.run(
        [sys.executable, "-m", "metalplane", "login", "bt", shared_region.url, shared_region.api_key],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert login.returncode == 0, login.stderr
    said: list[str] = []
    assert upload_build("bt", result, said.append) == 0
    resource_id = int(said[-1].split("as boot resource ")[1].split()[0])
    try:
        err = capsys.readouterr().err.splitlines()
        kernel = [line for line in err if line.startswith("uploading boot-kernel: ")]
        assert [int(line.split(": ")[1].split("%")[0]) for line in kernel] == list(range(10, 101, 10)), err
        assert kernel[-1] == "uploading boot-kernel: 100% (9.0 MiB of 9.0 MiB)"
        assert len([line for line in err if line.startswith("uploading boot-initrd: ")]) == 10
        assert "\x1b[" not in "".join(err)  # no bar drawn off a terminal
        assert only_set(ok(api.get(f"boot-resources/{resource_id}/")))["complete"]
    finally:
        api.delete(f"boot-resources/{resource_id}/")
