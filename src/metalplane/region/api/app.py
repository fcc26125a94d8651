"""The ASGI application: MAAS API 2.0 routes plus the region's own endpoints."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from metalplane.region.api import auth
from metalplane.region.api.context import Ctx
from metalplane.region.errors import ApiError, NotFound, ServiceUnavailable, Unauthorized
from metalplane.region.api.framework import API_PREFIX, Handler
from metalplane.region.api.params import Params, parse_body
from metalplane.region.services.users import User, user_for_token

log = logging.getLogger(__name__)

JSON = "application/json"
METHODS = ["GET", "POST", "PUT", "DELETE"]


def site_of(request: Request) -> str:
    scheme = request.headers.get("x-forwarded-proto") or request.url.scheme
    host = request.headers.get("x-forwarded-host") or request.headers.get("host") or request.url.netloc
    return f"{scheme}://{host}"


def json_response(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data, default=str), status_code=status, media_type=JSON)


def error_response(exc: ApiError) -> Response:
    """JSON for form errors ({field: [reasons]}), plain text otherwise, as MAAS."""
    if isinstance(exc.body, dict):
        body, content_type = json.dumps(exc.body).encode(), JSON
    else:
        body, content_type = str(exc.body).encode(), "text/plain; charset=utf-8"
    headers = {}
    if exc.retry_after:
        headers["Retry-After"] = str(exc.retry_after)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'OAuth realm="OAuth"'
    return Response(body, status_code=exc.status, media_type=content_type, headers=headers)


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
        raise Unauthorized("Authorization Error: Invalid access token: " + credentials.token_key)
    user, secret = found
    if not auth.signature_matches(credentials, secret):
        raise Unauthorized("Authorization Error: Invalid signature")
    return user


async def request_params(request: Request) -> Params:
    pairs: list[tuple[str, Any]] = list(request.query_params.multi_items())
    if request.method in ("POST", "PUT", "DELETE"):  # libmaas sends DELETE arguments as multipart
        pairs.extend(parse_body(request.headers.get("content-type", ""), await request.body()))
    return Params(pairs)


def endpoint_for(handler: Handler):
    async def endpoint(request: Request) -> Response:
        db: AsyncEngine = request.app.state.db
        try:
            params = await request_params(request)
            user = await authenticate(request, db)
            if user is None and not handler.anon:
                raise Unauthorized("Authorization Error: this resource needs an API key (OAuth PLAINTEXT)")
            action = handler.resolve(request.method, params.str("op") or None)
            ctx = Ctx(request, params, dict(request.path_params), user, db, site_of(request))
            if action.admin:
                ctx.require_admin()
            return render(await action.func(ctx))
        except ApiError as exc:
            return error_response(exc)
        except (OperationalError, DBAPIError) as exc:
            if isinstance(exc, OperationalError) or exc.connection_invalidated:
                log.warning("database unavailable during %s %s: %s", request.method, request.url.path, exc.orig)
                return error_response(ServiceUnavailable("The database is unavailable; retry shortly."))
            raise

    endpoint.__name__ = handler.name
    return endpoint


async def unknown_endpoint(request: Request) -> Response:
    return error_response(NotFound(f"Unknown API endpoint: {request.url.path}."))


def routes_for(handlers: Iterable[Handler]) -> list[BaseRoute]:
    return [Route(h.full_path, endpoint_for(h), methods=METHODS) for h in handlers]


def fallback_routes() -> list[BaseRoute]:
    """Anything else under the API prefix: MAAS's 404 text, not the framework's."""
    return [Route(API_PREFIX + "{rest:path}", unknown_endpoint, methods=METHODS)]


def build_app(db: AsyncEngine, handlers: list[Handler], extra_routes: list[BaseRoute] | None = None,
              state: dict[str, Any] | None = None, lifespan=None) -> Starlette:
    app = Starlette(routes=[*routes_for(handlers), *(extra_routes or []), *fallback_routes()], lifespan=lifespan)
    app.state.db = db
    app.state.handlers = handlers
    for key, value in (state or {}).items():
        setattr(app.state, key, value)
    return app
