"""One event contract: the HTTP intake accepts exactly what the ledger applies."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import CodecError, single_object_codec
from schemas.events import (
    DISPOSITIONS,
    EVENT_TYPES,
    FIELDS,
    MAX_TIME_MS,
    MIN_TIME_MS,
    InvalidEvent,
    check,
    stock_event,
)
from schemas.times import now_ms, parse_time_ms
from streams.ledger import DEFAULT_CONFIG, apply, parse_config
from streams.worker.intake import parse_items

SCHEMA = "stockflow.v1.StockEvent"
CODEC = single_object_codec()
NOW = 1_795_000_000_000
LOCATION = DEFAULT_CONFIG.default_location

_INT_FIELDS = ("qty", "source_seq")
_TIME_FIELDS = ("occurred_at", "as_of", "expires_at")
_BAD_TEXT = st.sampled_from(["", "  ", "x" * 257, 7])
_PLACES = st.sampled_from(["a", "b", LOCATION, "x" * 256])
_WORDS = st.sampled_from(["o-1", "web", "damage"])
_TIME_GOOD = st.one_of(
    st.integers(MIN_TIME_MS, MAX_TIME_MS - 1),
    st.sampled_from(["2026-11-23T08:00:00Z", "2026-11-23T09:00+01:00", "2000-01-01T00:00:00Z"]),
)
_TIME_BAD = st.sampled_from(
    [
        -1,
        0,
        1_795_000_000,  # seconds, not milliseconds
        MIN_TIME_MS - 1,
        MAX_TIME_MS,
        2**53,
        2**70,
        "1999-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
        "2026-11-23T08:00",
        "soon",
        True,
        1.5,
    ]
)
# (well-formed values, malformed values) of every field a caller may send
_VALUES: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    "event_id": (st.just("e-1"), _BAD_TEXT),
    "sku": (st.just("chair"), _BAD_TEXT),
    "type": (st.sampled_from(sorted(EVENT_TYPES)), st.sampled_from(["unknown", "teleport", 3])),
    "qty": (
        st.integers(1, 3),
        st.sampled_from([0, -2, 10**9, 10**9 + 1, -(10**9) - 1, 2**70, True, 1.0, "2"]),
    ),
    "location": (_PLACES, _BAD_TEXT),
    "to_location": (_PLACES, _BAD_TEXT),
    "channel": (_WORDS, _BAD_TEXT),
    "order_id": (_WORDS, _BAD_TEXT),
    "source": (_WORDS, _BAD_TEXT),
    "source_ref": (_WORDS, _BAD_TEXT),
    "reason": (_WORDS, _BAD_TEXT),
    "source_seq": (st.integers(-5, 5), st.sampled_from([2**64, 1.0, "1"])),
    "occurred_at": (_TIME_GOOD, _TIME_BAD),
    "as_of": (_TIME_GOOD, _TIME_BAD),
    "expires_at": (_TIME_GOOD, _TIME_BAD),
    "disposition": (st.sampled_from(sorted(DISPOSITIONS)), st.sampled_from(["lost", 1])),
    "colour": (st.just("red"), st.just("red")),  # not a StockEvent field
}
_LIKELY = ("event_id", "sku", "type", "qty", "order_id")


@st.composite
def json_items(draw: st.DrawFn) -> dict[str, Any]:
    """A JSON object as a caller might post it: often well-formed, often not, in every way."""
    names = [n for n in _VALUES if n not in _LIKELY]
    chosen = draw(st.lists(st.sampled_from(names), max_size=5, unique=True))
    item = {}
    for name in (*_LIKELY, *chosen):
        roll = draw(st.integers(0, 15))
        if roll == 0 and name in _LIKELY:
            continue  # a required field missing
        good, bad = _VALUES[name]
        item[name] = draw(bad if roll == 1 else st.none() if roll == 2 else good)
    return item


def as_record(item: dict[str, Any]) -> dict[str, Any] | None:
    """The StockEvent record a producer would send for ``item`` straight to Kafka, or None
    when the item has no such form (a field Avro does not carry, a JSON type of another kind,
    a time that is no time)."""
    if set(item) - set(FIELDS):
        return None
    fields = {k: v for k, v in item.items() if v is not None}
    for name in _TIME_FIELDS:
        if name in fields:
            try:
                fields[name] = parse_time_ms(fields[name], name)
            except ValueError:
                return None
    for name in (*_INT_FIELDS, *_TIME_FIELDS):
        if isinstance(fields.get(name), bool | float):
            return None
    return stock_event(
        fields.pop("type", None),
        fields.pop("sku", None),
        fields.pop("event_id", None),
        fields.pop("occurred_at", now_ms()),  # what the intake stamps on an item without one
        ingested_at=NOW,
        **fields,
    )


def ledger_applies(record: dict[str, Any]) -> bool:
    """True when the record survives the Avro codec and the ledger applies or decides on it;
    False when either refuses it (the ledger would dead-letter it)."""
    try:
        event = CODEC.decode_as(SCHEMA, CODEC.encode(SCHEMA, record))
    except CodecError:
        return False
    try:
        apply(None, event, DEFAULT_CONFIG, NOW)
    except InvalidEvent:
        return False
    return True


@settings(max_examples=1500)
@given(json_items())
def test_intake_accepts_an_item_exactly_when_the_ledger_applies_it(item: dict[str, Any]) -> None:
    """Given any JSON item, when POST /v1/events parses it and the same item reaches the
    ledger as a StockEvent, then the intake accepts it if and only if the ledger does not
    dead-letter it; and what the intake accepted encodes and is applied as it is."""
    [result] = parse_items(item, source="api", default_location=LOCATION)
    record = as_record(item)
    ledger_ok = record is not None and ledger_applies(record)
    assert result.ok == ledger_ok, (result.errors, record)
    if result.event is not None:
        assert ledger_applies(result.event)


_LIMITED = ("quarantine_released", "purchase_ordered", "purchase_cancelled", "hold", "transfer")
_THEIR_FIELDS = ("reason", "disposition", "source_ref", "occurred_at", "expires_at", "to_location")


@st.composite
def limited_items(draw: st.DrawFn) -> dict[str, Any]:
    """Items of the types with type-specific rules, their own fields often present."""
    item = draw(json_items())
    item["type"] = draw(st.sampled_from(_LIMITED))
    for name in _THEIR_FIELDS:
        roll = draw(st.integers(0, 5))
        if roll < 3:
            good, bad = _VALUES[name]
            item[name] = draw(bad if roll == 0 else good)
    if draw(st.booleans()) and isinstance(item.get("occurred_at"), int):
        item["expires_at"] = item["occurred_at"] + draw(
            st.sampled_from([-1, 0, 1, 7 * 86_400_000, 7 * 86_400_000 + 1])
        )
    return item


@settings(max_examples=1000)
@given(limited_items())
def test_intake_and_ledger_agree_on_releases_purchase_orders_holds_and_transfers(
    item: dict[str, Any],
) -> None:
    """Given JSON items of quarantine_released, purchase_ordered, purchase_cancelled, hold
    and transfer, their own fields (reason, disposition, PO number, expiry near the maximum
    TTL) present, absent or malformed, when posted and when sent straight to the ledger,
    then the intake accepts exactly what the ledger applies or decides on."""
    [result] = parse_items(item, source="api", default_location=LOCATION)
    record = as_record(item)
    ledger_ok = record is not None and ledger_applies(record)
    assert result.ok == ledger_ok, (result.errors, record)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"type": "return_received", "qty": 0}, "zero_qty"),
        ({"type": "adjustment", "qty": 0, "reason": "count"}, "zero_qty"),
        ({"type": "transfer", "qty": 1, "to_location": LOCATION}, "same_location"),
        ({"type": "sale", "qty": 10**9 + 1}, "qty_out_of_range"),
        ({"type": "sale", "qty": 1, "channel": ""}, "bad_text"),
        ({"type": "quarantine_released", "qty": 1, "disposition": "damaged"}, "missing_reason"),
        ({"type": "purchase_ordered", "qty": 4}, "missing_source_ref"),
        (
            {
                "type": "hold",
                "qty": 1,
                "order_id": "cart",
                "occurred_at": "2026-11-23T08:00:00Z",
                "expires_at": "2026-12-01T08:00:01Z",
            },
            "hold_ttl_too_long",
        ),
    ],
)
def test_events_the_ledger_once_dead_lettered_are_refused_at_intake_with_its_reason(
    fields: dict[str, Any], reason: str
) -> None:
    """Given a return of 0, an adjustment of 0, a transfer to its own location, a quantity
    out of range, an empty channel, a quarantine release without reason, a purchase order
    without its number and a hold of 7 days and 1 second, when posted, then the intake
    refuses each, and the ledger's check names the same reason."""
    item = {"event_id": "e", "sku": "chair", **fields}
    [result] = parse_items(item, default_location=LOCATION)
    assert not result.ok
    record = as_record(item)
    assert record is not None
    with pytest.raises(InvalidEvent) as refused:
        check(record, default_location=LOCATION)
    assert refused.value.reason == reason
    assert refused.value.message in result.errors


@pytest.mark.parametrize(("qty", "ok"), [(500, True), (-500, True), (501, False), (-501, False)])
def test_a_configured_quantity_bound_holds_at_intake_and_in_the_ledger_alike(
    qty: int, ok: bool
) -> None:
    """Given a ledger configured with max_qty 500, when an adjustment of ``qty`` is posted
    and the same event reaches the ledger, then both accept it or both refuse it with
    ``qty_out_of_range``."""
    config = parse_config({"max_qty": 500})
    item = {"event_id": "e", "sku": "chair", "type": "adjustment", "qty": qty, "reason": "x"}
    [result] = parse_items(item, default_location=LOCATION, max_qty=config.max_qty)
    record = as_record(item)
    assert record is not None
    assert result.ok is ok
    if ok:
        apply(None, record, config, NOW)
    else:
        with pytest.raises(InvalidEvent) as refused:
            apply(None, record, config, NOW)
        assert refused.value.reason == "qty_out_of_range"
        assert refused.value.message in result.errors


@pytest.mark.parametrize("when", [0, MIN_TIME_MS - 1, MAX_TIME_MS, 1_795_000_000, 2**53 - 1])
def test_times_outside_2000_to_2100_are_refused_by_intake_and_ledger(when: int) -> None:
    """Given an event whose occurred_at is before 2000, from 2100 on, or seconds sent as
    milliseconds, when posted and when it reaches the ledger, then both refuse it with
    ``bad_occurred_at``."""
    record = stock_event("sale", "chair", "e", when, qty=1, source="t")
    with pytest.raises(InvalidEvent) as refused:
        apply(None, record, DEFAULT_CONFIG, NOW)
    assert refused.value.reason == "bad_occurred_at"
    [result] = parse_items(
        {"event_id": "e", "sku": "chair", "type": "sale", "qty": 1, "occurred_at": when},
        default_location=LOCATION,
    )
    assert not result.ok
