"""The ordering page as an aiohttp application: routes, templates, sessions."""

from __future__ import annotations

from aiohttp import web

from streams.kernel.settings import Settings
from streams.web import auth, views
from streams.web.render import ALERTS_SHOWN, ENV_KEY, STATIC, environment
from streams.web.sessions import LoginLimiter, Signer, session_key
from streams.web.users import UserStore, users_path


def make_app(
    service: views.Purchasing,
    settings: Settings,
    *,
    users: UserStore | None = None,
    limiter: LoginLimiter | None = None,
    alerts: views.PageAlerts | None = None,
) -> web.Application:
    """The page over ``service`` (a ``PurchasingService`` or anything with its methods);
    ``alerts``: the alerts routed to the page, newest first (an Alerts screen when given)."""
    app = web.Application(middlewares=[auth.session_middleware], client_max_size=64 * 1024)
    app[ENV_KEY] = environment()
    app[views.SERVICE_KEY] = service
    app[ALERTS_SHOWN] = alerts is not None
    if alerts is not None:
        app[views.ALERTS_KEY] = alerts
    app[auth.AUTH_KEY] = auth.Auth(
        users=users or UserStore(users_path(settings)),
        signer=Signer(session_key(settings), settings.web_session_minutes * 60),
        limiter=limiter or LoginLimiter(),
    )
    r = app.router
    r.add_get("/", views.index)
    r.add_get("/health", views.health)
    r.add_get("/login", auth.login_form)
    r.add_post("/login", auth.login)
    r.add_post("/logout", auth.logout)
    r.add_get("/proposals", views.proposals)
    r.add_get("/proposals/{proposal_id}", views.proposal)
    r.add_post("/proposals/{proposal_id}/lines/{sku}", views.edit_line)
    r.add_post("/proposals/{proposal_id}/approve", views.approve)
    r.add_post("/proposals/{proposal_id}/reject", views.reject)
    r.add_post("/proposals/{proposal_id}/cancel-rest", views.cancel_rest)
    r.add_get("/orders", views.orders)
    r.add_get("/sku/{sku}", views.sku)
    r.add_get("/alerts", views.alerts)
    r.add_static("/static/", STATIC, append_version=False)
    return app
