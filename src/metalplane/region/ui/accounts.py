"""MAAS's account paths: log in and out of the web UI, and trade a password for an API key.

The login form has no session yet, so its CSRF check is a double submit: a
random `csrftoken` cookie that the form must repeat. Logging in always makes
a new session key (no fixation); logging out deletes the session row, so the
cookie is worthless on every region at once.
"""

from __future__ import annotations

import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from metalplane.region.api import proxies
from metalplane.region.api.app import request_params, with_db_retry
from metalplane.region.api.errors import headers_of, plain_text, status_of
from metalplane.region.db.transaction import TxLog
from metalplane.region.errors import Refused, RegionError, Throttled
from metalplane.region.services import login_limits, sessions, users
from metalplane.region.ui.guard import (
    CSRF_FIELD,
    LOGIN_PATH,
    LOGOUT_PATH,
    SESSION_COOKIE,
    UiRequest,
    csrf_matches,
    error_page,
    error_page_for,
    guarded,
    has_nul,
    message_of,
    safe_next,
    set_cookie,
)
from metalplane.region.ui.templating import render_html

LOGIN_CSRF_COOKIE = "csrftoken"
AUTHENTICATE_PATH = "/MAAS/accounts/authenticate/"
# Django's wording, which MAAS shows.
WRONG_LOGIN = "Please enter a correct username and password. Note that both fields may be case-sensitive."


def _address(request: Request) -> str:
    """Whom failed logins count against: the client, through trusted proxies only."""
    return proxies.request_client(request) or "unknown"


def _login_form(
    request: Request, error: str = "", username: str = "", status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    context: dict[str, Any] = {
        "user": None,
        "maas_name": "",
        "csrf_token": token,
        "csrf_field": CSRF_FIELD,
        "error": error,
        "username": username,
        "next": safe_next(request.query_params.get("next")),
        "nav": "",
        "live": [],
        "logout_path": LOGOUT_PATH,
    }
    response = render_html("login.html", context, status, headers)
    set_cookie(response, request, LOGIN_CSRF_COOKIE, token, None)
    return response


async def _login_attempt(request: Request, txlog: TxLog) -> Response:
    db = request.app.state.db
    if request.method != "POST":
        async with db.begin() as conn:
            current = await sessions.session_for(conn, request.cookies.get(SESSION_COOKIE))
        if current is not None:
            return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
        return _login_form(request)
    try:
        params = await request_params(request)
        if has_nul(params):
            raise Refused("Null characters are not allowed.")
    except RegionError as exc:
        return error_page_for(request, exc)
    if not csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE, ""), params.str(CSRF_FIELD)):
        return error_page(
            request,
            403,
            "CSRF verification failed: reload the login page and try again (the browser must accept cookies).",
        )
    username = params.str("username") or ""
    async with db.begin() as conn:
        try:
            user = await login_limits.authenticate(conn, username, params.str("password") or "", _address(request))
        except Throttled as exc:
            return _login_form(request, message_of(exc), username, status=429, headers=headers_of(exc))
        if user is None:
            return _login_form(request, WRONG_LOGIN, username, status=200)
        await sessions.purge_expired(conn)
        # Never marked as committed: replayed after a lost COMMIT, it leaves at worst an unused session.
        session = await sessions.create_session(conn, user)
        length = await sessions.session_length(conn)
    response = RedirectResponse(safe_next(params.str("next")), status_code=303)
    set_cookie(response, request, SESSION_COOKIE, session.key, length)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/MAAS/")
    return response


async def login(request: Request) -> Response:
    return await with_db_retry(
        request, lambda txlog: _login_attempt(request, txlog), unavailable=lambda exc: error_page_for(request, exc)
    )


async def logout(ui: UiRequest) -> Response:
    async with ui.ctx.tx() as conn:
        await sessions.delete_session(conn, ui.session.key)
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/MAAS/")
    return response


async def _authenticate_attempt(request: Request, txlog: TxLog) -> Response:
    """As MAAS: POST username, password [, consumer] -> the user's API token, or 403."""
    try:
        params = await request_params(request)
        if has_nul(params):
            raise Refused("Null characters are not allowed.")
    except RegionError as exc:
        return Response(plain_text(exc), status_code=status_of(exc), media_type="text/plain")
    async with request.app.state.db.begin() as conn:
        try:
            user = await login_limits.authenticate(
                conn, params.str("username") or "", params.str("password") or "", _address(request)
            )
        except Throttled as exc:
            return Response(
                plain_text(exc), status_code=status_of(exc), media_type="text/plain", headers=headers_of(exc)
            )
        if user is None:
            return Response("", status_code=403, media_type="text/plain")
        # Replayed after a lost COMMIT, it may make a second token, as a second login would.
        token = await users.token_for_consumer(conn, user.id, params.str("consumer"))
    return JSONResponse(
        {
            "consumer_key": token.consumer_key,
            "name": token.name,
            "token_key": token.token_key,
            "token_secret": token.token_secret,
        }
    )


async def authenticate(request: Request) -> Response:
    return await with_db_retry(request, lambda txlog: _authenticate_attempt(request, txlog))


def account_routes() -> list[BaseRoute]:
    return [
        Route(LOGIN_PATH, login, methods=["GET", "HEAD", "POST"]),
        Route(LOGOUT_PATH, guarded(logout), methods=["POST"]),
        Route(AUTHENTICATE_PATH, authenticate, methods=["POST"]),
    ]
