"""Build the ephemeral image (Debian kernel .deb + busybox-static + /init) and boot it in qemu.

The kernel .deb is fetched once with `apt-get download` into $METALPLANE_CACHE_DIR
(default /var/cache/metalplane) and reused. Two boots, under TCG (/dev/kvm hangs here):
one commissions against a fake metadata API on 127.0.0.1 (qemu's user network reaches it
as 10.0.2.2) and checks every request of the contract in docs/boot.md; one has no NIC
at all and must say so and power off.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from metalplane.images.build import BuildError, build_ephemeral, qemu_command
from metalplane.images.simplestreams import INDEX_PATH, parse_products, product_paths

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="qemu-system-x86 not installed"),
    pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb not installed"),
    pytest.mark.timeout(600),
]

BOOT_TIMEOUT = 240  # TCG on a busy 2-core host; a boot normally takes 8-15 s
MAC = "52:54:00:12:34:56"


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    out = tmp_path_factory.mktemp("mirror")
    try:
        return build_ephemeral(out, version="20261123.1", release="bookworm")
    except BuildError as exc:
        pytest.fail(f"could not build the ephemeral image: {exc}")


class FakeMetadata:
    """Records what the image sends; serves one region script; 200 to everything else."""

    def __init__(self):
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                outer.requests.append({"method": "GET", "path": self.path, "auth": self.headers.get("Authorization")})
                path = urlsplit(self.path).path
                if path == "/MAAS/metadata/commission/scripts":
                    self._answer(200, b"region-check\n", "text/plain")
                elif path == "/MAAS/metadata/commission/scripts/region-check":
                    self._answer(200, b"#!/bin/sh\necho from the region\nexit 3\n", "text/plain")
                else:
                    self._answer(404, b"not here", "text/plain")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append(
                    {
                        "method": "POST",
                        "path": self.path,
                        "body": body,
                        "auth": self.headers.get("Authorization"),
                        "type": self.headers.get("Content-Type"),
                    }
                )
                self._answer(200, b"{}")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def __enter__(self) -> FakeMetadata:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def posts(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == "POST" and urlsplit(r["path"]).path == path]


def boot(image, append: str, extra: list[str], log: Path) -> str:
    """Boot to power-off; the console (serial) output."""
    args = qemu_command(image.path("boot-kernel"), image.path("boot-initrd"), append) + extra
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        try:
            proc.wait(BOOT_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"the VM did not power off within {BOOT_TIMEOUT}s:\n{log.read_text(errors='replace')[-3000:]}")
    return log.read_text(errors="replace")


def test_the_build_is_a_simplestreams_mirror(image):
    index = json.loads((image.out / INDEX_PATH).read_text())
    (path,) = product_paths(index)
    (stream,) = parse_products(path, json.loads((image.out / path).read_text()))
    assert (stream.name, stream.architecture, stream.version) == ("ephemeral/bookworm", "amd64/generic", "20261123.1")
    assert {i.ftype for i in stream.items} == {"boot-kernel", "boot-initrd"}
    assert {"virtio_net.ko", "virtio_blk.ko", "virtio_pci.ko"} <= set(image.modules)
    assert image.path("boot-initrd").stat().st_size < 8 << 20


def test_commissioning_boot_follows_the_contract(image, tmp_path):
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"")
    with open(disk, "r+b") as f:
        f.truncate(32 << 20)
    with FakeMetadata() as meta:
        console = boot(
            image,
            f"console=ttyS0 quiet mp_mode=commission token=secret-token "
            f"metadata_url=http://10.0.2.2:{meta.port}/MAAS/metadata BOOTIF=01-{MAC.replace(':', '-')}",
            [
                "-netdev",
                "user,id=n0",
                "-device",
                f"virtio-net-pci,netdev=n0,mac={MAC}",
                "-drive",
                f"file={disk},if=none,id=d0,format=raw",
                "-device",
                "virtio-blk-pci,drive=d0,serial=MPDISK1",
            ],
            tmp_path / "console.log",
        )
    assert "metalplane: network up on eth0" in console, console[-3000:]
    assert all(r["auth"] == "Token secret-token" for r in meta.requests), meta.requests
    (facts,) = meta.posts("/MAAS/metadata/commission/facts")
    assert facts["type"] == "application/json"
    data = json.loads(facts["body"])
    assert (data["cpu_count"], data["boot_mac"], data["boot_method"], data["firmware"]) == (1, MAC, "pxe", "bios")
    assert 300 < data["memory_mib"] <= 512
    assert data["disks"] == [
        {
            "name": "vda",
            "size_bytes": 32 << 20,
            "model": "",
            "serial": "MPDISK1",
            "rotational": True,
            "removable": False,
            "partitions": [],
        }
    ]
    assert data["interfaces"] == [
        {"name": "eth0", "mac": MAC, "driver": "virtio_net", "link_up": True, "speed_mbps": -1}
    ]
    assert data["architecture"] == "amd64/generic" and data["image"]["version"] == "20261123.1"

    scripts = {
        urlsplit(r["path"]).path.rsplit("/", 1)[1]: r
        for r in meta.requests
        if r["method"] == "POST" and "/commission/scripts/" in r["path"]
    }
    assert list(scripts) == [
        "00-cpuinfo",
        "10-meminfo",
        "20-block-devices",
        "30-network",
        "40-pci-devices",
        "90-dmesg",
        "region-check",
    ]
    for name, request in scripts.items():
        query = parse_qs(urlsplit(request["path"]).query)
        assert query["exit_status"] == (["3"] if name == "region-check" else ["0"]), name
        assert request["type"] == "text/plain; charset=utf-8"
    assert b"vda size=33554432" in scripts["20-block-devices"]["body"]
    assert scripts["region-check"]["body"] == b"from the region\n"
    (done,) = meta.posts("/MAAS/metadata/commission/done")
    assert json.loads(done["body"]) == {
        "result": "failed",
        "failed_scripts": ["region-check"],
        "message": "scripts failed: region-check",
    }
    assert "metalplane: powering off" in console and "reboot: Power down" in console


def test_without_a_network_it_says_so_and_powers_off(image, tmp_path):
    console = boot(
        image,
        "console=ttyS0 quiet mp_mode=enlist metadata_url=http://10.0.2.2:9/MAAS/metadata/",
        ["-nic", "none"],
        tmp_path / "console.log",
    )
    assert "metalplane: mode=enlist metadata_url=http://10.0.2.2:9/MAAS/metadata/" in console, console[-3000:]
    assert "metalplane: NO NETWORK: this machine has no network interface" in console
    assert "metalplane: finished: FAILED" in console
    assert "reboot: Power down" in console


def _manifest(config) -> dict:
    from metalplane.region.bootstrap import run_db
    from metalplane.region.services.boot_resources import manifest

    return run_db(config, manifest)


def test_the_build_imports_into_a_region_and_is_served(image, region):
    import httpx

    job = region.import_mirror(image.out)
    assert job["state"] == "done", job
    (entry,) = _manifest(region.config)["images"]
    assert (entry["name"], entry["architecture"], entry["subarch"], entry["version"]) == (
        "ephemeral/bookworm",
        "amd64",
        "generic",
        "20261123.1",
    )
    for f in image.files:
        served = httpx.get(region.url.rstrip("/").removesuffix("/MAAS") + entry["files"][f.ftype]["path"])
        assert served.status_code == 200 and served.content == (image.out / f.path).read_bytes()


def test_the_build_uploads_through_the_api(image, region, tmp_path, monkeypatch):
    from metalplane.cli.images_cmd import upload_build
    from metalplane.cli.profiles import ProfileStore

    monkeypatch.setenv("METALPLANE_PROFILES", str(tmp_path / "profiles.json"))
    with ProfileStore().editing() as profiles:
        profiles["test"] = {
            "name": "test",
            "url": region.url + "api/2.0/",
            "credentials": region.api_key.split(":"),
            "description": {},
            "cacerts": None,
        }
    lines: list[str] = []
    assert upload_build("test", image, lines.append) == 0
    assert any("boot-initrd: uploaded" in line for line in lines), lines
    (entry,) = _manifest(region.config)["images"]
    assert {k: v["sha256"] for k, v in entry["files"].items()} == {f.ftype: f.sha256 for f in image.files}
    lines.clear()
    assert upload_build("test", image, lines.append) == 0  # the same bytes again: nothing to send
    assert sum("already stored" in line for line in lines) == 2, lines
