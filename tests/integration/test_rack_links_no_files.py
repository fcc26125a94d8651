"""The region link's loop opens no file: a rack out of descriptors keeps its loop alive
(issue 12: it re-read `cluster_uuid` on every pass and died on EMFILE)."""

from __future__ import annotations

import asyncio
import sys

from metalplane import __version__
from metalplane.rack.cluster_state import CA_FILE, CLUSTER_FILE, ClusterState
from metalplane.rack.region_links import RegionLinks
from metalplane.rpc.handshake import ClientHello

_watching: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if _watching is not None and event in ("open", "os.open"):
        _watching.append(str(args[0]))


sys.addaudithook(_audit)


def test_cluster_state_is_read_once_and_written_on_change_only(tmp_path):
    (tmp_path / CLUSTER_FILE).write_text("cluster-1\n")
    (tmp_path / CA_FILE).write_text("PEM-1")
    state = ClusterState(tmp_path)
    (tmp_path / CLUSTER_FILE).unlink()  # gone from disk: the rack still knows its cluster
    assert (state.uuid, state.ca_cert) == ("cluster-1", "PEM-1")
    ca_inode = (tmp_path / CA_FILE).stat().st_ino
    state.remember("cluster-1", "PEM-1")  # nothing changed: nothing written
    assert not (tmp_path / CLUSTER_FILE).exists() and (tmp_path / CA_FILE).stat().st_ino == ca_inode
    state.remember("cluster-2", "PEM-2")
    assert (tmp_path / CLUSTER_FILE).read_text() == "cluster-2\n" and state.uuid == "cluster-2"
    assert ClusterState(tmp_path).ca_cert == "PEM-2"
    state.forget()
    assert (state.uuid, state.ca_cert) == (None, None) and not (tmp_path / CA_FILE).exists()


async def test_the_link_loop_opens_no_file(tmp_path):
    global _watching
    (tmp_path / CLUSTER_FILE).write_text("cluster-1\n")
    state = ClusterState(tmp_path)

    def hello() -> ClientHello:
        return ClientHello("rack", "abc123", "rack", __version__, state.uuid)

    async def registration() -> dict:
        return {}

    # No region answers (port 1 refuses): every pass rediscovers and plans, as a lost rack does.
    links = RegionLinks(["http://127.0.0.1:1/MAAS"], "secret", hello, state, handlers={}, registration=registration)
    task = asyncio.ensure_future(links.run())
    await asyncio.sleep(0.3)  # past the client's set-up
    _watching = []
    try:
        await asyncio.sleep(1.6)  # three reconcile passes and more
    finally:
        opened, _watching = _watching, None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert opened == []
