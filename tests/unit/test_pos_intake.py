"""The tills' intake rules (streams.worker.pos, streams.worker.pos_import) and the ledger's
order-independence for a till's counts and deltas."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import stock_event
from streams.ledger import apply, parse_config
from streams.worker.pos import MAX_CHANGES, CallError, event_id, parse_call
from streams.worker.pos_import import UnreadableFileError, read_rows

BASE = 1_700_000_000_000
STORE = "paris"
SKU = "mug"
CONFIG = parse_config({"journal_limit": 1000})


def _call(key: str, changes: list[dict[str, Any]], store: str = STORE) -> dict[str, Any]:
    return {"idempotency_key": key, "store": store, "changes": changes}


def _parse(body: Any) -> Any:
    return parse_call(body, source="pos:paris", received_ms=BASE + 10**7)


# -- order independence (property) -------------------------------------------------------

_KINDS = {"sale": -1, "return": 1, "adjustment": 1, "count": 0}


@st.composite
def till_day(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A till's calls: each a few changes at distinct till times (ms)."""
    n = draw(st.integers(1, 30))
    times = draw(st.lists(st.integers(1, 100_000), min_size=n, max_size=n, unique=True))
    changes = []
    for at in times:
        kind = draw(st.sampled_from(list(_KINDS)))
        qty = draw(st.integers(0, 40)) if kind == "count" else draw(st.integers(1, 5))
        if kind == "adjustment" and draw(st.booleans()):
            qty = -qty
        change = {"type": kind, "sku": SKU, "qty": qty, "occurred_at": BASE + at}
        if kind == "adjustment":
            change["reason"] = "damage"
        if draw(st.booleans()):
            change["id"] = f"line-{at}"
        changes.append(change)
    sizes = draw(st.lists(st.integers(1, 5), min_size=1, max_size=n))
    calls, i = [], 0
    for k, size in enumerate(sizes * n):
        if i >= n:
            break
        calls.append(_call(f"k{k}", changes[i : i + size]))
        i += size
    return calls


def _expected(calls: list[dict[str, Any]]) -> int:
    """The stock the till's changes say, read in the till's time order."""
    changes = sorted((c for call in calls for c in call["changes"]), key=lambda c: c["occurred_at"])
    on_hand = 0
    for c in changes:
        on_hand = c["qty"] if c["type"] == "count" else on_hand + _KINDS[c["type"]] * c["qty"]
    return on_hand


def _apply_calls(calls: list[dict[str, Any]]) -> int:
    state = None
    for body in calls:
        for result in _parse(body).results:
            assert result.event is not None, result.errors
            state, _ = apply(state, result.event, CONFIG, BASE + 10**7)
    assert state is not None
    return state.locations[STORE].on_hand


@settings(max_examples=150, deadline=None)
@given(till_day(), st.data())
def test_any_arrival_order_of_a_tills_calls_with_retries_gives_the_same_stock(
    calls: list[dict[str, Any]], data: st.DataObject
) -> None:
    """Given a till's day of sales, returns, adjustments and shelf counts split into calls,
    When the calls reach the ledger in any order, some of them retried (sent twice),
    Then the store's on_hand is exactly what the changes say in the till's time order:
    counts rebase, older deltas are held by a later count, nothing is applied twice."""
    order = data.draw(st.permutations(calls))
    retried = data.draw(st.lists(st.sampled_from(calls), max_size=5))
    arrived = list(order)
    for call in retried:
        arrived.insert(data.draw(st.integers(0, len(arrived))), call)
    assert _apply_calls(arrived) == _expected(calls)


def test_a_sale_from_before_the_last_count_arriving_late_is_held_by_the_count() -> None:
    """Given a store counted at 10 units at 12:00,
    When a till sale made at 11:00 arrives after the count, then one made at 13:00,
    Then the 11:00 sale moves nothing (the count saw the shelf without it) and the 13:00 sale
    takes one unit: 9."""
    count = _parse(_call("a", [{"type": "count", "sku": SKU, "qty": 10, "occurred_at": BASE}]))
    late = _parse(_call("b", [{"type": "sale", "sku": SKU, "qty": 1, "occurred_at": BASE - 1}]))
    after = _parse(_call("c", [{"type": "sale", "sku": SKU, "qty": 1, "occurred_at": BASE + 1}]))
    state, _ = apply(None, count.results[0].event, CONFIG, BASE)
    state, out = apply(state, late.results[0].event, CONFIG, BASE)
    assert out.skipped == "before_count" and not out.movements
    state, _ = apply(state, after.results[0].event, CONFIG, BASE)
    assert state.locations[STORE].on_hand == 9


def test_a_receipt_from_before_the_last_count_still_clears_what_was_incoming() -> None:
    """Given 5 units incoming to a store, then a count as of 12:00,
    When the receipt of those 5 units, made at 11:00, arrives after the count,
    Then on_hand stays the counted figure and incoming drops to 0."""
    config = parse_config({})
    po = stock_event(
        "purchase_ordered", SKU, "po", BASE - 9, qty=5, location=STORE, source_ref="P1"
    )
    count = stock_event("stock_count", SKU, "c", BASE, qty=7, location=STORE, as_of=BASE)
    receipt = stock_event("receipt", SKU, "r", BASE - 1, qty=5, location=STORE)
    state = None
    for ev in (po, count, receipt):
        state, out = apply(state, ev, config, BASE)
    assert state is not None and out.skipped == "before_count"
    loc = state.locations[STORE]
    assert (loc.on_hand, loc.incoming) == (7, 0)


# -- the call's contract ------------------------------------------------------------------


def test_a_retried_call_gets_the_same_answer_and_the_same_event_ids() -> None:
    """Given a call with a change carrying the till's id and one without,
    When it is parsed twice (a retry after a lost answer),
    Then both answers are equal, the till's id names its event and the other is named by
    the key and its index."""
    body = _call(
        "till-7-0042",
        [
            {"type": "sale", "sku": SKU, "qty": 2, "occurred_at": "2026-11-30T09:00:00Z"},
            {"type": "return", "sku": SKU, "qty": 1, "occurred_at": BASE, "id": "r-9"},
        ],
    )
    first, again = _parse(body), _parse(body)
    assert first.answer() == again.answer()
    ids = [r["event_id"] for r in first.answer()["results"]]
    assert ids == ["pos.paris.till-7-0042.0", "pos.paris.r-9"]
    sale = first.results[0].event
    assert sale["type"] == "sale" and sale["location"] == STORE and sale["channel"] == "pos"
    assert first.results[1].event["type"] == "return_received"


def test_a_count_is_a_stock_count_as_of_the_tills_time() -> None:
    """Given a till's shelf count at 09:00 UTC,
    When it is parsed,
    Then it is a stock_count whose as_of is that time (so the ledger rebases on it)."""
    call = _parse(_call("k", [{"type": "count", "sku": SKU, "qty": 0, "occurred_at": BASE}]))
    event = call.results[0].event
    assert event["type"] == "stock_count" and event["as_of"] == BASE and event["qty"] == 0


def test_bad_changes_are_refused_one_by_one_and_the_good_ones_kept() -> None:
    """Given a call with a good sale and five bad changes,
    When it is parsed,
    Then the sale is accepted and every bad change is refused with the field at fault."""
    changes = [
        {"type": "sale", "sku": SKU, "qty": 1, "occurred_at": BASE},
        {"type": "theft", "sku": SKU, "qty": 1, "occurred_at": BASE},
        {"type": "sale", "sku": SKU, "qty": 1},
        {"type": "sale", "sku": SKU, "qty": -1, "occurred_at": BASE},
        {"type": "adjustment", "sku": SKU, "qty": -1, "occurred_at": BASE},
        {"type": "sale", "sku": SKU, "qty": 1, "occurred_at": BASE, "id": "a/b"},
    ]
    answer = _parse(_call("k", changes)).answer()
    assert (answer["accepted"], answer["rejected"]) == (1, 5)
    errors = [" ".join(r.get("errors", [])) for r in answer["results"]]
    assert errors[0] == ""
    for i, field in enumerate(["type", "occurred_at", "qty", "reason", "id"], start=1):
        assert field in errors[i], (field, errors[i])


def test_two_changes_of_one_call_with_one_id_refuse_the_second() -> None:
    """Given a call whose two changes carry the same till id,
    When it is parsed,
    Then the first is accepted and the second refused (it would be lost as a duplicate)."""
    change = {"type": "sale", "sku": SKU, "qty": 1, "occurred_at": BASE, "id": "x"}
    statuses = [r["status"] for r in _parse(_call("k", [change, change])).answer()["results"]]
    assert statuses == ["accepted", "rejected"]


@pytest.mark.parametrize(
    ("body", "fault"),
    [
        ([], "JSON object"),
        ({"store": STORE, "changes": [{}]}, "idempotency_key"),
        (_call("k", [], store=""), "store"),
        (_call("k", []), "changes"),
        (_call("a/b", [{}]), "idempotency_key"),
        (_call("k", [{}] * (MAX_CHANGES + 1)), f"at most {MAX_CHANGES}"),
    ],
)
def test_a_call_without_key_store_or_changes_is_refused_whole(body: Any, fault: str) -> None:
    """Given a call missing its key, store or changes, or with too many changes,
    When it is parsed,
    Then CallError names the fault and nothing of it is applied."""
    with pytest.raises(CallError, match=fault):
        _parse(body)


# -- the end-of-day CSV -------------------------------------------------------------------


def test_the_csv_names_bad_rows_by_line_and_shares_ids_with_the_api() -> None:
    """Given an end-of-day CSV with good rows, a bad quantity, an unknown type, a short row,
    When it is read,
    Then bad rows are reported with their line numbers and reasons, good rows become sales
    named like the API's changes (pos.{store}.{id}), and a row without id gets a stable one."""
    text = (
        "id;sku;qty;occurred_at;type\n"
        "s1;mug;2;2026-11-30T09:00:00Z;\n"
        "s2;mug;two;2026-11-30T09:01:00Z;sale\n"
        "\n"
        "s3;mug;1;2026-11-30T09:02:00Z;theft\n"
        "s4;mug;1\n"
        ";mug;1;2026-11-30T09:03:00Z;return\n"
    )
    rows = list(read_rows(text, store=STORE, source="pos:paris", received_ms=BASE))
    bad = {r.line: " ".join(r.result.errors) for r in rows if not r.result.ok}
    assert set(bad) == {3, 5, 6}
    assert "qty" in bad[3] and "type" in bad[5] and "cells" in bad[6]
    good = [r.result.event for r in rows if r.result.ok]
    assert good[0]["event_id"] == event_id(STORE, "s1", None, 0) == "pos.paris.s1"
    assert good[0]["type"] == "sale" and good[1]["type"] == "return_received"
    again = list(read_rows(text, store=STORE, source="pos:paris", received_ms=BASE + 1))
    assert again[-1].result.event["event_id"] == good[1]["event_id"]


def test_a_csv_without_a_required_column_is_unreadable() -> None:
    """Given a CSV whose header lacks occurred_at,
    When it is read,
    Then UnreadableFileError names the missing column (nothing is sent)."""
    with pytest.raises(UnreadableFileError, match="occurred_at"):
        list(read_rows("id,sku,qty\n1,mug,1\n", store=STORE, source="s", received_ms=BASE))
