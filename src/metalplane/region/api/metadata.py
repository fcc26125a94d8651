"""The metadata API the ephemeral image talks to (contract: docs/boot.md).

Enlistment is anonymous, as in MAAS; a commissioning machine first exchanges
the enrolment credential its boot config carried for its token (`enrol`,
services/enrolment.py), then every call carries the token (`Authorization:
Token ...`). Errors are 4xx with a plain-text reason, which the image does not
retry.

Nothing here costs more than its bounded input: each route reads at most its
body limit (413 past it, counted as the bytes arrive, before any of it is
parsed), holds no database connection while a body arrives, checks a token
before reading a large body, and checks every value (services/reports.py)
before it is looked up or written.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from metalplane.region.api.errors import plain_text, status_of
from metalplane.region.api.proxies import request_client
from metalplane.region.db.transaction import Work, transaction
from metalplane.region.errors import Refused, RegionError, Unauthenticated
from metalplane.region.services import commissioning, deployment, enrolment, erasing, lifecycle, reports, rescue
from metalplane.region.services.rows import Row
from metalplane.region.services.script_results import RunOutput

log = logging.getLogger("metalplane.region.metadata")
PREFIX = "/MAAS/metadata/"

# Bodies each route reads at most (bytes).
ENLIST_BODY = 64 * 1024
FACTS_BODY = 1024 * 1024
DONE_BODY = 64 * 1024
SCRIPT_BODY = reports.MAX_SCRIPT_OUTPUT
DEPLOY_REPORT_BODY = 64 * 1024  # deploy/events, done, booted (booted carries user_data's last 64 KiB)
INSTALL_LOG_BODY = 8 * 1024 * 1024  # the installer's output (its last 4 MiB are kept)
MAX_CREDENTIAL = 128  # tokens and enrolment credentials are 32 characters


class BodyTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"The request body is larger than this endpoint accepts ({limit} bytes).")


def metadata_url(maas_url: str) -> str:
    return maas_url.rstrip("/") + "/metadata/"


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it is known to pass `limit`: from Content-Length
    before a byte is read, else while it streams in."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isascii() or not declared.isdigit():
            raise Refused("Content-Length is not a number.")
        if int(declared) > limit:
            raise BodyTooLarge(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    raw = await read_body(request, limit)
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested past Python's stack
        raise Refused("The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise Refused("Expected a JSON object.")
    return body


def credential(request: Request, scheme: str) -> str:
    """`Authorization: <scheme> <value>`'s value; '' when absent or not plausible."""
    header = request.headers.get("authorization", "")
    value = header[len(scheme) + 1 :].strip() if header.startswith(scheme + " ") else ""
    return value if 0 < len(value) <= MAX_CREDENTIAL else ""


async def machine_for(request: Request, conn: Any) -> dict[str, Any]:
    token = credential(request, "Token")
    machine = await commissioning.node_for_token(conn, token) if token else None
    if machine is None:
        raise Unauthenticated("Unknown or missing machine token.")
    return machine


async def authenticated_first(request: Request) -> None:
    """Check the token before a large body is read (no transaction held meanwhile)."""
    async with request.app.state.db.connect() as conn:
        await machine_for(request, conn)


def tx(request: Request):
    state = request.app.state
    return transaction(state.db, getattr(state, "config", None))


def endpoint(work: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def answer(request: Request) -> Response:
        try:
            return await work(request)
        except BodyTooLarge as exc:
            return PlainTextResponse(str(exc), status_code=413, headers={"Connection": "close"})
        except RegionError as exc:
            return PlainTextResponse(plain_text(exc), status_code=status_of(exc))

    return answer


async def enlist(request: Request) -> Response:
    report = reports.enlistment(await read_json(request, ENLIST_BODY))
    async with tx(request) as conn:
        machine = await commissioning.enlist(conn, report)
    log.info("machine %s enlisted (%s) from %s", machine["system_id"], machine["hostname"], request_client(request))
    return JSONResponse({"system_id": machine["system_id"], "hostname": machine["hostname"]})


async def enrol(request: Request) -> Response:
    """The token, for the enrolment credential the boot config carried (once, from its address)."""
    secret, client = credential(request, "Enrol"), request_client(request)
    try:
        async with tx(request) as conn:
            token = await enrolment.exchange(conn, secret, client)
    except RegionError as exc:
        log.warning("enrolment refused for %s: %s", client, plain_text(exc))
        raise
    log.info("enrolment credential exchanged for a metadata token by %s", client)
    return PlainTextResponse(token)


async def facts(request: Request) -> Response:
    await authenticated_first(request)
    report = reports.facts(await read_json(request, FACTS_BODY))
    async with tx(request) as conn:
        await commissioning.store_facts(conn, await machine_for(request, conn), report)
    return PlainTextResponse("OK")


async def scripts(request: Request) -> Response:
    async with tx(request) as conn:
        await machine_for(request, conn)
        names = await commissioning.list_scripts(conn)
    return PlainTextResponse("".join(f"{name}\n" for name in names))


async def script(request: Request) -> Response:
    name = reports.script_name(request.path_params["name"])
    if request.method == "GET":
        async with tx(request) as conn:
            await machine_for(request, conn)
            return PlainTextResponse(await commissioning.get_script(conn, name))
    exit_status = reports.exit_status(request.query_params.get("exit_status"))
    await authenticated_first(request)
    runtime = reports.runtime(request.query_params.get("runtime"))
    output = reports.script_output(await read_body(request, SCRIPT_BODY))
    async with tx(request) as conn:
        await commissioning.store_script(conn, await machine_for(request, conn), name, exit_status, output, runtime)
    return PlainTextResponse("OK")


async def done(request: Request) -> Response:
    await authenticated_first(request)
    outcome = reports.outcome(await read_json(request, DONE_BODY))
    async with tx(request) as conn:
        machine = await machine_for(request, conn)
        await commissioning.finish(conn, machine, outcome)
    log.info("machine %s finished commissioning: %s", machine["system_id"], "ok" if outcome.ok else "failed")
    return PlainTextResponse("OK")


async def deploy_config(request: Request) -> Response:
    async with tx(request) as conn:
        return JSONResponse(await deployment.config_for(conn, await machine_for(request, conn)))


async def deploy_user_data(request: Request) -> Response:
    async with tx(request) as conn:
        data = await deployment.user_data_of(conn, await machine_for(request, conn))
    if data is None:
        return PlainTextResponse("No user data.", status_code=404)
    return Response(data, media_type="application/octet-stream")


DeployRecord = Callable[[AsyncConnection, Row, Row], Awaitable[None]]


async def _deploy_report(request: Request, record: DeployRecord) -> tuple[Row, Row]:
    """The calling machine's deployment report (a JSON body), recorded by `record`:
    (the machine, the report)."""
    await authenticated_first(request)
    body = await read_json(request, DEPLOY_REPORT_BODY)
    async with tx(request) as conn:
        machine = await machine_for(request, conn)
        await record(conn, machine, body)
    return machine, body


async def deploy_events(request: Request) -> Response:
    await _deploy_report(request, deployment.record_step)
    return PlainTextResponse("OK")


def run_output(
    store: Callable[[AsyncConnection, Row, RunOutput], Awaitable[None]],
) -> Callable[[Request], Awaitable[Response]]:
    """A POST of a run's whole output (?exit_status=N&runtime=S, the output as the body)."""

    async def receive(request: Request) -> Response:
        exit_status = reports.exit_status(request.query_params.get("exit_status"))
        runtime = reports.runtime(request.query_params.get("runtime"))
        await authenticated_first(request)
        output = await read_body(request, INSTALL_LOG_BODY)
        async with tx(request) as conn:
            await store(conn, await machine_for(request, conn), RunOutput(exit_status, runtime, output))
        return PlainTextResponse("OK")

    return receive


def environment_report(step: DeployRecord, said: str) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint of one report of the ephemeral environment (or of a deployed machine's first
    boot): its JSON body given to `step` with the machine, logged as `said`."""

    async def endpoint(request: Request) -> Response:
        machine, body = await _deploy_report(request, step)
        log.info(said, machine["system_id"], body.get("result"))
        return PlainTextResponse("OK")

    return endpoint


deploy_done = environment_report(deployment.finish_install, "machine %s: installer finished: %s")
deploy_booted = environment_report(deployment.booted, "machine %s: booted from its disk: %s")


async def erase_config(request: Request) -> Response:
    async with tx(request) as conn:
        return JSONResponse(erasing.config_for(await machine_for(request, conn)))


async def erase_done(request: Request) -> Response:
    """The wipe's outcome; done: the machine is powered off through its BMC and released."""
    await authenticated_first(request)
    body = await read_json(request, DEPLOY_REPORT_BODY)
    async with tx(request) as conn:
        machine = await machine_for(request, conn)
        releasing = await erasing.finish(conn, machine, body)
    log.info("machine %s: disk erasing finished: %s", machine["system_id"], body.get("result"))
    if releasing is not None:
        state = request.app.state
        work = Work(state.db, getattr(state, "config", None))
        await lifecycle.power_off_and_finish(work, getattr(state, "rpc", None), releasing)
    return PlainTextResponse("OK")


rescue_booted = environment_report(rescue.booted, "machine %s: rescue environment reported: %s")


def metadata_routes() -> list[BaseRoute]:
    return [
        Route(PREFIX + "enlist", endpoint(enlist), methods=["POST"]),
        Route(PREFIX + "enrol", endpoint(enrol), methods=["POST"]),
        Route(PREFIX + "commission/facts", endpoint(facts), methods=["POST"]),
        Route(PREFIX + "commission/scripts", endpoint(scripts), methods=["GET"]),
        Route(PREFIX + "commission/scripts/{name}", endpoint(script), methods=["GET", "POST"]),
        Route(PREFIX + "commission/done", endpoint(done), methods=["POST"]),
        Route(PREFIX + "deploy/config", endpoint(deploy_config), methods=["GET"]),
        Route(PREFIX + "deploy/user-data", endpoint(deploy_user_data), methods=["GET"]),
        Route(PREFIX + "deploy/events", endpoint(deploy_events), methods=["POST"]),
        Route(PREFIX + "deploy/installation", endpoint(run_output(deployment.store_installation)), methods=["POST"]),
        Route(PREFIX + "deploy/done", endpoint(deploy_done), methods=["POST"]),
        Route(PREFIX + "deploy/booted", endpoint(deploy_booted), methods=["POST"]),
        Route(PREFIX + "erase/config", endpoint(erase_config), methods=["GET"]),
        Route(PREFIX + "erase/output", endpoint(run_output(erasing.store_output)), methods=["POST"]),
        Route(PREFIX + "erase/done", endpoint(erase_done), methods=["POST"]),
        Route(PREFIX + "rescue/booted", endpoint(rescue_booted), methods=["POST"]),
    ]
