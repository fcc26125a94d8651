"""Script sets and their results (MAAS's ScriptSet/ScriptResult), for node-results and
node-script-results.

A commissioning run is one script set; each script the image ran is one result
with its exit status, runtime and combined output. Statuses are MAAS's.
"""

from __future__ import annotations

import io
import re
import tarfile
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from metalplane.region.db.tables import script_results, script_sets
from metalplane.region.errors import Invalid, NotFound
from metalplane.region.services import nodes as nodes_service
from metalplane.region.services.rows import Row, delete_row, insert_row, rows
from metalplane.region.services.users import User

COMMISSIONING, INSTALLATION, TESTING, RELEASE = 0, 1, 2, 3
RESULT_TYPE_NAMES = {
    COMMISSIONING: "Commissioning",
    INSTALLATION: "Installation",
    TESTING: "Testing",
    RELEASE: "Release",
}
RESULT_TYPE_WORDS = {
    "commission": COMMISSIONING,
    "commissioning": COMMISSIONING,
    "install": INSTALLATION,
    "installation": INSTALLATION,
    "test": TESTING,
    "testing": TESTING,
    "release": RELEASE,
}
CURRENT = {"current-commissioning": COMMISSIONING, "current-installation": INSTALLATION, "current-testing": TESTING}
UNKNOWN = -1
PENDING, RUNNING, PASSED, FAILED, TIMEDOUT, ABORTED, DEGRADED = 0, 1, 2, 3, 4, 5, 6
STATUS_NAMES = {
    UNKNOWN: "Unknown",
    PENDING: "Pending",
    RUNNING: "Running",
    PASSED: "Passed",
    FAILED: "Failed",
    TIMEDOUT: "Timed out",
    ABORTED: "Aborted",
    DEGRADED: "Degraded",
    7: "Installing dependencies",
    8: "Failed installing dependencies",
    9: "Skipped",
    10: "Applying custom network configuration",
    11: "Failed to apply custom network configuration",
}
KILLED_BY_TIMEOUT = 143  # the image's `timeout` sends SIGTERM: 128 + 15
TAR_NAME = re.compile(r".+\.tar(\..+)?")


def result_status(exit_status: int | None) -> int:
    if exit_status is None:
        return RUNNING
    if exit_status == 0:
        return PASSED
    return TIMEDOUT if exit_status == KILLED_BY_TIMEOUT else FAILED


def overall_status(statuses: list[int]) -> int:
    """MAAS's precedence: anything running, then aborted, failed, timed out, degraded; else passed."""
    if not statuses:
        return UNKNOWN
    for status in (RUNNING, PENDING, ABORTED, FAILED, TIMEDOUT, DEGRADED):
        if status in statuses:
            return RUNNING if status == PENDING else status
    return PASSED


def set_status(script_set: Row | None) -> int:
    """A set's status: running until the node said it is done, then its results'."""
    if script_set is None:
        return UNKNOWN
    statuses = [result_status(r["exit_status"]) for r in script_set["results"]]
    if script_set["ended"] is None:
        return RUNNING
    return overall_status(statuses)


def runtime_text(seconds: float | int | None) -> str:
    return "" if seconds is None else str(timedelta(seconds=int(seconds)))


def parse_result_type(value: str) -> int:
    word = value.strip().lower()
    if word.isdigit():
        if int(word) not in RESULT_TYPE_NAMES:
            raise Invalid.field("type", "Invalid result type numeric value.")
        return int(word)
    if word not in RESULT_TYPE_WORDS:
        raise Invalid.field("type", "Invalid result type name")
    return RESULT_TYPE_WORDS[word]


async def start_set(conn: AsyncConnection, node_id: int, result_type: int = COMMISSIONING) -> int:
    """A new run: the node's earlier sets of that type are replaced."""
    await conn.execute(
        delete(script_sets).where(script_sets.c.node_id == node_id, script_sets.c.result_type == result_type)
    )
    return await insert_row(conn, script_sets, node_id=node_id, result_type=result_type)


async def current_set_id(conn: AsyncConnection, node_id: int, result_type: int = COMMISSIONING) -> int | None:
    return (
        await conn.execute(
            select(func.max(script_sets.c.id)).where(
                script_sets.c.node_id == node_id, script_sets.c.result_type == result_type
            )
        )
    ).scalar()


async def ping(conn: AsyncConnection, set_id: int | None) -> None:
    if set_id is not None:
        await conn.execute(update(script_sets).where(script_sets.c.id == set_id).values(last_ping=func.now()))


async def add_result(
    conn: AsyncConnection,
    node_id: int,
    set_id: int | None,
    name: str,
    exit_status: int | None,
    runtime: int | None,
    output: str,
) -> None:
    """One script's result in the set, which is pinged; a runtime the column cannot hold is dropped."""
    await conn.execute(
        insert(script_results).values(
            node_id=node_id,
            name=name,
            exit_status=exit_status,
            script_set_id=set_id,
            runtime=runtime if runtime is not None and 0 <= runtime < 2**31 else None,
            output=output,
        )
    )
    await ping(conn, set_id)


@dataclass(frozen=True)
class RunOutput:
    """A whole run's output as the machine posts it (the installer's, the wipe's)."""

    exit_status: int | None
    runtime: int | None
    output: bytes


async def store_output(
    conn: AsyncConnection, node_id: int, result_type: int, name: str, run: RunOutput, limit: int = 4 * 1024 * 1024
) -> None:
    """`run` as the `name` result of the node's current set of `result_type` (started if
    there is none): its last `limit` bytes, as text."""
    set_id = await current_set_id(conn, node_id, result_type)
    if set_id is None:
        set_id = await start_set(conn, node_id, result_type)
    text = run.output[-limit:].decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    await add_result(conn, node_id, set_id, name, run.exit_status, run.runtime, text)


async def end_set(conn: AsyncConnection, set_id: int | None) -> None:
    if set_id is not None:
        await conn.execute(
            update(script_sets)
            .where(script_sets.c.id == set_id)
            .values(ended=func.now(), last_ping=func.now(), updated=func.now())
        )


async def _sets_with_results(conn: AsyncConnection, query) -> list[Row]:
    sets = rows(await conn.execute(query.order_by(script_sets.c.id)))
    results: dict[int, list[Row]] = {}
    for r in await conn.execute(
        select(script_results)
        .where(script_results.c.script_set_id.in_([s["id"] for s in sets]))
        .order_by(script_results.c.name)
    ):
        results.setdefault(r.script_set_id, []).append(dict(r._mapping))
    return [{**s, "results": results.get(s["id"], [])} for s in sets]


async def node_sets(
    conn: AsyncConnection, system_id: str, viewer: User | None, result_type: str | None
) -> tuple[Row, list[Row]]:
    """`node-script-results read`: the node and its script sets (optionally of one type)."""
    node = await nodes_service.get_node(conn, system_id, viewer=viewer)
    query = select(script_sets).where(script_sets.c.node_id == node["id"])
    if result_type is not None:
        query = query.where(script_sets.c.result_type == parse_result_type(result_type))
    return node, await _sets_with_results(conn, query)


async def node_set(conn: AsyncConnection, system_id: str, ident: str, viewer: User | None) -> tuple[Row, Row]:
    """One set by id or `current-commissioning`/`current-testing`/`current-installation`."""
    node = await nodes_service.get_node(conn, system_id, viewer=viewer)
    if ident in CURRENT:
        set_id = await current_set_id(conn, node["id"], CURRENT[ident])
        if set_id is None:
            raise Invalid({"id": [f"No {ident.replace('-', ' ')} script set exists for this node."]})
    elif ident.isdigit() and int(ident) < 2**31:
        set_id = int(ident)
    else:
        raise Invalid(
            {
                "id": [
                    f'Unknown id "{ident}" must be current-commissioning, current-testing, '
                    "current-installation, or the id number of a specific result."
                ]
            }
        )
    found = await _sets_with_results(
        conn, select(script_sets).where(script_sets.c.id == set_id, script_sets.c.node_id == node["id"])
    )
    if not found:
        raise NotFound("ScriptSet")
    return node, found[0]


async def delete_set(conn: AsyncConnection, system_id: str, ident: str) -> None:
    _, script_set = await node_set(conn, system_id, ident, None)
    await delete_row(conn, script_sets, script_set["id"])


def filter_results(results: list[Row], filters: list[str] | None) -> list[Row]:
    if not filters:
        return results
    return [r for r in results if any(f == r["name"] or (f.isdigit() and int(f) == r["id"]) for f in filters)]


def download(node: Row, script_set: Row, filters: list[str] | None, output: str, filetype: str) -> bytes:
    """MAAS's download: one result's output as is, several as a text with headings, or a tar.xz.
    The image sends stdout and stderr combined, so `stdout` is the combined output and
    `stderr`/`result` are empty."""
    files: dict[str, bytes] = {}
    for r in filter_results(script_set["results"], filters):
        content = r["output"].encode() if output in ("combined", "stdout", "all") else b""
        suffix = {"stdout": ".out", "stderr": ".err", "result": ".yaml"}.get(output, "")
        files[r["name"] if TAR_NAME.search(r["name"]) else f"{r['name']}{suffix}"] = content
    if filetype == "txt" and len(files) == 1:
        return next(iter(files.values()))
    if filetype == "txt":
        out = io.BytesIO()
        for name, content in files.items():
            dashes = "-" * int((80.0 - (2 + len(name))) / 2)
            out.write(f"{dashes} {name} {dashes}\n".encode())
            out.write(content + b"\n")
        return out.getvalue()
    if filetype == "tar.xz":
        out = io.BytesIO()
        root = f"{node['hostname']}-{RESULT_TYPE_NAMES[script_set['result_type']].lower()}-{script_set['id']}"
        with tarfile.open(mode="w:xz", fileobj=out) as tar:
            for name, content in files.items():
                info = tarfile.TarInfo(name=f"{root}/{name}")
                info.size, info.mode = len(content), 0o644
                tar.addfile(info, io.BytesIO(content))
        return out.getvalue()
    raise Invalid({"filetype": [f'Unknown filetype "{filetype}" must be txt or tar.xz']})


async def node_results(
    conn: AsyncConnection, viewer: User | None, system_ids: list[str], names: list[str], result_type: int | None
) -> list[dict[str, Any]]:
    """`node-results read` (MAAS 2.0's commissioning results): finished results of each
    node's current sets."""
    shown = await nodes_service.list_nodes(conn, viewer=viewer, system_ids=system_ids or None)
    by_id = {n["id"]: n for n in shown}
    sets = await nodes_service.current_script_sets(conn, list(by_id))
    wanted = [
        s
        for per_node in sets.values()
        for s in per_node.values()
        if result_type is None or s["result_type"] == result_type
    ]
    full = await _sets_with_results(conn, select(script_sets).where(script_sets.c.id.in_([s["id"] for s in wanted])))
    out = []
    for s in full:
        for r in s["results"]:
            if r["exit_status"] is None or (names and r["name"] not in names):
                continue
            out.append({**r, "result_type": s["result_type"], "system_id": by_id[s["node_id"]]["system_id"]})
    return out
