"""JSON shapes of a user's keys (MAAS's SSHKeyHandler and SSLKeyHandler fields)."""

from __future__ import annotations

from metalplane.region.api.render import Row, uri
from metalplane.region.services.sshkeys import keysource


def sshkey(k: Row) -> Row:
    return {
        "id": k["id"],
        "key": k["key"],
        "keysource": keysource(k),
        "resource_uri": uri(f"account/prefs/sshkeys/{k['id']}/"),
    }


def sslkey(k: Row) -> Row:
    return {"id": k["id"], "key": k["key"], "resource_uri": uri(f"account/prefs/sslkeys/{k['id']}/")}
