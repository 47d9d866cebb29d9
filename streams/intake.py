"""JSON stock events from systems that cannot speak Kafka (ERP, WMS, tills) -> StockEvent.

Each item is checked on its own: a bad item is reported with every problem found, and
never stops the good items of the same batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.times import now_ms, parse_time_ms

EVENT_TYPES = frozenset(
    {
        "order_placed",
        "order_cancelled",
        "order_shipped",
        "sale",
        "return_received",
        "receipt",
        "adjustment",
        "stock_count",
        "transfer",
        "hold",
        "hold_released",
    }
)
DISPOSITIONS = frozenset({"resellable", "damaged", "quarantine"})
_STRING_FIELDS = ("location", "to_location", "channel", "order_id", "source_ref", "reason")
_KNOWN = frozenset(
    {
        "event_id",
        "type",
        "sku",
        "qty",
        "occurred_at",
        "as_of",
        "expires_at",
        "disposition",
        "source",
        "source_seq",
        *_STRING_FIELDS,
    }
)
_NEEDS_ORDER = frozenset(
    {"order_placed", "order_cancelled", "order_shipped", "hold", "hold_released"}
)


@dataclass(frozen=True, slots=True)
class IntakeResult:
    index: int
    event: dict[str, Any] | None
    errors: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


def parse_items(body: Any, *, source: str = "api") -> list[IntakeResult]:
    """Every item of a JSON body (one object or an array) as a StockEvent or its errors."""
    items = body if isinstance(body, list) else [body]
    return [_parse_one(i, item, source) for i, item in enumerate(items)]


def _parse_one(index: int, item: Any, source: str) -> IntakeResult:
    if not isinstance(item, dict):
        return IntakeResult(index, None, ("item is not a JSON object",))
    errors: list[str] = []
    unknown = sorted(set(item) - _KNOWN)
    if unknown:
        errors.append(f"unknown field(s): {', '.join(unknown)}")
    received = now_ms()
    event: dict[str, Any] = {
        "event_id": _text(item, "event_id", errors, required=True),
        "type": item.get("type"),
        "sku": _text(item, "sku", errors, required=True),
        "qty": 0,
        "ingested_at": received,
        "source": item.get("source") if isinstance(item.get("source"), str) else source,
        "source_seq": None,
        "as_of": None,
        "expires_at": None,
        "disposition": None,
        "occurred_at": received,
    }
    for name in _STRING_FIELDS:
        event[name] = _text(item, name, errors, required=False)
    kind = item.get("type")
    if kind not in EVENT_TYPES:
        errors.append(f"type: {kind!r} is not one of {', '.join(sorted(EVENT_TYPES))}")
    qty = item.get("qty", 0)
    if isinstance(qty, bool) or not isinstance(qty, int):
        errors.append("qty: must be an integer number of units")
    else:
        event["qty"] = qty
        if qty < 0 and kind != "adjustment":
            errors.append("qty: must not be negative (only an adjustment is signed)")
    for name in ("occurred_at", "as_of", "expires_at"):
        if item.get(name) is not None:
            try:
                event[name] = parse_time_ms(item[name], name)
            except ValueError as exc:
                errors.append(str(exc))
    seq = item.get("source_seq")
    if seq is not None:
        if isinstance(seq, bool) or not isinstance(seq, int):
            errors.append("source_seq: must be an integer")
        else:
            event["source_seq"] = seq
    disposition = item.get("disposition")
    if disposition is not None:
        if disposition not in DISPOSITIONS:
            errors.append(f"disposition: choose one of {', '.join(sorted(DISPOSITIONS))}")
        else:
            event["disposition"] = disposition
    errors.extend(_type_rules(kind, event))
    if errors:
        return IntakeResult(index, None, tuple(errors))
    return IntakeResult(index, event, ())


def _type_rules(kind: Any, event: dict[str, Any]) -> list[str]:
    errors = []
    if kind in _NEEDS_ORDER and not event["order_id"]:
        errors.append(f"order_id: required for {kind}")
    if kind == "transfer":
        if not event["to_location"]:
            errors.append("to_location: required for a transfer")
        if event["qty"] <= 0:
            errors.append("qty: a transfer moves at least one unit")
    if kind == "adjustment" and not event["reason"]:
        errors.append("reason: required for an adjustment (damage, shrinkage, correction...)")
    if kind == "hold" and event["expires_at"] is None:
        errors.append("expires_at: required for a hold")
    if kind in {"order_placed", "sale", "receipt", "hold"} and event["qty"] <= 0:
        errors.append(f"qty: {kind} needs at least one unit")
    return errors


def _text(item: dict[str, Any], name: str, errors: list[str], *, required: bool) -> str | None:
    value = item.get(name)
    if value is None:
        if required:
            errors.append(f"{name}: required")
        return None
    if not isinstance(value, str) or not value.strip():
        errors.append(f"{name}: must be a non-empty string")
        return None
    if len(value) > 256:
        errors.append(f"{name}: longer than 256 characters")
        return None
    return value
