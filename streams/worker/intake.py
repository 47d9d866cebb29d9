"""JSON stock events from systems that cannot speak Kafka (ERP, WMS, tills) -> StockEvent.

Each item is checked on its own: a bad item is reported with every problem found, and
never stops the good items of the same batch. JSON shapes (types, ISO times, unknown fields)
are checked here; what makes an event applicable is checked by the contract
(:mod:`schemas.events`), the same check the ledger makes, so an accepted item is never
dead-lettered as malformed by the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.events import FIELDS, MAX_QTY, problems, stock_event
from schemas.times import now_ms, parse_date_days, parse_time_ms
from streams.bundles.catalogue import Catalogue
from streams.bundles.expand import BUNDLE_NOT_STOCKED, EXPANDED

_TIME_FIELDS = ("occurred_at", "as_of", "expires_at")
# ingested_at is stockflow's own: the intake stamps it
_KNOWN = frozenset(FIELDS) - {"ingested_at"}


@dataclass(frozen=True, slots=True)
class IntakeResult:
    index: int
    event: dict[str, Any] | None
    errors: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


def parse_items(
    body: Any,
    *,
    source: str = "api",
    default_location: str | None = None,
    max_qty: int = MAX_QTY,
) -> list[IntakeResult]:
    """Every item of a JSON body (one object or an array) as a StockEvent or its errors.

    ``default_location`` is the ledger's: where an event without ``location`` happens;
    ``max_qty`` is the ledger's bound of ``|qty|``.
    """
    items = body if isinstance(body, list) else [body]
    return [_parse_one(i, item, source, default_location, max_qty) for i, item in enumerate(items)]


def _parse_one(
    index: int, item: Any, source: str, default_location: str | None, max_qty: int
) -> IntakeResult:
    if not isinstance(item, dict):
        return IntakeResult(index, None, ("item is not a JSON object",))
    errors: list[str] = []
    unknown = sorted(set(item) - _KNOWN)
    if unknown:
        errors.append(f"unknown field(s): {', '.join(unknown)}")
    received = now_ms()
    fields = {name: item[name] for name in _KNOWN if item.get(name) is not None}
    fields.setdefault("source", source)
    for name in _TIME_FIELDS:
        if name in fields:
            try:
                fields[name] = parse_time_ms(fields[name], name)
            except ValueError as exc:
                errors.append(str(exc))
                del fields[name]
    for day_field in ("expires_on", "expected_on"):
        if day_field in fields:
            try:
                fields[day_field] = parse_date_days(fields[day_field], day_field)
            except ValueError as exc:
                errors.append(str(exc))
                del fields[day_field]
    event = stock_event(
        fields.pop("type", None),
        fields.pop("sku", None),
        fields.pop("event_id", None),
        fields.pop("occurred_at", received),
        ingested_at=received,
        **fields,
    )
    errors.extend(
        p.message for p in problems(event, default_location=default_location, max_qty=max_qty)
    )
    if errors:
        return IntakeResult(index, None, tuple(errors))
    return IntakeResult(index, event, ())


def refuse_unstocked(results: list[IntakeResult], bundles: Catalogue) -> list[IntakeResult]:
    """``results`` with each event a bundle SKU cannot have (a receipt, a count, an
    adjustment of a SKU that is never stocked) refused with its reason; the bundle's orders,
    sales and returns stay, to be published as its components' events."""
    if not bundles:
        return results
    out = []
    for result in results:
        event = result.event
        if event is not None and bundles.get(event["sku"]) and event["type"] not in EXPANDED:
            error = f"{event['type']} for bundle {event['sku']!r}: {BUNDLE_NOT_STOCKED}"
            result = IntakeResult(result.index, None, (error,))
        out.append(result)
    return out
