"""One log format for every metalplane process."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(process)d %(name)s [%(levelname)s] %(message)s"


def setup_logging(debug: bool = False, prefix: str = "") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(prefix + FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    # Library chatter that would drown ours.
    for noisy in ("sqlalchemy.engine", "websockets", "uvicorn.access", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
