"""Templates (Jinja2, autoescaped) and the filters the pages format figures with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from streams.web.sessions import Session
from streams.web.users import User

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
EPOCH = date(1970, 1, 1)


def as_date(value: Any) -> date | None:
    """A date from what the Avro codec gives (date) or a plain record holds (days since 1970)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int):
        return EPOCH + timedelta(days=value)
    return date.fromisoformat(str(value)[:10])


def as_datetime(value: Any) -> datetime | None:
    """A UTC time from a datetime or epoch milliseconds."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC)
    return datetime.fromisoformat(str(value))


def money(minor: Any, currency: str = "") -> str:
    """Integer minor units as ``1,234.50 EUR``."""
    if minor is None:
        return ""
    amount = int(minor)
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    return f"{sign}{whole:,}.{cents:02d} {currency}".strip()


def when(value: Any) -> str:
    moment = as_datetime(value)
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def day(value: Any) -> str:
    found = as_date(value)
    return found.isoformat() if found else ""


def number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.1f}"
    return f"{int(value):,}"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=money, when=when, day=day, number=number)
    return env


ENV_KEY = web.AppKey("web.templates", jinja2.Environment)


@dataclass
class Visitor:
    """Who is asking: their session (anonymous ones have one too, for the login form's CSRF
    token) and the user, once logged in."""

    session: Session
    user: User | None = None


VISITOR = web.RequestKey("web.visitor", Visitor)
ALERTS_SHOWN = web.AppKey("web.alerts_shown", bool)


def render(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    env = request.app[ENV_KEY]
    visitor = request.get(VISITOR)
    page = {
        "alerts_shown": request.app.get(ALERTS_SHOWN, False),
        "user": visitor.user if visitor else None,
        "csrf": visitor.session.csrf if visitor else "",
        "path": request.path,
        **context,
    }
    text = env.get_template(template).render(**page)
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")
