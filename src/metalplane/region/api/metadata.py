"""The metadata API the ephemeral image talks to (contract: docs/boot.md).

Enlistment is anonymous, as in MAAS; commissioning and deploy calls carry the
machine's token (`Authorization: Token ...`). Errors are 4xx with a plain-text
reason, which the image does not retry. Bodies are read up to a bound and refused
(400) beyond it, before anything is parsed.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from metalplane.region.api.errors import plain_text, status_of
from metalplane.region.db.transaction import transaction
from metalplane.region.errors import Refused, RegionError, Unauthenticated
from metalplane.region.services import commissioning, deployment

log = logging.getLogger("metalplane.region.metadata")
PREFIX = "/MAAS/metadata/"
MAX_JSON = 1024 * 1024  # a report is small; the hardware facts are the biggest
MAX_OUTPUT_BODY = 8 * 1024 * 1024  # a script's or the installer's output (kept: its last 4 MiB)


def metadata_url(maas_url: str) -> str:
    return maas_url.rstrip("/") + "/metadata/"


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused past `limit` bytes (read no further than that)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Refused(f"The body is larger than {limit} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(f"The body is larger than {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await _body(request, MAX_JSON) or b"{}")
    except ValueError:
        raise Refused("The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise Refused("Expected a JSON object.")
    return body


async def _machine(request: Request, conn) -> dict[str, Any]:
    header = request.headers.get("authorization", "")
    token = header[len("Token "):].strip() if header.startswith("Token ") else ""
    machine = await commissioning.node_for_token(conn, token) if token else None
    if machine is None:
        raise Unauthenticated("Unknown or missing machine token.")
    return machine


def _endpoint(work):
    async def endpoint(request: Request) -> Response:
        try:
            state = request.app.state
            async with transaction(state.db, getattr(state, "config", None)) as conn:
                return await work(request, conn)
        except RegionError as exc:
            return PlainTextResponse(plain_text(exc), status_code=status_of(exc))

    return endpoint


async def enlist(request: Request, conn) -> Response:
    machine = await commissioning.enlist(conn, await _json(request))
    log.info("machine %s enlisted (%s)", machine["system_id"], machine["hostname"])
    return JSONResponse({"system_id": machine["system_id"], "hostname": machine["hostname"]})


async def facts(request: Request, conn) -> Response:
    await commissioning.store_facts(conn, await _machine(request, conn), await _json(request))
    return PlainTextResponse("OK")


async def scripts(request: Request, conn) -> Response:
    await _machine(request, conn)
    return PlainTextResponse("".join(f"{name}\n" for name in await commissioning.list_scripts(conn)))


async def script(request: Request, conn) -> Response:
    machine = await _machine(request, conn)
    name = request.path_params["name"]
    if request.method == "GET":
        return PlainTextResponse(await commissioning.get_script(conn, name))
    try:
        exit_status = int(request.query_params.get("exit_status", ""))
    except ValueError:
        exit_status = None
    runtime = request.query_params.get("runtime", "")
    await commissioning.store_script(conn, machine, name, exit_status, await _body(request, MAX_OUTPUT_BODY),
                                     int(runtime) if runtime.isdigit() else None)
    return PlainTextResponse("OK")


async def done(request: Request, conn) -> Response:
    machine = await _machine(request, conn)
    body = await _json(request)
    failed = [str(n) for n in body.get("failed_scripts") or []]
    await commissioning.finish(conn, machine, str(body.get("result", "failed")), failed)
    log.info("machine %s finished commissioning: %s", machine["system_id"], body.get("result"))
    return PlainTextResponse("OK")


def _query_int(request: Request, name: str) -> int | None:
    text = request.query_params.get(name, "")
    try:
        return int(float(text)) if text else None
    except ValueError:
        raise Refused(f"{name} must be a number.") from None


async def deploy_config(request: Request, conn) -> Response:
    return JSONResponse(await deployment.config_for(conn, await _machine(request, conn)))


async def deploy_user_data(request: Request, conn) -> Response:
    data = await deployment.user_data_of(conn, await _machine(request, conn))
    if data is None:
        return PlainTextResponse("No user data.", status_code=404)
    return Response(data, media_type="application/octet-stream")


async def deploy_events(request: Request, conn) -> Response:
    machine = await _machine(request, conn)
    await deployment.record_step(conn, machine, await _json(request))
    return PlainTextResponse("OK")


async def deploy_installation(request: Request, conn) -> Response:
    machine = await _machine(request, conn)
    await deployment.store_installation(conn, machine, _query_int(request, "exit_status"),
                                        _query_int(request, "runtime"), await _body(request, MAX_OUTPUT_BODY))
    return PlainTextResponse("OK")


async def deploy_done(request: Request, conn) -> Response:
    machine = await _machine(request, conn)
    body = await _json(request)
    await deployment.finish_install(conn, machine, body)
    log.info("machine %s: installer finished: %s", machine["system_id"], body.get("result"))
    return PlainTextResponse("OK")


async def deploy_booted(request: Request, conn) -> Response:
    machine = await _machine(request, conn)
    await deployment.booted(conn, machine, await _json(request))
    log.info("machine %s deployed: booted from its disk", machine["system_id"])
    return PlainTextResponse("OK")


def metadata_routes() -> list[BaseRoute]:
    return [
        Route(PREFIX + "enlist", _endpoint(enlist), methods=["POST"]),
        Route(PREFIX + "commission/facts", _endpoint(facts), methods=["POST"]),
        Route(PREFIX + "commission/scripts", _endpoint(scripts), methods=["GET"]),
        Route(PREFIX + "commission/scripts/{name}", _endpoint(script), methods=["GET", "POST"]),
        Route(PREFIX + "commission/done", _endpoint(done), methods=["POST"]),
        Route(PREFIX + "deploy/config", _endpoint(deploy_config), methods=["GET"]),
        Route(PREFIX + "deploy/user-data", _endpoint(deploy_user_data), methods=["GET"]),
        Route(PREFIX + "deploy/events", _endpoint(deploy_events), methods=["POST"]),
        Route(PREFIX + "deploy/installation", _endpoint(deploy_installation), methods=["POST"]),
        Route(PREFIX + "deploy/done", _endpoint(deploy_done), methods=["POST"]),
        Route(PREFIX + "deploy/booted", _endpoint(deploy_booted), methods=["POST"]),
    ]
