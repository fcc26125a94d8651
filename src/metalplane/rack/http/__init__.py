"""The rack's HTTP boot service (port 5248 as in MAAS): cached images, verified, with sendfile.

- `server.BootHttpServer`: the HTTP/1.1 server (ranges, HEAD, ETag/304, keep-alive,
  dynamic routes via `add_dynamic(prefix, handler)`).
- `service.RackHttpService`: what the rack daemon owns (cache + server + background
  verification and re-sync; `status()` for the "http" service report).
- `nginx.render_config`: a config for nginx in front, serving the cache's symlink tree.

Standalone (benchmarks, manual tests): `python -m metalplane.rack.http --cache DIR
--listen 127.0.0.1:5248 [--workers N]` serves a cache directory as it is on disk.
"""

from metalplane.rack.http.server import BootHttpServer, Handler, Request, Response
from metalplane.rack.http.service import DEFAULT_PORT, RackHttpService

__all__ = ["DEFAULT_PORT", "BootHttpServer", "Handler", "RackHttpService", "Request", "Response"]
