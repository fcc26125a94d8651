"""A stand-in for the region's deploy endpoints of the metadata API, and an image server.

For the installer's system test and bench only (the region's deploy states are built
elsewhere): it serves what the installer reads and records what the installer and
the first-boot agent send, so a test can assert on it.

    python -m tests.support.deploy_stub --listen 10.90.0.10:5240 --token T \\
        --config config.json [--user-data FILE] [--image-dir DIR] --record requests.jsonl

- GET  /MAAS/metadata/deploy/config      the --config file (application/json)
- GET  /MAAS/metadata/deploy/user-data   the --user-data file, else 404
- POST /MAAS/metadata/deploy/...         200 "OK" (events, installation, done, booted)
- GET  /images/NAME                      a file of --image-dir (what the rack serves)

Metadata requests need `Authorization: Token T` (else 401, as the region answers).
Every request is appended to --record as one JSON line: {"method", "path", "query",
"auth", "content_type", "body"} (body as text, or base64 under "body_b64" when it is
not UTF-8), written before the answer is sent.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

METADATA = "/MAAS/metadata/"


def make_handler(token: str, config: bytes, user_data: bytes | None, image_dir: Path | None, record: Path):
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _record(self, body: bytes) -> None:
            url = urlsplit(self.path)
            entry = {
                "method": self.command,
                "path": url.path,
                "query": parse_qs(url.query),
                "auth": self.headers.get("Authorization"),
                "content_type": self.headers.get("Content-Type"),
            }
            try:
                entry["body"] = body.decode()
            except UnicodeDecodeError:
                entry["body_b64"] = base64.b64encode(body).decode()
            with lock, open(record, "a") as f:
                f.write(json.dumps(entry) + "\n")

        def _answer(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _authorised(self) -> bool:
            if self.headers.get("Authorization") == f"Token {token}":
                return True
            self._answer(401, b"Unknown or missing machine token.")
            return False

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            self._record(b"")
            if path.startswith("/images/") and image_dir is not None:
                return self._send_file(path.removeprefix("/images/"))
            if not path.startswith(METADATA):
                return self._answer(404, b"not here")
            if not self._authorised():
                return None
            what = path.removeprefix(METADATA)
            if what == "deploy/config":
                return self._answer(200, config, "application/json")
            if what == "deploy/user-data" and user_data is not None:
                return self._answer(200, user_data, "application/octet-stream")
            return self._answer(404, b"not here")

        def _send_file(self, name: str) -> None:
            if "/" in name or name.startswith("."):
                return self._answer(404, b"not here")
            path = image_dir / name
            if not path.is_file():
                return self._answer(404, b"not here")
            size = path.stat().st_size
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            with open(path, "rb") as f:
                shutil.copyfileobj(f, self.wfile, 1 << 20)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._record(body)
            path = urlsplit(self.path).path
            if not path.startswith(METADATA + "deploy/"):
                return self._answer(404, b"not here")
            if self._authorised():
                self._answer(200, b"OK")

    return Handler


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", required=True, metavar="IP:PORT")
    p.add_argument("--token", required=True)
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--user-data", type=Path)
    p.add_argument("--image-dir", type=Path)
    p.add_argument("--record", type=Path, required=True)
    args = p.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    handler = make_handler(
        args.token,
        args.config.read_bytes(),
        args.user_data.read_bytes() if args.user_data else None,
        args.image_dir,
        args.record,
    )
    server = ThreadingHTTPServer((host, int(port)), handler)
    server.daemon_threads = True
    print(f"deploy stub listening on {args.listen} (pid {os.getpid()})", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
