"""The ASGI application: MAAS API 2.0 routes plus the region's own endpoints."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from metalplane.region import validation
from metalplane.region.api import auth
from metalplane.region.api.context import Ctx
from metalplane.region.api.errors import error_response
from metalplane.region.api.framework import API_PREFIX, DEFAULT_MAX_BODY, Handler, api_hash
from metalplane.region.api.params import Params, parse_body, read_body
from metalplane.region.api.proxies import site_of
from metalplane.region.db.transaction import TxLog
from metalplane.region.errors import NotFound, PermissionDenied, RegionError, Unauthenticated, Unavailable
from metalplane.region.services.users import User, user_for_token

log = logging.getLogger(__name__)

JSON = "application/json; charset=utf-8"  # MAAS's JSON emitter; describe/ alone says plain application/json
METHODS = ["GET", "POST", "PUT", "DELETE"]
HASH_HEADER = "X-MAAS-API-Hash"

# While the database is away (a PostgreSQL failover, a restart), a request
# waits for it, retrying with backoff, for about this long before it answers
# 503 with Retry-After. METALPLANE_DB_RETRY_SECONDS overrides it (0: never
# retry). Keep it well below HAProxy's `timeout server` (90 s).
DB_RETRY_SECONDS = 12.0
DB_RETRY_FIRST_DELAY = 0.05
DB_RETRY_MAX_DELAY = 1.0
# Reads: replaying them changes nothing, whatever happened to the first try.
SAFE_METHODS = frozenset({"GET", "HEAD"})
# SQLSTATEs meaning "not now" rather than "wrong": connection exceptions
# (class 08), the server shutting down or starting (57P01-57P03), a session
# that landed on a read-only standby (25006), serialization failures and
# deadlocks (40001, 40P01). The transaction was rolled back in every case.
TRANSIENT_SQLSTATES = frozenset({"25006", "57P01", "57P02", "57P03", "40001", "40P01"})


def db_retry_budget() -> float:
    raw = os.environ.get("METALPLANE_DB_RETRY_SECONDS")
    if raw is None:
        return DB_RETRY_SECONDS
    try:
        return max(float(raw), 0.0)
    except ValueError:
        return DB_RETRY_SECONDS


def database_unavailable(exc: BaseException) -> bool:
    """True when `exc` says the database could not do the work now (not that the work is wrong)."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, OperationalError):
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    return sqlstate.startswith("08") or sqlstate in TRANSIENT_SQLSTATES


class DatabaseRetry:
    """Backoff for one request: 50 ms doubling up to 1 s, within a total budget."""

    def __init__(self, budget: float):
        self.deadline = time.monotonic() + budget
        self.delay = DB_RETRY_FIRST_DELAY
        self.attempts = 1

    async def wait(self) -> bool:
        """Sleep before the next attempt; False when the budget does not allow one."""
        if time.monotonic() + self.delay > self.deadline:
            return False
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, DB_RETRY_MAX_DELAY)
        self.attempts += 1
        return True


def json_body(data: Any) -> bytes:
    """MAAS's JSON emitter: 4-space indent, non-ASCII as UTF-8 (no \\u escapes)."""
    return json.dumps(data, indent=4, ensure_ascii=False, default=str).encode("utf-8")


def json_response(data: Any, status: int = 200) -> Response:
    return Response(json_body(data), status_code=status, media_type=JSON)


def render(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if result is None:
        # MAAS clients expect a Content-Type even on 204.
        return Response(status_code=204, headers={"Content-Type": "text/plain; charset=utf-8"})
    return json_response(result)


async def authenticate(request: Request, db: AsyncEngine) -> User | None:
    credentials = auth.parse_oauth_header(request.headers.get("authorization"))
    if credentials is None:
        return None
    async with db.connect() as conn:
        found = await user_for_token(conn, credentials.consumer_key, credentials.token_key)
    if found is None:
        raise Unauthenticated("Authorization Error: Invalid access token: " + credentials.token_key)
    user, secret = found
    if not auth.signature_matches(credentials, secret):
        raise Unauthenticated("Authorization Error: Invalid signature")
    return user


async def request_params(request: Request, limit: int = DEFAULT_MAX_BODY) -> Params:
    """The query string and the body's parameters. The body is read once, under `limit`
    (413 beyond it), and kept: a request the API runs again reads it from memory."""
    pairs: list[tuple[str, Any]] = list(request.query_params.multi_items())
    if request.method in ("POST", "PUT", "DELETE"):  # libmaas sends DELETE arguments as multipart
        body = getattr(request.state, "body", None)
        if body is None:
            body = await read_body(request.stream(), request.headers.get("content-length"), limit)
            request.state.body = body
            request._body = body  # what request.body() returns from now on (a handler may ask)
        pairs.extend(parse_body(request.headers.get("content-type", ""), body))
    return Params(pairs)


async def with_db_retry(
    request: Request,
    attempt: Callable[[TxLog], Awaitable[Response]],
    unavailable: Callable[[RegionError], Response] = error_response,
) -> Response:
    """Run `attempt`; while the database is away, run it again when that is safe.

    Safe: a read (GET/HEAD), or a write whose every transaction failed
    before its COMMIT was sent (PostgreSQL rolled it back, nothing was
    applied). Otherwise, or once the budget is spent, 503 + Retry-After
    (rendered by `unavailable`: the API's body or the UI's page): each
    action's writes are one transaction, so nothing is half-applied.
    """
    retry: DatabaseRetry | None = None
    while True:
        txlog = TxLog()
        try:
            response = await attempt(txlog)
        except DBAPIError as exc:
            if not database_unavailable(exc):
                raise
            where = f"{request.method} {request.url.path}"
            if txlog.commit_sent and request.method not in SAFE_METHODS:
                log.warning("database lost during COMMIT of %s; outcome unknown, not retried: %s", where, exc.orig)
                return unavailable(
                    Unavailable(
                        "The database connection was lost while committing this change; it may or may not "
                        "have been applied. Check before retrying."
                    )
                )
            if retry is None:
                retry = DatabaseRetry(db_retry_budget())
                log.warning("database unavailable during %s, retrying: %s", where, exc.orig)
            if await retry.wait():
                continue
            log.warning("database still unavailable after %d attempts of %s: %s", retry.attempts, where, exc.orig)
            return unavailable(Unavailable("The database is unavailable; retry shortly."))
        if retry is not None:
            log.info("%s %s succeeded after %d attempts", request.method, request.url.path, retry.attempts)
        return response


def check_path(handler: Handler, path: dict[str, str]) -> None:
    """A URI part that cannot name anything (NUL, control characters, too long) is not
    found, before any query; integer ids are checked where they are read (Ctx.path_int)."""
    for name, value in path.items():
        if not validation.check_path_part(value):
            raise NotFound(handler.model_for(name))


def endpoint_for(handler: Handler):
    async def attempt(request: Request, db: AsyncEngine, txlog: TxLog) -> Response:
        try:
            user: User | None = None
            if handler.max_body > DEFAULT_MAX_BODY:
                # A large body (an upload) is only read for a caller who said who they are and
                # may run the action: a non-admin's call of an admin action (named by the query
                # string's op, as MAAS's clients send it) is refused before its body is read.
                user = await authenticate(request, db)
                if user is None:
                    raise Unauthenticated("Authorization Error: this resource needs an API key (OAuth PLAINTEXT)")
                named = handler.find(request.method, request.query_params.get("op") or None)
                if named is not None and named.admin and not user.is_superuser:
                    raise PermissionDenied("This method is reserved for admin users.")
            # Only admins get a handler's large limit (every large-body action is an admin's).
            limit = handler.max_body if user is not None and user.is_superuser else DEFAULT_MAX_BODY
            params = await request_params(request, limit)  # 400/413 before authentication
            if user is None:
                user = await authenticate(request, db)
            if user is None and not handler.anon:
                raise Unauthenticated("Authorization Error: this resource needs an API key (OAuth PLAINTEXT)")
            action = handler.resolve(request.method, params.str("op", max_length=256) or None)
            check_path(handler, dict(request.path_params))
            ctx = Ctx(request, params, dict(request.path_params), user, db, site_of(request), txlog, handler)
            if action.admin:
                ctx.require_admin()
            return render(await action.func(ctx))
        except RegionError as exc:
            return error_response(exc)

    async def endpoint(request: Request) -> Response:
        db: AsyncEngine = request.app.state.db
        return await with_db_retry(request, lambda txlog: attempt(request, db, txlog))

    endpoint.__name__ = handler.name
    endpoint.handler = handler  # type: ignore[attr-defined]  # region.metrics labels requests with its ops
    return endpoint


async def unknown_endpoint(request: Request) -> Response:
    shown = validation.shown(request.url.path, 200)
    return error_response(NotFound("endpoint", f"Unknown API endpoint: {shown}."))


class ApiHashHeader:
    """X-MAAS-API-Hash on every response under the API prefix (MAAS sends it from every
    handler; clients may compare it to notice an API change)."""

    def __init__(self, app, digest: str):
        self.app = app
        self.header = (HASH_HEADER.lower().encode(), digest.encode())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope.get("path", "").startswith(API_PREFIX):
            return await self.app(scope, receive, send)

        async def with_hash(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        return await self.app(scope, receive, with_hash)


def routes_for(handlers: Iterable[Handler]) -> list[BaseRoute]:
    return [Route(h.full_path, endpoint_for(h), methods=METHODS) for h in handlers]


def fallback_routes() -> list[BaseRoute]:
    """Anything else under the API prefix: MAAS's 404 text, not the framework's."""
    return [Route(API_PREFIX + "{rest:path}", unknown_endpoint, methods=METHODS)]


def build_app(
    db: AsyncEngine,
    handlers: list[Handler],
    extra_routes: list[BaseRoute] | None = None,
    state: dict[str, Any] | None = None,
    lifespan=None,
) -> Starlette:
    digest = api_hash(handlers)
    app = Starlette(
        routes=[*routes_for(handlers), *(extra_routes or []), *fallback_routes()],
        lifespan=lifespan,
        middleware=[Middleware(ApiHashHeader, digest=digest)],
    )
    app.state.db = db
    app.state.handlers = handlers
    app.state.api_hash = digest
    for key, value in (state or {}).items():
        setattr(app.state, key, value)
    return app
