"""Who is asking: the session middleware, CSRF check, login and logout, and role checks."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from streams.web.render import VISITOR, Visitor, render
from streams.web.sessions import COOKIE, LoginLimiter, Session, Signer
from streams.web.users import CodeChecker, User, UserStore, hash_password, verify_password

log = logging.getLogger("stockflow.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# routes that answer without a session: the login form, health, files, the token-guarded API
OPEN_PREFIXES = ("/static/", "/v1/")
OPEN_PATHS = frozenset({"/login", "/health"})
_DUMMY_HASH = hash_password("not a password of anyone")


@dataclass
class Auth:
    users: UserStore
    signer: Signer
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    codes: CodeChecker = field(default_factory=CodeChecker)
    clock: Callable[[], float] = time.time


AUTH_KEY = web.AppKey("web.auth", Auth)


def _set_cookie(request: web.Request, response: web.StreamResponse, session: Session) -> None:
    auth = request.app[AUTH_KEY]
    response.set_cookie(
        COOKIE,
        auth.signer.dump(session),
        max_age=auth.signer.lifetime_s,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/",
    )


def _headers(response: web.StreamResponse) -> None:
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cache-Control", "no-store")


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(OPEN_PREFIXES):
        return await handler(request)
    auth = request.app[AUTH_KEY]
    now = auth.clock()
    session = auth.signer.load(request.cookies.get(COOKIE), now=now)
    user: User | None = None
    if session is not None and session.login:
        user = auth.users.get(session.login)
        if user is None or not hmac.compare_digest(user.fingerprint, session.fingerprint):
            user, session = None, None  # removed, or the password changed: log in again
    fresh = session is None
    if session is None:
        session = auth.signer.new("", "", now=now)
    visitor = Visitor(session, user)
    request[VISITOR] = visitor
    if request.method not in ("GET", "HEAD"):
        form = await request.post()
        sent = str(form.get("csrf", ""))
        if fresh or not sent or not hmac.compare_digest(sent, session.csrf):
            response: web.StreamResponse = render(
                request,
                "error.html",
                {
                    "title": "Form expired",
                    "message": "This form has expired or did not come from this page. "
                    "Go back, reload the page and try again.",
                },
                status=403,
            )
            _set_cookie(request, response, session)
            _headers(response)
            return response
    if user is None and request.path not in OPEN_PATHS:
        target = request.path_qs if request.method == "GET" else "/"
        response = see_other(f"/login?next={_quote(target)}")
    else:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = _as_response(request, exc)
    if fresh or visitor.session is not session:
        _set_cookie(request, response, visitor.session)
    _headers(response)
    return response


def see_other(location: str) -> web.Response:
    """A 303 redirect (a response, not an exception: the middleware adds the cookie)."""
    return web.Response(status=303, headers={"Location": location})


def _as_response(request: web.Request, exc: web.HTTPException) -> web.StreamResponse:
    if exc.status < 400:
        return web.Response(status=exc.status, headers=exc.headers)
    message = exc.text or ""
    if message.startswith(f"{exc.status}:"):
        message = ""
    page = {"title": exc.reason, "message": message}
    return render(request, "error.html", page, status=exc.status)


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="")


def _safe_next(target: str) -> str:
    """Only a path of this site (never ``//host`` or a URL) is a place to go after login."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def require(request: web.Request, permission: str) -> User:
    """The user, if their role allows ``permission``; 403 with the reason otherwise."""
    user = request[VISITOR].user
    if user is None:
        raise web.HTTPSeeOther("/login")
    if not user.can(permission):
        raise web.HTTPForbidden(
            text=f"Your role ({user.role}) may not do this: it needs the {permission} permission.",
        )
    return user


async def login_form(request: web.Request) -> web.StreamResponse:
    if request[VISITOR].user is not None:
        return see_other("/")
    return render(
        request,
        "login.html",
        {"title": "Log in", "error": None, "login": "", "next": _next(request)},
    )


def _next(request: web.Request) -> str:
    return _safe_next(request.query.get("next", "/"))


async def login(request: web.Request) -> web.StreamResponse:
    auth = request.app[AUTH_KEY]
    form = await request.post()
    name = str(form.get("login", "")).strip().lower()
    password = str(form.get("password", ""))
    code = str(form.get("code", ""))
    target = _safe_next(str(form.get("next", "/")))
    address = request.remote or "unknown"
    now = auth.clock()

    def refuse(message: str, status: int) -> web.Response:
        page = {"title": "Log in", "error": message, "login": name, "next": target}
        return render(request, "login.html", page, status=status)

    wait = auth.limiter.retry_after(name, address, now=now)
    if wait:
        log.warning("web login refused: too many failures login=%s address=%s", name, address)
        minutes = max(1, round(wait / 60))
        return refuse(
            f"Too many failed attempts for this login or from this address. "
            f"Try again in about {minutes} minute{'s' if minutes > 1 else ''}.",
            429,
        )
    user = auth.users.get(name)
    stored = user.password if user else _DUMMY_HASH
    ok = await asyncio.to_thread(verify_password, stored, password) and user is not None
    if ok and user is not None and user.needs_code:
        if not code.strip():
            auth.limiter.failed(name, address, now=now)
            return refuse(
                "Your role needs the 6-digit code from your authenticator app as well.", 401
            )
        ok = auth.codes.check(user, code, at=now)
    if not ok or user is None:
        auth.limiter.failed(name, address, now=now)
        log.warning("web login failed login=%s address=%s", name, address)
        return refuse(
            "Wrong login, password or code. (Approvers and admins also give the 6-digit code "
            "of their authenticator app.)",
            401,
        )
    auth.limiter.succeeded(name)
    log.info("web login login=%s role=%s address=%s", user.login, user.role, address)
    session = auth.signer.new(user.login, user.fingerprint, now=now)  # a new CSRF token too
    request[VISITOR].session, request[VISITOR].user = session, user
    return see_other(target)


async def logout(request: web.Request) -> web.StreamResponse:
    auth = request.app[AUTH_KEY]
    request[VISITOR].session = auth.signer.new("", "", now=auth.clock())
    request[VISITOR].user = None
    return see_other("/login")
