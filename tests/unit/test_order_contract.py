"""The Order contract: one place builds and checks an order, from JSON or from a connector."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from schemas.codec import single_object_codec
from schemas.orders import (
    ACTIONABLE,
    COUNTRIES,
    InvalidOrder,
    action_event,
    check,
    from_json,
    order_event,
    problems,
    redacted,
)
from streams.kernel.topics import ORDERS
from tests.unit.schema_samples import SAMPLES

T = 1_795_420_800_000


def good(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "order_id": "1001",
        "channel": "erp",
        "lines": [
            {"line_id": "1", "sku": "chair", "qty": 2, "unit_price": 4990, "currency": "EUR"},
            {"line_id": "2", "sku": "desk", "qty": 1},
        ],
        "ship_to": {"country": "FR", "postal_code": "69002", "lat": 45.75, "lon": 4.83},
        "customer_ref": "c-81",
        "customer_type": "b2b",
        "risk": "low",
        "placed_at": "2026-11-23T08:00:00Z",
    }
    item.update(changes)
    return {k: v for k, v in item.items() if v is not None}


def reasons(item: Any) -> list[str]:
    record, found = from_json(item, received=T)
    assert (record is None) == bool(found)
    return [p.reason for p in found]


def test_a_valid_item_becomes_a_placed_order_named_channel_colon_id_that_encodes() -> None:
    """Given a valid JSON order of channel erp with its own id 1001, when built, then it is a
    placed Order record erp:1001 with a deterministic event id, times in epoch ms, and it
    encodes with the Order schema."""
    record, found = from_json(good(), source="api:erp", received=T + 5)
    assert found == []
    assert record is not None
    assert record["order_id"] == "erp:1001"
    assert record["event_id"] == "erp:1001:placed"
    assert record["type"] == "placed"
    assert record["placed_at"] == record["occurred_at"] == T
    assert record["ingested_at"] == T + 5
    assert record["source"] == "api:erp"
    assert record["lines"][1] == {
        "line_id": "2",
        "sku": "desk",
        "qty": 1,
        "unit_price": None,
        "currency": None,
    }
    assert record["delivery"] == "ship" and record["customer_type"] == "b2b"
    codec = single_object_codec()
    assert codec.decode(codec.encode(ORDERS.value_schema, record))[1] == record


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"lines": []}, "missing_lines"),
        ({"lines": None}, "missing_lines"),
        ({"lines": [{"line_id": "1", "sku": "chair", "qty": 0}]}, "bad_qty"),
        ({"lines": [{"line_id": "1", "sku": "chair", "qty": -2}]}, "bad_qty"),
        ({"lines": [{"line_id": "1", "sku": "chair", "qty": 1.5}]}, "bad_qty"),
        ({"lines": [{"line_id": "1", "sku": "chair", "qty": True}]}, "bad_qty"),
        (
            {
                "lines": [
                    {"line_id": "1", "sku": "a", "qty": 1},
                    {"line_id": "1", "sku": "b", "qty": 1},
                ]
            },
            "duplicate_line_id",
        ),
        ({"lines": [{"line_id": "1", "sku": "  ", "qty": 1}]}, "blank_sku"),
        ({"lines": [{"line_id": "", "sku": "a", "qty": 1}]}, "missing_line_id"),
        ({"lines": [{"line_id": "1", "sku": "a", "qty": 1, "unit_price": 5}]}, "missing_currency"),
        (
            {"lines": [{"line_id": "1", "sku": "a", "qty": 1, "unit_price": 5, "currency": "eur"}]},
            "bad_currency",
        ),
        (
            {
                "lines": [
                    {"line_id": "1", "sku": "a", "qty": 1, "unit_price": -5, "currency": "EUR"}
                ]
            },
            "bad_unit_price",
        ),
        ({"ship_to": {"country": "UK"}}, "bad_country"),
        ({"ship_to": {"country": "fr"}}, "bad_country"),
        ({"ship_to": {"country": [{"FR": 1}, {}]}}, "bad_country"),  # found by the API fuzzer
        ({"ship_to": {"country": "FR", "lat": 91, "lon": 0}}, "bad_coordinates"),
        ({"ship_to": {"country": "FR", "lat": 45.0}}, "bad_coordinates"),
        ({"ship_to": None}, "missing_ship_to"),
        ({"delivery": "pickup"}, "missing_pickup_location"),
        ({"delivery": "drone"}, "bad_delivery"),
        ({"pickup_location": "lyon"}, "bad_pickup_location"),
        ({"customer_type": "vip"}, "bad_customer_type"),
        ({"customer_ref": "jane@example.com"}, "personal_data"),
        ({"email": "jane@example.com"}, "personal_data"),
        ({"ship_to": {"country": "FR", "address1": "1 rue X"}}, "personal_data"),
        ({"order_id": "erp:1001"}, "prefixed_order_id"),
        ({"order_id": None}, "missing_order_id"),
        ({"order_id": "a/b"}, "bad_order_id"),
        ({"order_id": "  "}, "bad_order_id"),
        ({"channel": None}, "missing_channel"),
        ({"channel": "Big Shop"}, "bad_channel"),
        ({"risk": "x" * 300}, "too_long"),
        ({"placed_at": "yesterday"}, "bad_placed_at"),
        ({"placed_at": 1_700_000_000}, "bad_placed_at"),
        ({"gift_wrap": True}, "unknown_field"),
    ],
)
def test_each_malformed_field_is_refused_with_its_reason(
    changes: dict[str, Any], reason: str
) -> None:
    """Given a valid order with one field broken, when built, then no record is made and the
    problems name that field's reason code."""
    item = good()
    item.update(changes)
    assert reason in reasons({k: v for k, v in item.items() if v is not None})


def test_a_pickup_needs_no_ship_to_but_its_store() -> None:
    """Given a pickup at lyon without ship_to, when built, then it is a valid placed order."""
    record, found = from_json(good(ship_to=None, delivery="pickup", pickup_location="lyon"))
    assert found == [] and record is not None
    assert record["ship_to"] is None and record["pickup_location"] == "lyon"


def test_personal_fields_are_named_in_the_refusal_and_removed_from_what_is_kept() -> None:
    """Given an order with a name, an email and a street in ship_to, when built, then it is
    refused naming each field, and its redacted copy (for the dead letter) holds none of
    their values."""
    item = good(name="Jane Doe", email="jane@example.com")
    item["ship_to"] = {**item["ship_to"], "address1": "1 rue de la Paix"}
    _, found = from_json(item)
    personal = [p for p in found if p.reason == "personal_data"]
    assert len(personal) == 1
    for name in ("email", "name", "ship_to.address1"):
        assert name in personal[0].message
    kept = repr(redacted(item))
    for value in ("Jane Doe", "jane@example.com", "1 rue de la Paix"):
        assert value not in kept
    assert "69002" in kept


def test_not_an_object_is_refused() -> None:
    """Given a JSON string as an item, when built, then it is refused as bad_item."""
    assert reasons("order") == ["bad_item"]


def test_the_sample_order_passes_the_check_and_a_broken_id_does_not() -> None:
    """Given the schema's sample Order, when checked, then it is placed; with an order id not
    under its channel, then bad_order_id."""
    sample = SAMPLES["stockflow.v1.Order"]
    assert check(sample) == "placed"
    with pytest.raises(InvalidOrder) as caught:
        check({**sample, "order_id": "woocommerce:1001"})
    assert caught.value.reason == "bad_order_id"


def test_an_action_event_names_who_and_why_and_fits_the_schema() -> None:
    """Given an operator rerouting erp:1001 to lyon, when built, then it is a rerouted event
    by that token with its note and location; approving with a location is refused."""
    event = action_event("rerouted", "erp:1001", by="ops", note="closer", location="lyon", at=T)
    assert (event["type"], event["by"], event["note"], event["location"]) == (
        "rerouted",
        "ops",
        "closer",
        "lyon",
    )
    assert event["channel"] == "erp" and event["lines"] == []
    codec = single_object_codec()
    assert codec.decode(codec.encode(ORDERS.value_schema, event))[1] == event
    other = action_event("rerouted", "erp:1001", by="ops", at=T)
    assert other["event_id"] != event["event_id"]
    with pytest.raises(InvalidOrder):
        action_event("approved", "erp:1001", by="ops", location="lyon")
    with pytest.raises(InvalidOrder):
        action_event("placed", "erp:1001", by="ops")
    with pytest.raises(InvalidOrder):
        action_event("approved", "erp:1001", by="ops", note="x" * 1000)
    assert set(ACTIONABLE) == {"approved", "rejected", "rerouted", "cancel_requested"}


def test_order_event_refuses_names_that_are_not_fields() -> None:
    """Given a field the schema lacks, when an Order is built, then TypeError."""
    with pytest.raises(TypeError):
        order_event("placed", "erp:1", "erp", "e", T, email="x")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


@given(
    item=st.fixed_dictionaries(
        {},
        optional={
            "order_id": JSON,
            "channel": JSON,
            "lines": JSON,
            "ship_to": JSON,
            "delivery": JSON,
            "customer_type": JSON,
            "placed_at": JSON,
        },
    )
)
def test_any_json_is_either_a_record_that_passes_the_check_and_encodes_or_refused(
    item: dict[str, Any],
) -> None:
    """Given any JSON values in an order's fields, when built, then either problems are
    reported (never an exception) or the record passes the book's check and encodes."""
    record, found = from_json(item, received=T)
    if record is None:
        assert found and all(p.reason and p.message for p in found)
        return
    assert problems(record) == []
    single_object_codec().encode(ORDERS.value_schema, record)


TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Zs", "Zl", "Zp", "Cc")),
    min_size=1,
    max_size=12,
)
VALID_LINES = st.lists(
    st.fixed_dictionaries(
        {"sku": TEXT, "qty": st.integers(1, 10**6)},
        optional={"unit_price": st.integers(0, 10**9)},
    ),
    min_size=1,
    max_size=6,
)


@given(
    own_id=TEXT.filter(lambda t: "/" not in t),
    channel=st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True),
    lines=VALID_LINES,
    country=st.sampled_from(sorted(COUNTRIES)),
    pickup=st.booleans(),
    kind=st.sampled_from(["b2c", "b2b"]),
)
def test_any_well_formed_order_is_accepted_with_its_fields_kept(
    own_id: str,
    channel: str,
    lines: list[dict[str, Any]],
    country: str,
    pickup: bool,
    kind: str,
) -> None:
    """Given any order meeting the documented shape, when built, then it is accepted as
    channel:id with every line, quantity, price and the ship-to kept as sent."""
    for i, line in enumerate(lines):
        line["line_id"] = str(i)
        if "unit_price" in line:
            line["currency"] = "EUR"
    item: dict[str, Any] = {
        "order_id": own_id,
        "channel": channel,
        "lines": lines,
        "ship_to": {"country": country},
        "customer_type": kind,
    }
    if pickup:
        item.update(delivery="pickup", pickup_location="store-1")
    assume(not own_id.startswith(f"{channel}:"))  # refused: prefixed_order_id
    record, found = from_json(item, received=T)
    assert found == [], [p.message for p in found]
    assert record is not None
    assert record["order_id"] == f"{channel}:{own_id}"
    assert [(x["line_id"], x["sku"], x["qty"], x["unit_price"]) for x in record["lines"]] == [
        (x["line_id"], x["sku"], x["qty"], x.get("unit_price")) for x in lines
    ]
    assert record["ship_to"]["country"] == country
    assert record["delivery"] == ("pickup" if pickup else "ship")
