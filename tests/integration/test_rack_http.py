"""The rack's image cache and HTTP boot server against a fake region (with faults) and real
clients (httpx, raw sockets, curl, wget). Everything on 127.0.0.1, in this process except
curl/wget, which are waited for."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import socket
import time
from pathlib import Path

import httpx
import pytest

from metalplane.rack.http import RackHttpService, Request, Response
from metalplane.rack.images import ImageCache
from tests.support.fake_region_files import FakeRegionFiles, image

KERNEL = os.urandom(3_000_000 + 7)
INITRD = os.urandom(12_000_000 + 13)
NAME = "ephemeral/bookworm"
VERSION = "20261123"
URL = f"/images/{NAME}/amd64/generic/{VERSION}"
needs = {name: shutil.which(name) for name in ("curl", "wget")}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class World:
    def __init__(self, region: FakeRegionFiles, service: RackHttpService, manifest: dict):
        self.region = region
        self.service = service
        self.cache = service.cache
        self.manifest = manifest
        self.kernel = manifest["images"][0]["files"]["boot-kernel"]
        self.initrd = manifest["images"][0]["files"]["boot-initrd"]

    @property
    def base(self) -> str:
        host, port = self.service.address
        return f"http://{host}:{port}"

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, timeout=30)

    async def apply(self, manifest: dict | None = None, urls: list[str] | None = None):
        return await self.service.apply_manifest(manifest or self.manifest, urls or [self.region.url])


def make_manifest(
    region: FakeRegionFiles, version: str = VERSION, kernel: bytes = KERNEL, initrd: bytes = INITRD
) -> dict:
    return {"images": [image(NAME, version, {"boot-kernel": region.add(kernel), "boot-initrd": region.add(initrd)})]}


@contextlib.asynccontextmanager
async def world(tmp_path: Path, *, sync: bool = True, **options):
    region = FakeRegionFiles()
    await region.start()
    manifest = make_manifest(region)
    options.setdefault("retry_delay", 0.01)
    options.setdefault("resync_delay", 0.05)
    service = RackHttpService(tmp_path / "cache", host="127.0.0.1", port=0, **options)
    await service.start()
    w = World(region, service, manifest)
    try:
        if sync:
            result = await w.apply()
            assert result.ok, result.failed
        yield w
    finally:
        await service.stop()
        await region.stop()


async def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


# ---------------------------------------------------------------- sync


async def test_sync_downloads_verifies_and_serves(tmp_path):
    async with world(tmp_path) as w:
        cache = w.cache
        for data in (KERNEL, INITRD):
            path = cache.path_of(sha(data))
            assert path.read_bytes() == data
            assert path.stat().st_mode & 0o777 == 0o444
        assert list((tmp_path / "cache" / "partial").iterdir()) == []
        index = json.loads((tmp_path / "cache" / "index.json").read_text())
        assert set(index["files"]) == {sha(KERNEL), sha(INITRD)}
        assert index["base_urls"] == [w.region.url]
        async with w.http() as client:
            for path, data in (
                (f"{URL}/boot-kernel", KERNEL),
                (f"{URL}/boot-initrd", INITRD),
                (f"/images/by-sha256/{sha(INITRD)}", INITRD),
                (f"/images/{NAME}/amd64/generic/latest/boot-kernel", KERNEL),
            ):
                r = await client.get(path)
                assert r.status_code == 200, path
                assert sha(r.content) == sha(data)
                assert r.headers["etag"] == f'"{sha(data)}"'
                assert r.headers["accept-ranges"] == "bytes"
                assert int(r.headers["content-length"]) == len(data)
            listing = (await client.get("/images/index.json")).json()
            assert listing["images"][0]["complete"] is True
            assert listing["images"][0]["files"]["boot-kernel"]["url"] == f"{URL}/boot-kernel"
        # the symlink tree (for nginx in front) holds the same names
        tree = tmp_path / "cache" / "tree"
        assert (tree / URL.lstrip("/") / "boot-initrd").read_bytes() == INITRD
        assert (tree / "images" / "by-sha256" / sha(KERNEL)).read_bytes() == KERNEL
        status, info = w.service.status()
        assert status == "running" and "serving 1 of 1 image(s)" in info
        # a second sync fetches nothing
        gets = len(w.region.requests)
        result = await w.apply()
        assert result.ok and result.fetched == [] and len(w.region.requests) == gets


async def test_wrong_sha256_from_the_region_is_refused_and_not_served(tmp_path):
    async with world(tmp_path, sync=False) as w:
        w.region.lie[w.initrd["sha256"]] = os.urandom(len(INITRD))  # right size, wrong bytes
        result = await w.apply()
        assert list(result.failed) == [w.initrd["sha256"]]
        assert "sha256" in result.failed[w.initrd["sha256"]]
        assert result.fetched == [w.kernel["sha256"]]
        assert not w.cache.path_of(w.initrd["sha256"]).exists()
        assert list((tmp_path / "cache" / "partial").iterdir()) == []
        async with w.http() as client:
            r = await client.get(f"{URL}/boot-initrd")
            assert r.status_code == 503 and r.headers["retry-after"]
            assert (await client.get(f"/images/by-sha256/{w.initrd['sha256']}")).status_code == 503
            assert (await client.get(f"/images/{NAME}/amd64/generic/latest/boot-initrd")).status_code == 404
            assert (await client.get(f"{URL}/boot-kernel")).status_code == 200
        status, info = w.service.status()
        assert status == "degraded" and "sha256" in info and "1 of 2 file(s) not cached" in info
        # A too-long answer is refused too.
        w.region.lie[w.initrd["sha256"]] = INITRD + b"x"
        result = await w.apply()
        assert "more than" in result.failed[w.initrd["sha256"]]
        # The region is fixed: the background re-sync gets it.
        del w.region.lie[w.initrd["sha256"]]
        await wait_for(lambda: w.cache.entry(w.initrd["sha256"]) is not None, what="background re-sync")
        async with w.http() as client:
            assert sha((await client.get(f"{URL}/boot-initrd")).content) == sha(INITRD)
        assert w.service.status()[0] == "running"


async def test_dropped_download_resumes_with_range_and_is_never_exposed(tmp_path):
    async with world(tmp_path, sync=False, attempts=2) as w:
        s = w.initrd["sha256"]
        w.region.drop_after[s] = [4_000_000, 3_000_000]  # both attempts of this sync are cut
        result = await w.apply()
        assert list(result.failed) == [s]
        part = tmp_path / "cache" / "partial" / f"{s}.part"
        assert part.stat().st_size == 7_000_000  # the second attempt resumed at 4,000,000
        ranges = [rng for _, path, rng in w.region.requests if path.endswith(s)]
        assert ranges == [None, "bytes=4000000-"]
        assert not w.cache.path_of(s).exists()
        assert not (tmp_path / "cache" / "tree" / "images" / "by-sha256" / s).exists()
        async with w.http() as client:
            assert (await client.get(f"{URL}/boot-initrd")).status_code == 503
            assert (await client.get(f"/images/by-sha256/{s}", headers={"Range": "bytes=0-9"})).status_code == 503
        # next sync (the background one) resumes from 7,000,000 and completes
        await wait_for(lambda: w.cache.entry(s) is not None, what="resumed download")
        assert [rng for _, path, rng in w.region.requests if path.endswith(s)][2] == "bytes=7000000-"
        assert w.cache.path_of(s).read_bytes() == INITRD
        assert not part.exists()


async def test_resume_against_a_region_that_ignores_range_starts_over(tmp_path):
    async with world(tmp_path, sync=False, attempts=1) as w:
        s = w.initrd["sha256"]
        w.region.drop_after[s] = [5_000_000]
        assert not (await w.cache.sync(w.manifest, [w.region.url])).ok
        w.region.ignore_range = True
        result = await w.cache.sync()
        assert result.ok and s in result.fetched
        assert w.cache.path_of(s).read_bytes() == INITRD


async def test_a_bad_partial_prefix_is_caught_by_the_digest_and_fetched_again(tmp_path):
    async with world(tmp_path, sync=False, attempts=3) as w:
        s = w.initrd["sha256"]
        part = tmp_path / "cache" / "partial" / f"{s}.part"
        part.write_bytes(b"\0" * 1000)  # a prefix that is not the file's
        result = await w.cache.sync(w.manifest, [w.region.url])
        assert result.ok
        ranges = [rng for _, path, rng in w.region.requests if path.endswith(s)]
        assert ranges == ["bytes=1000-", None]  # resumed, refused by digest, then whole
        assert w.cache.path_of(s).read_bytes() == INITRD


async def test_no_download_without_disk_space(tmp_path):
    async with world(tmp_path, sync=False, min_free_bytes=1 << 60) as w:
        result = await w.apply()
        assert set(result.failed) == {w.kernel["sha256"], w.initrd["sha256"]}
        assert all("not enough disk space" in e for e in result.failed.values())
        assert w.region.requests == []
        assert "not enough disk space" in w.service.status()[1]


async def test_a_failing_region_moves_on_to_the_next(tmp_path):
    async with world(tmp_path, sync=False) as w:
        dead = FakeRegionFiles()
        await dead.start()
        dead_url = dead.url
        await dead.stop()  # nothing listens there now
        broken = FakeRegionFiles()
        broken.files = dict(w.region.files)
        broken.status = dict.fromkeys(broken.files, 500)
        await broken.start()
        try:
            result = await w.apply(urls=[dead_url, broken.url, w.region.url])
            assert result.ok
            assert len(result.fetched) == 2
        finally:
            await broken.stop()


# ---------------------------------------------------------------- corruption


async def test_corrupted_cached_file_is_detected_not_served_and_fetched_again(tmp_path):
    async with world(tmp_path) as w:
        s = w.initrd["sha256"]
        path = w.cache.path_of(s)
        with open(path, "r+b") as f:  # someone flips bytes on disk
            f.seek(5_000_000)
            byte = f.read(1)
            f.seek(5_000_000)
            f.write(bytes([byte[0] ^ 0xFF]))
        fetched_before = len(w.region.requests)
        async with w.http() as client:
            r = await client.get(f"{URL}/boot-initrd")
            assert r.status_code == 503  # changed since its last hash: not served
            # verification (started by that request) finds it corrupt, drops it, and the
            # service syncs again: the good file comes back from the region
            await wait_for(lambda: any(c.sha256 == s for c in w.cache.corruptions), what="corruption found")
            await wait_for(lambda: w.cache.entry(s) is not None, what="re-fetch")
            assert len(w.region.requests) > fetched_before
            r = await client.get(f"{URL}/boot-initrd")
            assert r.status_code == 200 and sha(r.content) == s
        assert "sha256 mismatch" in w.cache.corruptions[-1].reason


async def test_verify_finds_corruption_even_when_the_file_looks_untouched(tmp_path):
    """Bit rot keeps the inode's times: only a re-hash finds it (scheduled or on suspicion)."""
    async with world(tmp_path) as w:
        s = w.kernel["sha256"]
        path = w.cache.path_of(s)
        data = bytearray(path.read_bytes())
        data[100] ^= 1
        with open(path, "r+b") as f:
            f.write(data)
        entry = w.cache.entry(s)
        # pretend the fingerprint still matches (as after bit rot), then verify
        entry.fingerprint = tuple(
            int(x)
            for x in (
                os.stat(path).st_dev,
                os.stat(path).st_ino,
                os.stat(path).st_size,
                os.stat(path).st_mtime_ns,
                os.stat(path).st_ctime_ns,
            )
        )
        assert w.cache.open(s) is not None  # the fingerprint check alone cannot see it
        os.close(w.cache.open(s)[0])
        assert await w.cache.verify(s) is False
        assert w.cache.entry(s) is None and s in [c.sha256 for c in w.cache.corruptions]
        good, bad = await w.cache.verify_all()
        assert (good, bad) == (1, [])
        await w.cache.sync()  # (or the service's background one got there first)
        assert w.cache.path_of(s).read_bytes() == KERNEL


async def test_transfer_in_flight_is_cut_when_its_file_is_dropped(tmp_path):
    async with world(tmp_path) as w:
        host, port = w.service.address
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET {URL}/boot-initrd HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(100_000)  # the transfer is under way; the client reads slowly
        w.cache._drop(w.initrd["sha256"], "test")  # what verify does on a bad digest
        got = 100_000
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(1 << 20):
                got += len(chunk)
        assert got < len(INITRD)
        writer.close()


async def test_restart_without_region_serves_the_cache_and_rehashes_changed_files(tmp_path):
    async with world(tmp_path) as w:
        region = w.region
    await region.stop()  # (world's stop) : no region from here on
    # a file changed while the rack was down
    path = tmp_path / "cache" / "files" / sha(KERNEL)
    os.chmod(path, 0o644)
    path.write_bytes(b"x" + KERNEL[1:])
    service = RackHttpService(tmp_path / "cache", host="127.0.0.1", port=0, resync_delay=0.05, retry_delay=0.01)
    await service.start()
    try:
        base = f"http://127.0.0.1:{service.address[1]}"
        async with httpx.AsyncClient(base_url=base) as client:
            r = await client.get(f"{URL}/boot-initrd")
            assert r.status_code == 200 and sha(r.content) == sha(INITRD)
            await wait_for(
                lambda: any(c.sha256 == sha(KERNEL) for c in service.cache.corruptions), what="re-hash after restart"
            )
            assert (await client.get(f"{URL}/boot-kernel")).status_code == 503
        # the re-sync it triggers fails (no region): degraded, still serving the initrd
        await wait_for(lambda: service.status()[0] == "degraded", what="degraded status")
        _status, info = service.status()
        assert "1 of 2 file(s) not cached" in info
        # the region comes back on the same URL: the background re-sync fetches the kernel
        await region.start(port=region.port)
        service.request_sync()
        await wait_for(lambda: service.cache.entry(sha(KERNEL)) is not None, what="re-fetch after region returns")
        assert service.status()[0] == "running"
    finally:
        await service.stop()
        await region.stop()


async def test_new_version_without_region_keeps_serving_the_old(tmp_path):
    async with world(tmp_path, keep_versions=1) as w:
        await w.region.stop()
        new = make_manifest(FakeRegionFiles(), "20261201", os.urandom(1000), os.urandom(2000))
        result = await w.apply(new)
        assert len(result.failed) == 2 and result.deleted == []
        async with w.http() as client:
            assert (await client.get(f"{URL}/boot-kernel")).status_code == 200
            assert (await client.get(f"/images/{NAME}/amd64/generic/20261201/boot-kernel")).status_code == 503
            assert sha((await client.get(f"/images/{NAME}/amd64/generic/latest/boot-kernel")).content) == sha(KERNEL)
        assert w.service.status()[0] == "degraded"


async def test_versions_are_kept_then_garbage_collected(tmp_path):
    async with world(tmp_path, keep_versions=2) as w:
        versions = {VERSION: (KERNEL, INITRD)}
        for version in ("20261201", "20261215"):
            versions[version] = (os.urandom(1000), os.urandom(2000))
            manifest = make_manifest(w.region, version, *versions[version])
            result = await w.apply(manifest)
            assert result.ok
        assert sorted(result.deleted) == sorted([sha(KERNEL), sha(INITRD)])
        assert [i.version for i in w.cache.images] == ["20261215", "20261201"]
        async with w.http() as client:
            assert (await client.get(f"{URL}/boot-kernel")).status_code == 404
            for version in ("20261201", "20261215"):
                r = await client.get(f"/images/{NAME}/amd64/generic/{version}/boot-initrd")
                assert r.content == versions[version][1]
            r = await client.get(f"/images/{NAME}/amd64/generic/latest/boot-kernel")
            assert r.content == versions["20261215"][0]
        assert sorted(os.listdir(tmp_path / "cache" / "files")) == sorted(
            sha(d) for v in ("20261201", "20261215") for d in versions[v]
        )
        # the image leaves the manifest: everything goes
        result = await w.apply({"images": []})
        assert len(result.deleted) == 4 and os.listdir(tmp_path / "cache" / "files") == []


# ---------------------------------------------------------------- HTTP semantics


async def test_ranges_head_conditionals_and_errors(tmp_path):
    async with world(tmp_path) as w:
        etag = f'"{sha(KERNEL)}"'
        size = len(KERNEL)
        async with w.http() as client:
            k = f"{URL}/boot-kernel"
            r = await client.get(k, headers={"Range": "bytes=0-99"})
            assert r.status_code == 206 and r.content == KERNEL[:100]
            assert r.headers["content-range"] == f"bytes 0-99/{size}"
            r = await client.get(k, headers={"Range": "bytes=-10"})
            assert r.status_code == 206 and r.content == KERNEL[-10:]
            r = await client.get(k, headers={"Range": f"bytes={size - 5}-"})
            assert r.content == KERNEL[-5:]
            r = await client.get(k, headers={"Range": f"bytes={size}-"})
            assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{size}"
            r = await client.get(k, headers={"Range": "bytes=0-1,4-5"})
            assert r.status_code == 200 and len(r.content) == size
            r = await client.get(k, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
            assert r.status_code == 200 and len(r.content) == size
            r = await client.get(k, headers={"Range": "bytes=0-9", "If-Range": etag})
            assert r.status_code == 206 and r.content == KERNEL[:10]
            r = await client.head(k)
            assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == str(size)
            r = await client.head(k, headers={"Range": "bytes=10-19"})
            assert r.status_code == 206 and r.headers["content-length"] == "10"
            r = await client.get(k, headers={"If-None-Match": etag})
            assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == etag
            r = await client.get(k, headers={"If-Modified-Since": r.headers["last-modified"]})
            assert r.status_code == 304
            assert (await client.post(k)).status_code in (405, 413)
            assert (await client.request("DELETE", k)).status_code == 405
            for missing in (f"{URL}/nope", "/images/x/y", f"/images/by-sha256/{'0' * 64}", "/", "/images/../etc"):
                assert (await client.get(missing)).status_code == 404, missing


async def test_raw_http_keepalive_pipelining_http10_and_bad_requests(tmp_path):
    async with world(tmp_path) as w:
        host, port = w.service.address
        k = f"{URL}/boot-kernel"

        async def exchange(data: bytes) -> bytes:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(data)
            await writer.drain()
            out = await asyncio.wait_for(reader.read(-1), 10)
            writer.close()
            return out

        # two pipelined requests on one connection, then close
        out = await exchange(
            f"GET {k} HTTP/1.1\r\nHost: x\r\nRange: bytes=0-4\r\n\r\n"
            f"HEAD {k} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        )
        assert out.count(b"HTTP/1.1 206") == 1 and out.count(b"HTTP/1.1 200") == 1
        assert KERNEL[:5] in out and out.endswith(b"\r\n\r\n")
        # HTTP/1.0 closes by default
        out = await exchange(f"GET {k} HTTP/1.0\r\nRange: bytes=1-2\r\n\r\n".encode())
        assert out.startswith(b"HTTP/1.1 206") and b"Connection: close" in out and out.endswith(KERNEL[1:3])
        assert (await exchange(b"BLAH\r\n\r\n")).startswith(b"HTTP/1.1 400")
        assert (await exchange(b"GET / HTTP/2.0\r\n\r\n")).startswith(b"HTTP/1.1 505")
        assert (await exchange(b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n")).startswith(b"HTTP/1.1 431")
        assert (await exchange(f"GET {k} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc".encode())).startswith(
            b"HTTP/1.1 413"
        )
        # a client that goes away mid-transfer does not disturb the server
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET {URL}/boot-initrd HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await reader.readexactly(1000)
        writer.transport.abort()
        async with w.http() as client:
            assert sha((await client.get(k)).content) == sha(KERNEL)
        await wait_for(lambda: len(w.service.server.conns) == 0, what="connections closed")


async def test_concurrent_clients_get_correct_content(tmp_path):
    """A small boot storm: 200 machines fetch kernel then initrd on one connection each."""
    async with world(tmp_path) as w:
        host, port = w.service.address
        want = {"boot-kernel": sha(KERNEL), "boot-initrd": sha(INITRD)}

        async def machine() -> list[str]:
            reader, writer = await asyncio.open_connection(host, port)
            digests = []
            try:
                for filetype in ("boot-kernel", "boot-initrd"):
                    writer.write(f"GET {URL}/{filetype} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                    head = (await reader.readuntil(b"\r\n\r\n")).decode()
                    assert head.startswith("HTTP/1.1 200"), head
                    length = int(
                        next(
                            line.split(":")[1]
                            for line in head.split("\r\n")
                            if line.lower().startswith("content-length")
                        )
                    )
                    h = hashlib.sha256()
                    left = length
                    while left:
                        chunk = await reader.read(min(left, 1 << 20))
                        assert chunk
                        h.update(chunk)
                        left -= len(chunk)
                    digests.append(h.hexdigest())
            finally:
                writer.close()
            return digests

        results = await asyncio.wait_for(asyncio.gather(*(machine() for _ in range(200))), 120)
        assert all(r == [want["boot-kernel"], want["boot-initrd"]] for r in results)
        assert w.service.server.stats.responses[200] >= 400


async def test_dynamic_handlers(tmp_path):
    async with world(tmp_path) as w:
        seen: list[Request] = []
        script = tmp_path / "loader.efi"
        script.write_bytes(b"L" * 5000)

        async def ipxe(request: Request) -> Response | None:
            seen.append(request)
            if request.subpath == "missing":
                return None
            if request.subpath == "boom":
                raise RuntimeError("bug")
            if request.subpath == "file":
                return Response(file=script, content_type="application/efi")
            await asyncio.sleep(0.01)
            return Response(body=f"#!ipxe\nkernel {URL}/boot-kernel\n".encode(), headers={"X-Mac": request.subpath})

        w.service.add_dynamic("/ipxe/", ipxe)
        async with w.http() as client:
            r = await client.get("/ipxe/52:54:00:12:34:56?arch=x86_64")
            assert r.status_code == 200 and r.text.startswith("#!ipxe") and r.headers["x-mac"] == "52:54:00:12:34:56"
            assert seen[-1].query == "arch=x86_64" and seen[-1].local[0] == "127.0.0.1"
            assert (await client.get("/ipxe/missing")).status_code == 404
            assert (await client.get("/ipxe/boom")).status_code == 500
            r = await client.get("/ipxe/file", headers={"Range": "bytes=10-19"})
            assert r.status_code == 206 and r.content == b"L" * 10
            assert (await client.head("/ipxe/x")).content == b""
            assert (await client.get(f"{URL}/boot-kernel")).status_code == 200  # keep-alive still fine


async def test_status_reports(tmp_path):
    service = RackHttpService(tmp_path / "c", host="127.0.0.1", port=0)
    assert service.status()[0] == "off"
    await service.start()
    try:
        status, info = service.status()
        assert status == "running" and "no image manifest" in info
        taken = service.address[1]
        other = RackHttpService(tmp_path / "d", host="127.0.0.1", port=taken)
        with pytest.raises(OSError):
            await other.start()
        assert other.status()[0] == "dead" and str(taken) in other.status()[1]
        await other.stop()
    finally:
        await service.stop()


async def test_cache_index_survives_a_crash_between_rename_and_index_write(tmp_path):
    async with world(tmp_path) as w:
        pass
    index = tmp_path / "cache" / "index.json"
    data = json.loads(index.read_text())
    del data["files"][sha(KERNEL)]  # as if the rack died right after the rename
    index.write_text(json.dumps(data))
    cache = ImageCache(tmp_path / "cache")
    cache.load()
    assert cache.entry(sha(KERNEL)) is None and cache.entry(sha(INITRD)) is not None
    await cache.verify_pending()
    assert cache.entry(sha(KERNEL)) is not None  # hashed, adopted
    await cache.close()
    assert w.cache.entry(sha(KERNEL)) is not None


# ---------------------------------------------------------------- real clients


async def run(*argv: str) -> tuple[int, bytes]:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out


@pytest.mark.skipif(not needs["curl"], reason="curl not installed")
async def test_curl(tmp_path):
    async with world(tmp_path) as w:
        url = f"{w.base}{URL}/boot-initrd"
        out_file = tmp_path / "initrd"
        code, out = await run("curl", "-sfS", "-o", str(out_file), url)
        assert code == 0, out
        assert sha(out_file.read_bytes()) == sha(INITRD)
        code, out = await run("curl", "-sfS", "-r", "0-99", url)
        assert code == 0 and out == INITRD[:100]
        code, out = await run("curl", "-sfSI", url)
        assert code == 0 and b"Content-Length: %d" % len(INITRD) in out and b'ETag: "' in out
        # resume a partial download (curl -C -)
        out_file.write_bytes(INITRD[:1_000_000])
        code, out = await run("curl", "-sfS", "-C", "-", "-o", str(out_file), url)
        assert code == 0, out
        assert sha(out_file.read_bytes()) == sha(INITRD)
        code, out = await run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-r", f"{len(INITRD)}-", url)
        assert out == b"416"
        # several files on one connection
        code, out = await run(
            "curl",
            "-sfS",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            "-w",
            "%{num_connects} ",
            url,
            f"{w.base}{URL}/boot-kernel",
        )
        assert code == 0 and out.split() == [b"1", b"0"]


@pytest.mark.skipif(not needs["wget"], reason="wget not installed")
async def test_wget(tmp_path):
    async with world(tmp_path) as w:
        target = tmp_path / "kernel"
        code, out = await run("wget", "-q", "-O", str(target), f"{w.base}{URL}/boot-kernel")
        assert code == 0, out
        assert sha(target.read_bytes()) == sha(KERNEL)
        target.write_bytes(KERNEL[:12345])
        code, out = await run("wget", "-q", "-c", "-O", str(target), f"{w.base}{URL}/boot-kernel")
        assert code == 0, out
        assert sha(target.read_bytes()) == sha(KERNEL)


def test_socket_family_helper_binds_ipv6_when_asked():
    from metalplane.rack.http.server import listen_socket

    try:
        sock = listen_socket("::1", 0)
    except OSError:
        pytest.skip("no IPv6 loopback")
    assert sock.family == socket.AF_INET6
    sock.close()


@pytest.mark.skipif(not shutil.which("nginx"), reason="nginx not installed")
async def test_nginx_in_front_serves_the_tree_and_passes_the_rest(tmp_path):
    from metalplane.rack.http.nginx import render_config
    from tests.support.databases import world_traversable_tempdir
    from tests.support.processes import free_port_block

    root = world_traversable_tempdir("mp-nginx-")  # nginx workers run as nobody
    try:
        async with world(root) as w:

            async def hello(request: Request) -> Response:
                return Response(body=b"dynamic " + request.subpath.encode())

            w.service.add_dynamic("/ipxe/", hello)
            port = free_port_block(1, start=41000)
            prefix = root / "nginx"
            prefix.mkdir()
            conf = prefix / "nginx.conf"
            conf.write_text(
                render_config(
                    root / "cache",
                    listen=f"127.0.0.1:{port}",
                    upstream=f"127.0.0.1:{w.service.address[1]}",
                    worker_processes="1",
                    prefix_dir=prefix,
                )
            )
            code, out = await run("nginx", "-t", "-p", str(prefix), "-c", str(conf))
            assert code == 0, out
            proc = await asyncio.create_subprocess_exec(
                "nginx", "-p", str(prefix), "-c", str(conf), "-g", "daemon off;", stderr=asyncio.subprocess.DEVNULL
            )
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                    for _ in range(100):
                        with contextlib.suppress(httpx.TransportError):
                            r = await client.get(f"{URL}/boot-initrd")
                            break
                        await asyncio.sleep(0.05)
                    assert r.status_code == 200 and sha(r.content) == sha(INITRD)
                    assert "nginx" in r.headers["server"]
                    r = await client.get(f"/images/by-sha256/{sha(KERNEL)}", headers={"Range": "bytes=0-9"})
                    assert r.status_code == 206 and r.content == KERNEL[:10]
                    r = await client.get("/ipxe/abc")
                    assert r.status_code == 200 and r.content == b"dynamic abc"
                    assert (await client.get("/images/index.json")).json()["images"][0]["complete"]
                    assert (await client.get(f"/images/{NAME}/amd64/generic/latest/boot-kernel")).content == KERNEL
                    # dropped from the cache: gone from the tree, and metalplane answers 503
                    w.service.resync_delay = w.service._delay = 30
                    assert await w.cache.verify(sha(KERNEL))
                    os.chmod(w.cache.path_of(sha(KERNEL)), 0o644)
                    with open(w.cache.path_of(sha(KERNEL)), "r+b") as f:
                        f.write(b"\0")
                    assert await w.cache.verify(sha(KERNEL)) is False
                    r = await client.get(f"{URL}/boot-kernel")
                    assert r.status_code == 503 and r.headers["server"].startswith("nginx")
            finally:
                proc.terminate()
                await proc.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)
