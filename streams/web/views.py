"""The pages: proposals, a proposal with its lines, sent orders, a SKU's stock and forecast.

Each action is a form posting to its own route; the purchasing service does the work and
enforces the rules (pack sizes, which status allows what), the page says what it answered.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any, Protocol
from urllib.parse import quote

from aiohttp import web

from streams.web.auth import require, see_other
from streams.web.chart import demand_chart
from streams.web.render import as_date, as_datetime, render

log = logging.getLogger("stockflow.web")

REVIEW = ("proposed", "send_failed")
ORDER_STATUSES = ("approved", "sent", "send_failed", "partially_received", "received", "cancelled")
OPEN_ORDERS = frozenset({"sent", "partially_received"})
MAX_ROWS = 200  # a list shows the newest ones; the filters narrow it
MESSAGES = {
    "saved": "Quantity saved.",
    "sent": "Approved and sent to the supplier.",
    "approved": "Approved.",
    "send_failed": "Approved, but sending failed (see the note). Approve again to retry.",
    "rejected": "Rejected.",
    "cancelled": "The open quantities were cancelled.",
}


class Purchasing(Protocol):
    """What the page asks of the purchasing service (``streams.purchasing.service``)."""

    def proposals(
        self, status: str | None = None, supplier: str | None = None, location: str | None = None
    ) -> list[dict[str, Any]]: ...

    def get(self, proposal_id: str) -> dict[str, Any] | None: ...

    async def edit_line(self, proposal_id: str, sku: str, qty: int, by: str) -> dict[str, Any]: ...

    async def approve(self, proposal_id: str, by: str) -> dict[str, Any]: ...

    async def reject(self, proposal_id: str, by: str, note: str | None) -> dict[str, Any]: ...

    async def cancel_rest(self, proposal_id: str, by: str) -> dict[str, Any]: ...

    async def sku_view(self, sku: str, location: str) -> dict[str, Any]: ...


SERVICE_KEY = web.AppKey("web.service", object)
# the alerts routed to the page (streams.notifications.page.recent_page_alerts), if installed
PageAlerts = Callable[[int], list[dict[str, Any]]]
ALERTS_KEY = web.AppKey("web.alerts", object)


def _service(request: web.Request) -> Purchasing:
    service: Purchasing = request.app[SERVICE_KEY]  # type: ignore[assignment]
    return service


def today() -> date:
    return datetime.now(UTC).date()


def is_late(proposal: Mapping[str, Any], on: date) -> bool:
    expected = as_date(proposal.get("expected_on"))
    return proposal.get("status") in OPEN_ORDERS and expected is not None and expected < on


def _choices(rows: Iterable[Mapping[str, Any]], key: str) -> list[str]:
    return sorted({str(r[key]) for r in rows if r.get(key)})


def _newest_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def key(row: Mapping[str, Any]) -> float:
        moment = as_datetime(row.get("updated_at"))
        return moment.timestamp() if moment else 0.0

    return sorted(rows, key=key, reverse=True)


async def index(request: web.Request) -> web.StreamResponse:
    return see_other("/proposals")


async def proposals(request: web.Request) -> web.StreamResponse:
    require(request, "read")
    supplier = request.query.get("supplier") or None
    store = request.query.get("store") or None
    status = request.query.get("status") or "review"
    everything = _service(request).proposals()
    rows = [
        p
        for p in everything
        if (supplier is None or p["supplier"] == supplier)
        and (store is None or p["location"] == store)
        and (p["status"] in REVIEW if status == "review" else status in ("all", p["status"]))
    ]
    return render(
        request,
        "proposals.html",
        {
            "title": "Proposals",
            "rows": _newest_first(rows)[:MAX_ROWS],
            "matched": len(rows),
            "suppliers": _choices(everything, "supplier"),
            "stores": _choices(everything, "location"),
            "statuses": [
                "review",
                "proposed",
                "send_failed",
                "approved",
                "rejected",
                "superseded",
                "all",
            ],
            "chosen": {"supplier": supplier or "", "store": store or "", "status": status},
        },
    )


async def orders(request: web.Request) -> web.StreamResponse:
    require(request, "read")
    supplier = request.query.get("supplier") or None
    store = request.query.get("store") or None
    status = request.query.get("status") or "open"
    on = today()
    everything = [p for p in _service(request).proposals() if p["status"] in ORDER_STATUSES]

    def wanted(p: Mapping[str, Any]) -> bool:
        if status == "open":
            return p["status"] in OPEN_ORDERS or p["status"] in ("approved", "send_failed")
        if status == "late":
            return is_late(p, on)
        return status in ("all", p["status"])

    rows = [
        {**p, "late": is_late(p, on)}
        for p in everything
        if (supplier is None or p["supplier"] == supplier)
        and (store is None or p["location"] == store)
        and wanted(p)
    ]
    return render(
        request,
        "orders.html",
        {
            "title": "Orders",
            "rows": _newest_first(rows)[:MAX_ROWS],
            "matched": len(rows),
            "suppliers": _choices(everything, "supplier"),
            "stores": _choices(everything, "location"),
            "statuses": ["open", "late", *ORDER_STATUSES, "all"],
            "chosen": {"supplier": supplier or "", "store": store or "", "status": status},
        },
    )


def _proposal_or_404(request: web.Request) -> dict[str, Any]:
    found = _service(request).get(request.match_info["proposal_id"])
    if found is None:
        raise web.HTTPNotFound(text=f"No proposal {request.match_info['proposal_id']!r}.")
    return found


def _show(
    request: web.Request, proposal: dict[str, Any], *, error: str | None = None, status: int = 200
) -> web.Response:
    message = MESSAGES.get(request.query.get("done", ""))
    lines = [
        {**line, "open": max(0, line["qty"] - line["received_qty"] - line["cancelled_qty"])}
        for line in proposal["lines"]
    ]
    return render(
        request,
        "proposal.html",
        {
            "title": proposal["proposal_id"],
            "p": proposal,
            "lines": lines,
            "late": is_late(proposal, today()),
            "editable": proposal["status"] == "proposed",
            "approvable": proposal["status"] in REVIEW,
            "cancellable": proposal["status"] in OPEN_ORDERS,
            "message": message,
            "error": error,
        },
        status=status,
    )


async def proposal(request: web.Request) -> web.StreamResponse:
    require(request, "read")
    return _show(request, _proposal_or_404(request))


def _back(proposal_id: str, done: str, anchor: str = "") -> web.Response:
    return see_other(f"/proposals/{quote(proposal_id, safe='')}?done={done}{anchor}")


async def _act(
    request: web.Request, permission: str, action: str, call: Any
) -> tuple[dict[str, Any] | None, web.Response | None]:
    """Runs one action of the service; a refusal (ValueError: pack size, status) is shown on
    the proposal's page with the service's message, nothing changed."""
    user = require(request, permission)
    current = _proposal_or_404(request)
    try:
        return await call(user.login), None
    except ValueError as exc:
        return None, _show(request, current, error=str(exc), status=409)
    except Exception:
        log.exception("web %s failed proposal=%s by=%s", action, current["proposal_id"], user.login)
        message = (
            f"The {action} could not be done now (the purchasing service failed; see its log). "
            "The proposal below is as the service keeps it; try again in a moment."
        )
        return None, _show(request, current, error=message, status=503)


async def edit_line(request: web.Request) -> web.StreamResponse:
    proposal_id, sku = request.match_info["proposal_id"], request.match_info["sku"]
    form = await request.post()
    raw = str(form.get("qty", "")).strip()
    require(request, "edit")
    try:
        qty = int(raw)
        if qty < 0:
            raise ValueError
    except ValueError:
        return _show(
            request,
            _proposal_or_404(request),
            error=f"{sku}: the quantity must be a whole number of units, 0 or more (got {raw!r}).",
            status=400,
        )
    _done, refused = await _act(
        request,
        "edit",
        "edit",
        lambda by: _service(request).edit_line(proposal_id, sku, qty, by=by),
    )
    return refused or _back(proposal_id, "saved", f"#line-{quote(sku, safe='')}")


async def approve(request: web.Request) -> web.StreamResponse:
    proposal_id = request.match_info["proposal_id"]
    done, refused = await _act(
        request, "approve", "approval", lambda by: _service(request).approve(proposal_id, by=by)
    )
    if refused is not None or done is None:
        return refused or _back(proposal_id, "approved")
    outcome = done.get("status")
    return _back(proposal_id, outcome if outcome in MESSAGES else "approved")


async def reject(request: web.Request) -> web.StreamResponse:
    proposal_id = request.match_info["proposal_id"]
    form = await request.post()
    note = str(form.get("note", "")).strip()[:500] or None
    _done, refused = await _act(
        request,
        "approve",
        "rejection",
        lambda by: _service(request).reject(proposal_id, by=by, note=note),
    )
    return refused or _back(proposal_id, "rejected")


async def cancel_rest(request: web.Request) -> web.StreamResponse:
    proposal_id = request.match_info["proposal_id"]
    _done, refused = await _act(
        request,
        "approve",
        "cancellation",
        lambda by: _service(request).cancel_rest(proposal_id, by=by),
    )
    return refused or _back(proposal_id, "cancelled")


async def _sku_view(service: Purchasing, sku: str, location: str) -> Any:
    method = service.sku_view
    if inspect.iscoroutinefunction(method):
        return await method(sku, location)
    found = await asyncio.to_thread(method, sku, location)  # reads ClickHouse: off the loop
    return await found if inspect.isawaitable(found) else found


def _series(view: Mapping[str, Any]) -> tuple[list[float | None], list[float]]:
    """Past daily sales and the forecast's days, for the chart."""
    history: list[float | None] = []
    for row in view.get("daily_sales") or []:
        units = row.get("units") if isinstance(row, Mapping) else row
        history.append(None if units is None else float(units))
    forecast = view.get("forecast") or {}
    daily = forecast.get("daily", ()) if isinstance(forecast, Mapping) else ()
    return history, [float(v) for v in daily]


async def sku(request: web.Request) -> web.StreamResponse:
    require(request, "read")
    name = request.match_info["sku"]
    location = request.query.get("location", "").strip()
    if not location:
        raise web.HTTPBadRequest(
            text=f"Say which location: /sku/{quote(name, safe='')}?location=<location>."
        )
    try:
        view = await _sku_view(_service(request), name, location)
    except Exception:
        log.exception("web sku view failed sku=%s location=%s", name, location)
        raise web.HTTPServiceUnavailable(
            text=f"The figures of {name} at {location} could not be read now (ClickHouse or "
            "the purchasing service failed; see the log). Try again in a moment."
        ) from None
    history, forecast = _series(view)
    return render(
        request,
        "sku.html",
        {
            "title": name,
            "sku": name,
            "location": location,
            "position": view.get("position"),
            "forecast": view.get("forecast") or {},
            "orders": list(view.get("purchase_orders") or []),
            "movements": list(view.get("movements") or [])[:30],
            "chart": demand_chart(history, forecast, title=f"{name}: daily sales and forecast"),
        },
    )


async def alerts(request: web.Request) -> web.StreamResponse:
    require(request, "read")
    source: PageAlerts | None = request.app.get(ALERTS_KEY)  # type: ignore[assignment]
    if source is None:
        raise web.HTTPNotFound(text="Alerts on the page need the notifications module.")
    rows = await asyncio.to_thread(source, 50)  # reads ClickHouse: off the loop
    return render(request, "alerts.html", {"title": "Alerts", "rows": rows})


async def health(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"})
