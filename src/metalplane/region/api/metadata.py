"""The metadata API the ephemeral image talks to (contract: docs/boot.md).

Enlistment is anonymous, as in MAAS; commissioning calls carry the machine's
token (`Authorization: Token ...`). Errors are 4xx with a plain-text reason,
which the image does not retry.
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
from metalplane.region.errors import Invalid, Refused, RegionError, Unauthenticated
from metalplane.region.services import commissioning

log = logging.getLogger("metalplane.region.metadata")
PREFIX = "/MAAS/metadata/"


def metadata_url(maas_url: str) -> str:
    return maas_url.rstrip("/") + "/metadata/"


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
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
    await commissioning.store_script(conn, machine, name, exit_status, await request.body(),
                                     int(runtime) if runtime.isdigit() else None)
    return PlainTextResponse("OK")


async def done(request: Request, conn) -> Response:
    machine = await _machine(request, conn)
    body = await _json(request)
    failed_scripts = body.get("failed_scripts") or []
    if not isinstance(failed_scripts, list):
        raise Invalid.field("failed_scripts", "Expected a list of script names.")
    failed = [str(n) for n in failed_scripts]
    await commissioning.finish(conn, machine, str(body.get("result", "failed")), failed)
    log.info("machine %s finished commissioning: %s", machine["system_id"], body.get("result"))
    return PlainTextResponse("OK")


def metadata_routes() -> list[BaseRoute]:
    return [
        Route(PREFIX + "enlist", _endpoint(enlist), methods=["POST"]),
        Route(PREFIX + "commission/facts", _endpoint(facts), methods=["POST"]),
        Route(PREFIX + "commission/scripts", _endpoint(scripts), methods=["GET"]),
        Route(PREFIX + "commission/scripts/{name}", _endpoint(script), methods=["GET", "POST"]),
        Route(PREFIX + "commission/done", _endpoint(done), methods=["POST"]),
    ]
