"""The StockEvent contract: building, defaulting and checking a stock event, in one place.

The HTTP intake, the connectors and the ledger's rules all use this module, so an event the
intake answers "accepted" is one the ledger applies or decides on, never one it dead-letters
as malformed. Event types and dispositions are read from ``StockEvent.avsc`` itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

from schemas.loader import current_schemas

__all__ = [
    "DISPOSITIONS",
    "EVENT_TYPES",
    "FIELDS",
    "LOT_TYPES",
    "MAX_HOLD_TTL_SECONDS",
    "MAX_QTY",
    "MAX_TEXT",
    "MAX_TIME_MS",
    "MIN_TIME_MS",
    "InvalidEvent",
    "check",
    "problems",
    "stock_event",
]

SCHEMA_NAME = "stockflow.v1.StockEvent"


def _fields() -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in current_schemas()[SCHEMA_NAME].raw["fields"]}


def _enum_symbols(field: dict[str, Any]) -> tuple[str, ...]:
    kinds = field["type"] if isinstance(field["type"], list) else [field["type"]]
    for kind in kinds:
        if isinstance(kind, dict) and kind.get("type") == "enum":
            return tuple(kind["symbols"])
    raise TypeError(f"{field['name']} is not an enum field")  # the .avsc changed shape


_FIELDS = _fields()
FIELDS = tuple(_FIELDS)
# 'unknown' is what an older reader sees for a type added after it: never applied.
EVENT_TYPES = frozenset(_enum_symbols(_FIELDS["type"])) - {"unknown"}
DISPOSITIONS = frozenset(_enum_symbols(_FIELDS["disposition"]))
_DEFAULTS = {name: f["default"] for name, f in _FIELDS.items() if "default" in f and name != "type"}
_TEXT_FIELDS = tuple(
    name
    for name, f in _FIELDS.items()
    if f["type"] == "string" or (isinstance(f["type"], list) and "string" in f["type"])
)
_REQUIRED_TEXT = frozenset(("event_id", "sku", "source"))
_TIME_FIELDS = ("occurred_at", "ingested_at", "as_of", "expires_at")

MAX_QTY = 10**9  # default bound of |qty| in one event; more is a unit error at the source
MAX_TEXT = 256  # characters of any string field
DAY_MS = 86_400_000
# A lot is named on the events that say which lot they concern; every other type leaves the
# choice to the ledger (FEFO). A decision lists lots joined by commas: no comma in a name.
LOT_TYPES = frozenset({"receipt", "adjustment"})
# Times are epoch milliseconds from 2000-01-01 (inclusive) to 2100-01-01 (exclusive): a time
# outside is a unit or clock error at the source (seconds sent as ms, a zeroed field), and
# every time inside fits ClickHouse's DateTime, so the sink never refuses what was applied.
MIN_TIME_MS = 946_684_800_000
MAX_TIME_MS = 4_102_444_800_000

# Connector event ids are the channel's own ids joined by "/" (``channel/account/...``), so a
# redelivery or a poll of the same fact has the same id. The namespace is theirs alone: the
# HTTP API refuses an id containing the separator, so no caller can pre-empt or replay one.
CONNECTOR_ID_SEPARATOR = "/"


def is_connector_event_id(event_id: str) -> bool:
    """True for an id in the connectors' namespace (never accepted from the HTTP API)."""
    return CONNECTOR_ID_SEPARATOR in event_id


POSITIVE = frozenset(
    {
        "order_placed",
        "sale",
        "return_received",
        "receipt",
        "transfer",
        "hold",
        "quarantine_released",
        "purchase_ordered",
        "purchase_cancelled",
        "purchase_late",
    }
)
NEEDS_ORDER = frozenset(
    {"order_placed", "order_cancelled", "order_shipped", "hold", "hold_released"}
)
NEEDS_REASON = {
    "adjustment": "damage, shrinkage, correction...",
    "quarantine_released": "inspection passed, scrapped...",
}
NEEDS_PO = frozenset(
    {"purchase_ordered", "purchase_cancelled", "purchase_late"}
)  # source_ref: the PO number
# Where released quarantined units go; "quarantine" would release them into quarantine.
RELEASE_DISPOSITIONS = ("resellable", "damaged")
MAX_HOLD_TTL_SECONDS = 7 * 24 * 3600  # longest a checkout hold may last, on every route
_MAX_HOLD_TTL_MS = MAX_HOLD_TTL_SECONDS * 1000


class InvalidEvent(ValueError):  # noqa: N818 - the name the ledger and its callers use
    """An event that is malformed for its type. ``reason`` is a stable code (dead-letter
    reason, metric label); ``message`` starts with the field at fault."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def stock_event(
    type: str,  # the Avro field name
    sku: str,
    event_id: str,
    occurred_at: int,
    *,
    ingested_at: int | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A complete StockEvent record with the schema's defaults; unknown names raise TypeError."""
    unknown = set(fields) - set(_DEFAULTS)
    if unknown:
        raise TypeError(f"not StockEvent fields: {sorted(unknown)}")
    event: dict[str, Any] = {
        "event_id": event_id,
        "type": type,
        "sku": sku,
        "occurred_at": occurred_at,
        "ingested_at": occurred_at if ingested_at is None else ingested_at,
    }
    event.update(_DEFAULTS)
    event.update(fields)
    return event


def check(
    event: Mapping[str, Any], *, default_location: str | None = None, max_qty: int = MAX_QTY
) -> str:
    """The event's type when the ledger can apply it; InvalidEvent naming the first problem.

    ``default_location`` is where an event without ``location`` happens (the ledger's
    configuration), so a transfer to it from "nowhere" is known to go nowhere; ``max_qty``
    is the ledger's bound of ``|qty|`` (its configuration too).
    """
    found = problems(event, default_location=default_location, max_qty=max_qty)
    if found:
        raise found[0]
    return str(event["type"])


def problems(
    event: Mapping[str, Any], *, default_location: str | None = None, max_qty: int = MAX_QTY
) -> list[InvalidEvent]:
    """Every problem of ``event`` (a StockEvent as the codec gives it), most basic first."""
    out: list[InvalidEvent] = []
    for name in _TEXT_FIELDS:
        value = event.get(name)
        if value is None:
            if name in _REQUIRED_TEXT:
                out.append(InvalidEvent(f"missing_{name}", f"{name}: required"))
        elif not isinstance(value, str) or not value.strip():
            out.append(InvalidEvent("bad_text", f"{name}: must be a non-empty string"))
        elif len(value) > MAX_TEXT:
            out.append(InvalidEvent("too_long", f"{name}: longer than {MAX_TEXT} characters"))
    kind = event.get("type")
    if kind not in EVENT_TYPES:
        out.append(
            InvalidEvent(
                "unknown_type",
                f"type: {kind!r} is not one of {', '.join(sorted(EVENT_TYPES))}",
            )
        )
    for name in _TIME_FIELDS:
        value = event.get(name)
        required = name == "occurred_at"
        if value is None and not required:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            out.append(InvalidEvent(f"bad_{name}", f"{name}: epoch milliseconds are required"))
        elif not MIN_TIME_MS <= value < MAX_TIME_MS:
            out.append(
                InvalidEvent(
                    f"bad_{name}",
                    f"{name}: {value} ms is not between 2000-01-01 and 2100-01-01; "
                    "send epoch milliseconds (not seconds) from a set clock",
                )
            )
    seq = event.get("source_seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int)):
        out.append(InvalidEvent("bad_source_seq", "source_seq: an integer or null"))
    elif seq is not None and not -(2**63) <= seq < 2**63:
        out.append(InvalidEvent("bad_source_seq", "source_seq: outside a 64-bit integer"))
    if event.get("lot") is not None or event.get("expires_on") is not None:
        out.extend(_lot_problems(event))
    if event.get("expected_on") is not None:
        out.extend(_expected_problems(event))
    if event.get("disposition") not in (None, *DISPOSITIONS):
        out.append(
            InvalidEvent(
                "bad_disposition",
                f"disposition: {event.get('disposition')!r}; "
                f"choose one of {', '.join(sorted(DISPOSITIONS))}",
            )
        )
    qty = event.get("qty")
    if isinstance(qty, bool) or not isinstance(qty, int):
        out.append(InvalidEvent("bad_qty", f"qty: {qty!r} is not an integer number of units"))
        return out
    if abs(qty) > max_qty:
        out.append(InvalidEvent("qty_out_of_range", f"qty: more than {max_qty:,} units"))
    if kind in EVENT_TYPES:
        out.extend(_type_problems(str(kind), qty, event, default_location))
    return out


def _type_problems(
    kind: str, qty: int, event: Mapping[str, Any], default_location: str | None
) -> list[InvalidEvent]:
    out: list[InvalidEvent] = []
    if kind in NEEDS_REASON and not event.get("reason"):
        out.append(
            InvalidEvent("missing_reason", f"reason: required for {kind} ({NEEDS_REASON[kind]})")
        )
    if kind == "adjustment":
        if qty == 0:
            out.append(InvalidEvent("zero_qty", "qty: an adjustment of 0 changes nothing"))
        return out
    if qty < 0:
        out.append(
            InvalidEvent("negative_qty", f"qty: must not be negative for {kind} (got {qty})")
        )
    elif qty == 0 and kind in POSITIVE:
        out.append(InvalidEvent("zero_qty", f"qty: {kind} needs at least one unit"))
    if kind in NEEDS_ORDER and not event.get("order_id"):
        out.append(InvalidEvent("missing_order_id", f"order_id: required for {kind}"))
    if kind in NEEDS_PO and not event.get("source_ref"):
        out.append(
            InvalidEvent("missing_source_ref", f"source_ref: the purchase order number, for {kind}")
        )
    if kind == "quarantine_released" and event.get("disposition") not in RELEASE_DISPOSITIONS:
        out.append(
            InvalidEvent(
                "bad_disposition",
                "disposition: resellable (back to sellable stock) or damaged (written off) "
                "for quarantine_released",
            )
        )
    if kind == "hold":
        out.extend(_hold_problems(event))
    if kind == "transfer":
        to = event.get("to_location")
        if not to:
            out.append(InvalidEvent("missing_to_location", "to_location: required for a transfer"))
        elif to == (event.get("location") or default_location):
            out.append(InvalidEvent("same_location", f"to_location: {to!r} is the source"))
    return out


def _lot_problems(event: Mapping[str, Any]) -> list[InvalidEvent]:
    """``lot`` (text, checked above) only on the types that name one, without a comma;
    ``expires_on`` (days since 1970-01-01) only on a receipt of a lot."""
    out: list[InvalidEvent] = []
    lot, expires, kind = event.get("lot"), event.get("expires_on"), event.get("type")
    if isinstance(lot, str):
        if "," in lot:
            out.append(InvalidEvent("bad_lot", "lot: a lot name has no comma"))
        if kind in EVENT_TYPES and kind not in LOT_TYPES:
            out.append(
                InvalidEvent(
                    "lot_not_applicable",
                    f"lot: only on {', '.join(sorted(LOT_TYPES))}; a {kind} takes lots "
                    "earliest expiry first (FEFO): leave lot out",
                )
            )
    if expires is None:
        return out
    if not _is_int(expires):
        out.append(InvalidEvent("bad_expires_on", "expires_on: a date (days since 1970-01-01)"))
    elif not MIN_TIME_MS // DAY_MS <= expires < MAX_TIME_MS // DAY_MS:
        out.append(
            InvalidEvent("bad_expires_on", "expires_on: not between 2000-01-01 and 2099-12-31")
        )
    elif lot is None:
        out.append(InvalidEvent("expires_on_without_lot", "expires_on: only with a lot"))
    elif kind in EVENT_TYPES and kind != "receipt":
        out.append(
            InvalidEvent("expires_on_not_applicable", "expires_on: only on the receipt of a lot")
        )
    return out


def _expected_problems(event: Mapping[str, Any]) -> list[InvalidEvent]:
    """``expected_on`` (days since 1970-01-01) only on a ``purchase_ordered``."""
    expected, kind = event.get("expected_on"), event.get("type")
    if not _is_int(expected):
        return [InvalidEvent("bad_expected_on", "expected_on: a date (days since 1970-01-01)")]
    if not MIN_TIME_MS // DAY_MS <= expected < MAX_TIME_MS // DAY_MS:
        return [
            InvalidEvent("bad_expected_on", "expected_on: not between 2000-01-01 and 2099-12-31")
        ]
    if kind in EVENT_TYPES and kind != "purchase_ordered":
        return [
            InvalidEvent(
                "expected_on_not_applicable",
                "expected_on: only on purchase_ordered (the purchase order's expected day)",
            )
        ]
    return []


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _hold_problems(event: Mapping[str, Any]) -> list[InvalidEvent]:
    """A hold's expiry: after it is placed, and no later than the maximum TTL, whichever
    route it came by (``POST /v1/holds``, ``POST /v1/events``, a producer)."""
    expires, placed = event.get("expires_at"), event.get("occurred_at")
    if not _is_int(expires) or not _is_int(placed):
        return []  # absent (the configured TTL applies) or already reported as malformed
    if expires <= placed:
        return [InvalidEvent("bad_expires_at", "expires_at: must be after occurred_at")]
    if expires - placed > _MAX_HOLD_TTL_MS:
        return [
            InvalidEvent(
                "hold_ttl_too_long",
                f"expires_at: at most {MAX_HOLD_TTL_SECONDS} s ({MAX_HOLD_TTL_SECONDS // 86400} "
                "days) after occurred_at",
            )
        ]
    return []
