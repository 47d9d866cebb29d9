"""Till (POS) changes -> StockEvents: the rules of ``POST /v1/pos/changes`` and of the
end-of-day CSV import, pure (no I/O, the caller passes the time received).

A call is ``{idempotency_key, store, changes: [...]}`` with at most :data:`MAX_CHANGES`
changes, each ``{type, sku, qty, occurred_at, id?, reason?, to_location?, disposition?,
receipt?}``:

- ``sale`` (qty > 0): on_hand down at once, never waiting for availability (a ``sale``);
- ``return`` (qty > 0): back to on_hand, or unsellable with a ``disposition``;
- ``count`` (qty >= 0): the shelf's absolute count as of ``occurred_at`` (a ``stock_count``
  that rebases: the ledger adds the movements it applied after that time);
- ``adjustment`` (qty signed, ``reason`` required);
- ``transfer`` (qty > 0, ``to_location``): out of the store, into another location.

The store is the stockflow location the till stands in. Ids are deterministic, so nothing is
applied twice, whatever the workers and restarts: a change with the till's own ``id`` is the
event ``pos.{store}.{id}`` (the end-of-day CSV uses the same ids, so a sale sent by both
routes counts once); a change without one is ``pos.{store}.{idempotency_key}.{index}``, so a
retried call is the same events, which the ledger deduplicates. The answer is a function of
the call alone: a retry gets the same answer.

Order: each event carries the till's ``occurred_at``. A count rebases on the movements after
its time, and a sale, return or adjustment older than the location's last count is already in
that count (the ledger absorbs it), so a till's calls give the same stock in any arrival order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.events import CONNECTOR_ID_SEPARATOR, MAX_QTY, MAX_TEXT, problems, stock_event
from schemas.times import parse_time_ms

MAX_CHANGES = 100
MAX_KEY = 128  # characters of an idempotency key or a change id
CHANNEL = "pos"
ID_PREFIX = "pos"

# till word -> StockEvent type
TYPES = {
    "sale": "sale",
    "return": "return_received",
    "count": "stock_count",
    "adjustment": "adjustment",
    "transfer": "transfer",
}
_FIELDS = frozenset(
    {"type", "sku", "qty", "occurred_at", "id", "reason", "to_location", "disposition", "receipt"}
)
_OPTIONAL_TEXT = ("reason", "to_location", "disposition", "receipt")


@dataclass(frozen=True, slots=True)
class ChangeResult:
    index: int
    event: dict[str, Any] | None
    errors: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.errors

    def answer(self) -> dict[str, Any]:
        if self.event is not None:
            return {"index": self.index, "status": "accepted", "event_id": self.event["event_id"]}
        return {"index": self.index, "status": "rejected", "errors": list(self.errors)}


@dataclass(frozen=True, slots=True)
class PosCall:
    idempotency_key: str
    store: str
    results: tuple[ChangeResult, ...]

    def answer(self) -> dict[str, Any]:
        accepted = sum(1 for r in self.results if r.ok)
        body: dict[str, Any] = {
            "idempotency_key": self.idempotency_key,
            "store": self.store,
            "accepted": accepted,
            "rejected": len(self.results) - accepted,
            "results": [r.answer() for r in self.results],
        }
        if accepted < len(self.results):
            body["error"] = (
                f"{len(self.results) - accepted} of {len(self.results)} changes refused: see "
                "the errors of each in results; the others are applied"
            )
        return body


class CallError(ValueError):
    """A call that cannot be read at all (no key, no store, too many changes): nothing of it
    is applied; the message lists every problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def check_token(value: Any, name: str) -> str | None:
    """The problem with an idempotency key, store or change id, or None."""
    if not isinstance(value, str) or not value:
        return f"{name}: required non-empty string"
    if len(value) > MAX_KEY or not value.isprintable() or value != value.strip():
        return f"{name}: 1 to {MAX_KEY} printable characters, no surrounding spaces"
    if CONNECTOR_ID_SEPARATOR in value:
        return f"{name}: must not contain {CONNECTOR_ID_SEPARATOR!r} (the connectors' id namespace)"
    return None


def event_id(store: str, change_id: str | None, key: str | None, index: int) -> str:
    """The event id of a till change: the till's own id when it has one, else key + index."""
    if change_id is not None:
        return f"{ID_PREFIX}.{store}.{change_id}"
    return f"{ID_PREFIX}.{store}.{key}.{index}"


def parse_call(
    body: Any,
    *,
    source: str,
    received_ms: int,
    default_location: str | None = None,
    max_qty: int = MAX_QTY,
) -> PosCall:
    """A call's changes as StockEvents or their errors; CallError when the call itself is bad."""
    if not isinstance(body, dict):
        raise CallError(["body must be a JSON object {idempotency_key, store, changes}"])
    errors = [
        e
        for e in (
            check_token(body.get("idempotency_key"), "idempotency_key"),
            check_token(body.get("store"), "store"),
        )
        if e
    ]
    unknown = sorted(set(body) - {"idempotency_key", "store", "changes"})
    if unknown:
        errors.append(f"unknown field(s): {', '.join(unknown)}")
    changes = body.get("changes")
    if not isinstance(changes, list) or not changes:
        errors.append("changes: a non-empty array")
    elif len(changes) > MAX_CHANGES:
        errors.append(f"changes: at most {MAX_CHANGES} per call, got {len(changes)}")
    if errors:
        raise CallError(errors)
    key, store = body["idempotency_key"], body["store"]
    assert isinstance(changes, list)
    results = tuple(
        parse_change(
            change,
            index=i,
            store=store,
            key=key,
            source=source,
            received_ms=received_ms,
            default_location=default_location,
            max_qty=max_qty,
        )
        for i, change in enumerate(changes)
    )
    ids = [r.event["event_id"] for r in results if r.event is not None]
    if len(set(ids)) < len(ids):  # two changes of one call under one id: the second is lost
        seen: set[str] = set()
        fixed = []
        for r in results:
            if r.event is not None and r.event["event_id"] in seen:
                r = ChangeResult(r.index, None, ("id: repeats an earlier change of this call",))
            elif r.event is not None:
                seen.add(r.event["event_id"])
            fixed.append(r)
        results = tuple(fixed)
    return PosCall(key, store, results)


def parse_change(
    change: Any,
    *,
    index: int,
    store: str,
    key: str | None,
    source: str,
    received_ms: int,
    default_location: str | None = None,
    max_qty: int = MAX_QTY,
) -> ChangeResult:
    """One till change as a StockEvent, or every problem found with it."""
    if not isinstance(change, dict):
        return ChangeResult(index, None, ("change is not a JSON object",))
    errors: list[str] = []
    unknown = sorted(set(change) - _FIELDS)
    if unknown:
        errors.append(f"unknown field(s): {', '.join(unknown)}")
    kind = TYPES.get(change.get("type"))  # type: ignore[arg-type]
    if kind is None:
        errors.append(f"type: one of {', '.join(TYPES)}, got {change.get('type')!r}")
    sku = change.get("sku")
    if not isinstance(sku, str) or not sku.strip() or len(sku) > MAX_TEXT:
        errors.append(f"sku: required string of 1 to {MAX_TEXT} characters")
    qty = change.get("qty")
    if isinstance(qty, bool) or not isinstance(qty, int):
        errors.append("qty: required integer")
        qty = None
    occurred_at: int | None = None
    if change.get("occurred_at") is None:
        errors.append("occurred_at: required (the till's time, ISO 8601 with a zone or epoch ms)")
    else:
        try:
            occurred_at = parse_time_ms(change["occurred_at"], "occurred_at")
        except ValueError as exc:
            errors.append(str(exc))
    change_id = change.get("id")
    if change_id is not None:
        problem = check_token(change_id, "id")
        if problem:
            errors.append(problem)
    for name in _OPTIONAL_TEXT:
        value = change.get(name)
        if value is not None and (not isinstance(value, str) or not value or len(value) > MAX_TEXT):
            errors.append(f"{name}: a string of 1 to {MAX_TEXT} characters when given")
    if kind is not None and kind != "transfer" and change.get("to_location") is not None:
        errors.append("to_location: only for a transfer")
    if kind is not None and kind != "return_received" and change.get("disposition") is not None:
        errors.append("disposition: only for a return")
    if errors:
        return ChangeResult(index, None, tuple(errors))
    assert kind is not None and isinstance(sku, str) and qty is not None and occurred_at is not None
    extra: dict[str, Any] = {}
    if kind == "stock_count":
        extra["as_of"] = occurred_at
    if change.get("to_location") is not None:
        extra["to_location"] = change["to_location"]
    if change.get("disposition") is not None:
        extra["disposition"] = change["disposition"]
    event = stock_event(
        kind,
        sku,
        event_id(store, change_id, key, index),
        occurred_at,
        ingested_at=received_ms,
        qty=qty,
        location=store,
        channel=CHANNEL,
        source=source,
        source_ref=change.get("receipt"),
        reason=change.get("reason"),
        **extra,
    )
    found = problems(event, default_location=default_location, max_qty=max_qty)
    if found:
        return ChangeResult(index, None, tuple(p.message for p in found))
    return ChangeResult(index, event, ())
