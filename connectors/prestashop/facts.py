"""Reading a PrestaShop order: its times (shop timezone, no offset), rows and state."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from connectors.prestashop.mapping import PrestaMapping

NO_DATE = "0000-00-00 00:00:00"
FORMAT = "%Y-%m-%d %H:%M:%S"


def shop_ms(value: str, timezone: str) -> int:
    """Epoch ms of a webservice time (``Y-m-d H:i:s`` in the shop's timezone)."""
    moment = datetime.strptime(value, FORMAT).replace(tzinfo=ZoneInfo(timezone))
    return int(moment.timestamp() * 1000)


def shop_time(ms: int, timezone: str) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(ZoneInfo(timezone)).strftime(FORMAT)


def rows(order: Mapping[str, Any]) -> list[dict[str, Any]]:
    assoc = order.get("associations") or {}
    found = assoc.get("order_rows") if isinstance(assoc, dict) else None
    return [r for r in found or [] if isinstance(r, dict)]


def shipped(order: Mapping[str, Any], m: PrestaMapping) -> bool:
    delivered = str(order.get("delivery_date") or NO_DATE)
    return m.state(order.get("current_state")) == "shipped" or delivered != NO_DATE


def reserves(order: Mapping[str, Any], m: PrestaMapping) -> bool:
    """The order holds (or held until it shipped) its units: shipped; else not cancelled nor
    refunded, and paid unless ``reserve_unpaid``. An order first seen cancelled reserves
    nothing (its cancellation then releases nothing)."""
    if shipped(order, m):
        return True
    state = m.state(order.get("current_state"))
    if state in ("cancelled", "refunded"):
        return False
    return m.reserve_unpaid or state == "paid"
