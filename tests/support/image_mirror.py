"""A simplestreams mirror for tests: image files published with metalplane's own
publisher, served over HTTP on 127.0.0.1 (with Range and an optional throttle)."""

from __future__ import annotations

import io
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from metalplane.images.publish import publish_image


class MirrorServer:
    """A simplestreams mirror over HTTP on 127.0.0.1, with Range, an optional
    throttle (bytes per second for files), and a log of the requests."""

    def __init__(self, root: Path, rate: int | None = None):
        self.root = root
        self.rate = rate
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Range")))
                path = (server.root / self.path.lstrip("/")).resolve()
                if server.root.resolve() not in path.parents or not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                start, status = 0, 200
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    status = 206
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                throttle = server.rate if path.suffix != ".json" else None
                step = 64 * 1024
                try:
                    for i in range(0, len(body), step):
                        self.wfile.write(body[i : i + step])
                        if throttle:
                            time.sleep(step / throttle)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def __enter__(self) -> MirrorServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def make_mirror(root: Path, release: str, files: dict[str, bytes], version: str = "20261123.1") -> dict[str, str]:
    """An ephemeral/<release> amd64 image in a mirror; returns {ftype: sha256}."""
    staging = root.parent / f"staging-{release}-{version}"
    staging.mkdir(parents=True, exist_ok=True)
    paths = {}
    for ftype, data in files.items():
        paths[ftype] = staging / ftype
        paths[ftype].write_bytes(data)
    published = publish_image(
        root,
        os_name="ephemeral",
        release=release,
        arch="amd64",
        subarch="generic",
        version=version,
        files=paths,
        title=f"Test {release}",
    )
    return {p.ftype: p.sha256 for p in published}


def publish_stand_in_debian(root: Path, version: str = "20261123.1") -> str:
    """A deployable debian/bookworm amd64 image in a mirror whose root tarball holds one file
    (etc/hostname), not a Debian root: for tests where nothing unpacks it. Its sha256."""
    tarball = root.parent / f"{root.name}-root-tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        info = tarfile.TarInfo("etc/hostname")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"test\n"))
    (published,) = publish_image(
        root,
        os_name="debian",
        release="bookworm",
        arch="amd64",
        subarch="generic",
        version=version,
        files={"root-tgz": tarball},
    )
    return published.sha256
