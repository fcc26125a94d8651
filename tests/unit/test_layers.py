"""Layer rules, checked on what a fresh interpreter actually loads."""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_rack_daemon_loads_no_database_layer_and_nothing_of_the_region():
    """rack/ meets the region only through rpc/: importing the rack daemon (and with it the
    whole contract) must not load SQLAlchemy, psycopg, Alembic or any metalplane.region module."""
    code = (
        "import json, sys, metalplane.rack.daemon, metalplane.rpc.messages, metalplane.rpc.power_schema; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert "metalplane.rack.daemon" in loaded and "metalplane.rpc.messages" in loaded
    forbidden = ("sqlalchemy", "psycopg", "alembic", "metalplane.region")
    assert [m for m in loaded if m.split(".")[0] in forbidden or m.startswith(forbidden)] == []
