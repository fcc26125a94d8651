"""The one gate every UI route passes: session, CSRF, admin, database retry.

A route is declared with `ui_route(path, view, admin=..., methods=...)`. The
server, not the template, decides who may do what: a view marked `admin`
answers 403 to anyone else, however the request was made; any method other
than GET/HEAD must carry the session's CSRF token (form field
`csrfmiddlewaretoken`, Django's name, or header `X-CSRFToken`) or it is
refused with 403 before the view runs.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from metalplane.region.api.app import request_params, site_of, with_db_retry
from metalplane.region.api.context import Ctx
from metalplane.region.api.errors import headers_of, status_of
from metalplane.region.api.params import Params
from metalplane.region.db.transaction import TxLog
from metalplane.region.errors import PermissionDenied, Refused, RegionError
from metalplane.region.services import sessions, settings
from metalplane.region.services.sessions import Session
from metalplane.region.services.users import User
from metalplane.region.ui.templating import render_html

SESSION_COOKIE = "sessionid"  # MAAS's (Django's) names
CSRF_FIELD = "csrfmiddlewaretoken"
CSRF_HEADER = "x-csrftoken"
COOKIE_PATH = "/MAAS/"
UI_PREFIX = "/MAAS/r/"
LOGIN_PATH = "/MAAS/accounts/login/"
LOGOUT_PATH = "/MAAS/accounts/logout/"
HOME = UI_PREFIX + "controllers/"
SAFE_METHODS = frozenset({"GET", "HEAD"})

View = Callable[["UiRequest"], Awaitable[Response]]


def has_nul(params: Params) -> bool:
    """PostgreSQL cannot store NUL in text: refuse it at the edge, as MAAS does."""
    return any("\x00" in value for name in params.names() for value in params.get_list(name))


def is_secure(request: Request) -> bool:
    """Behind an https front end (a trusted proxy's X-Forwarded-Proto) or https here."""
    return site_of(request).startswith("https://")


def csrf_matches(expected: str, offered: str | None) -> bool:
    return bool(offered) and hmac.compare_digest(expected.encode(), str(offered).encode())


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this site under /MAAS/, never elsewhere."""
    if target and target.startswith(COOKIE_PATH) and "\\" not in target and "//" not in target:
        return target
    return HOME


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path=COOKIE_PATH, secure=is_secure(request), httponly=True, samesite="lax"
    )


@dataclass(frozen=True)
class LivePage:
    """A page with parts its script swaps in again (`?part=NAME`) when its section changes."""

    template: str
    section: str  # the nav entry it highlights and the changes it follows
    parts: dict[str, str]  # part name -> the template that draws just that part


@dataclass
class UiRequest:
    ctx: Ctx
    session: Session
    maas_name: str

    @property
    def request(self) -> Request:
        return self.ctx.request

    @property
    def params(self) -> Params:
        return self.ctx.params

    @property
    def user(self) -> User:
        return self.session.user

    @property
    def config(self) -> Any:
        return self.ctx.app_state.config

    def context(self, **extra: Any) -> dict[str, Any]:
        return {
            "user": self.user,
            "csrf_token": self.session.csrf_token,
            "maas_name": self.maas_name,
            "csrf_field": CSRF_FIELD,
            "logout_path": LOGOUT_PATH,
            "nav": "",
            "live": [],
            **extra,
        }

    def render(self, template: str, parts: dict[str, str] | None = None, status: int = 200, **context: Any) -> Response:
        """The page, or just one live part of it (`?part=NAME`) for the page's script to swap in."""
        part = self.request.query_params.get("part")
        if parts and part in parts:
            template = parts[part]
        return render_html(template, self.context(**context), status)

    def live_page(self, shown: LivePage, src: str, /, status: int = 200, **context: Any) -> Response:
        """A LivePage, whose script fetches its parts again from `src` whenever its section changes
        (positional: templates have a `page` of their own)."""
        return self.render(
            shown.template, shown.parts, status, nav=shown.section, live=[shown.section], live_src=src, **context
        )

    def done(self, messages: dict[str, str]) -> str:
        """What the page says after an action (`?done=KEY`): fixed words, nothing from the URL."""
        return messages.get(self.params.str("done") or "", "")

    def redirect(self, url: str) -> Response:
        return RedirectResponse(url, status_code=303)


def message_of(exc: RegionError) -> str:
    """A domain error as one line for a page: the service's words; field errors as "field: reason"."""
    if isinstance(exc.detail, str):
        return exc.detail
    return "; ".join(
        " ".join(reasons) if name == "__all__" else f"{name}: {' '.join(reasons)}"
        for name, reasons in exc.detail.items()
    )


def error_page_for(request: Request, exc: RegionError, ui: UiRequest | None = None) -> Response:
    """A domain error as a page, with the status and headers the API answers it with (api/errors.py)."""
    return error_page(request, status_of(exc), message_of(exc), ui, headers_of(exc))


def error_page(
    request: Request, status: int, message: str, ui: UiRequest | None = None, headers: dict[str, str] | None = None
) -> Response:
    context = (
        ui.context()
        if ui
        else {
            "user": None,
            "maas_name": "",
            "csrf_token": "",
            "csrf_field": CSRF_FIELD,
            "logout_path": LOGOUT_PATH,
            "nav": "",
            "live": [],
        }
    )
    return render_html("error.html", {**context, "status": status, "message": message}, status, headers)


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{LOGIN_PATH}?next={quote(target)}", status_code=303)


async def _load_session(request: Request) -> tuple[Session | None, str]:
    async with request.app.state.db.begin() as conn:
        session = await sessions.session_for(conn, request.cookies.get(SESSION_COOKIE))
        maas_name = await settings.get_setting(conn, "maas_name") if session else ""
    return session, maas_name


def guarded(view: View, admin: bool = False) -> Callable[[Request], Awaitable[Response]]:
    async def attempt(request: Request, txlog: TxLog) -> Response:
        ui: UiRequest | None = None
        try:
            params = await request_params(request)
            if has_nul(params):
                raise Refused("Null characters are not allowed.")
            session, maas_name = await _load_session(request)
            if session is None:
                if request.method in SAFE_METHODS:
                    return login_redirect(request)
                return error_page(request, 403, "Your session has ended: log in again.")
            offered = params.str(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
            if request.method not in SAFE_METHODS and not csrf_matches(session.csrf_token, offered):
                return error_page(request, 403, "CSRF verification failed: reload the page and try again.")
            ctx = Ctx(
                request, params, dict(request.path_params), session.user, request.app.state.db, site_of(request), txlog
            )
            ui = UiRequest(ctx, session, maas_name)
            if admin and not session.user.is_superuser:
                raise PermissionDenied("This page is reserved for admin users.")
            return await view(ui)
        except RegionError as exc:
            return error_page_for(request, exc, ui)

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        response = await with_db_retry(
            request, lambda txlog: attempt(request, txlog), unavailable=lambda exc: error_page_for(request, exc)
        )
        # The region's own time for the page (W3C Server-Timing): what benches and tests read.
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response

    endpoint.__name__ = getattr(view, "__name__", "ui_view")
    return endpoint


def ui_route(path: str, view: View, admin: bool = False, methods: tuple[str, ...] = ("GET",)) -> Route:
    return Route(path, guarded(view, admin), methods=list(methods))
