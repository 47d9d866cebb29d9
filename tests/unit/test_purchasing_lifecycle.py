"""The lifecycle of a proposal and its purchase order, as pure rules: statuses, versions,
line edits (pack size, MOQ), receipts (partial, over, unknown SKU), cancellations, lateness."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.codec import single_object_codec
from streams.purchasing import lifecycle as lc
from streams.purchasing.service import late_alert, purchase_event

T = 1_795_420_800_000


def line(sku: str = "chair", qty: int = 24, pack: int = 6, moq: int = 12) -> dict[str, Any]:
    return {
        "sku": sku,
        "supplier_sku": f"ACME-{sku}",
        "qty": qty,
        "proposed_qty": qty,
        "pack_size": pack,
        "moq": moq,
        "unit_cost": 2000,
        "policy": "min_max",
        "available": 3,
        "incoming": 0,
        "projected_available": 3,
        "forecast_lead_time": 0.0,
        "safety_stock": 0,
        "forecast_method": None,
        "reason": "available 3 <= min 5: up to max 30",
        "last_order_qty": None,
        "received_qty": 0,
        "cancelled_qty": 0,
    }


def planned(*lines: dict[str, Any], pid: str = "PO-acme-lyon-1") -> dict[str, Any]:
    return {
        "proposal_id": pid,
        "version": 1,
        "status": "proposed",
        "supplier": "acme",
        "location": "lyon",
        "currency": "EUR",
        "total": 0,
        "lines": list(lines) or [line()],
        "auto": False,
        "review_reason": "total above 100.00",
        "send_via": None,
        "send_ref": None,
        "expected_on": lc.day_number(date(2026, 12, 3)),
        "by": "planner",
        "note": None,
        "created_at": T,
        "updated_at": T,
    }


def sent_po(*lines: dict[str, Any]) -> dict[str, Any]:
    p = lc.new_proposal(planned(*lines), proposal_id="PO-1", at=T)
    p = lc.approve(p, by="ann", at=T + 1)
    return lc.sent(p, via="email", ref="<po-1@x>", by="ann", at=T + 2)


def test_each_change_is_the_next_version_and_leaves_the_old_one_untouched() -> None:
    """Given a planned proposal, when it is made version 1, edited, approved and sent, then
    the versions are 1, 2, 3, 4, each names who made it, the total follows the edit, the
    proposed quantity stays the planner's, and no earlier version was changed."""
    v1 = lc.new_proposal(planned(line(qty=24)), proposal_id="PO-1", at=T)
    v2 = lc.edit_line(v1, "chair", 36, by="bob", at=T + 1)
    v3 = lc.approve(v2, by="ann", at=T + 2)
    v4 = lc.sent(v3, via="email", ref="<m@x>", by="ann", at=T + 3)
    assert [v["version"] for v in (v1, v2, v3, v4)] == [1, 2, 3, 4]
    assert [v["status"] for v in (v1, v2, v3, v4)] == ["proposed", "proposed", "approved", "sent"]
    assert (v1["total"], v2["total"]) == (24 * 2000, 36 * 2000)
    assert v2["lines"][0]["proposed_qty"] == 24 and v1["lines"][0]["qty"] == 24
    assert (v2["by"], v2["note"], v4["send_via"], v4["send_ref"]) == (
        "bob",
        "chair: 24 -> 36",
        "email",
        "<m@x>",
    )
    codec = single_object_codec()
    for version in (v1, v2, v3, v4):  # every version is what a reader of the topic gets
        assert codec.decode(codec.encode("stockflow.v1.Proposal", version))[1] == version


@pytest.mark.parametrize(
    ("qty", "message"),
    [
        (25, "not a multiple of the pack size 6; order 24 or 30"),
        (4, "not a multiple of the pack size 6; order 6"),
        (6, "below the supplier's minimum order quantity 12"),
        (-6, "negative; use 0 to drop the line"),
    ],
)
def test_an_edit_the_pack_size_or_moq_refuses_says_why_and_changes_nothing(
    qty: int, message: str
) -> None:
    """Given a line packed by 6 with an MOQ of 12, when a buyer sets a quantity off the pack
    size, below the MOQ or negative, then ValueError names the rule and what would do."""
    v1 = lc.new_proposal(planned(), proposal_id="PO-1", at=T)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        lc.edit_line(v1, "chair", qty, by="bob", at=T + 1)
    assert v1["version"] == 1 and v1["lines"][0]["qty"] == 24


def test_a_line_set_to_zero_is_dropped_and_an_order_of_only_zeros_cannot_be_approved() -> None:
    """Given two lines, when one is set to 0, then the total counts the other only; when
    both are 0, approving is refused (reject it instead)."""
    v1 = lc.new_proposal(planned(line("chair"), line("desk")), proposal_id="PO-1", at=T)
    v2 = lc.edit_line(v1, "chair", 0, by="bob", at=T + 1)
    assert v2["total"] == 24 * 2000
    v3 = lc.edit_line(v2, "desk", 0, by="bob", at=T + 2)
    with pytest.raises(ValueError, match="every line is 0"):
        lc.approve(v3, by="ann", at=T + 3)
    with pytest.raises(ValueError, match="no line for 'lamp'"):
        lc.edit_line(v1, "lamp", 6, by="bob", at=T + 1)


def test_moves_the_status_does_not_allow_are_refused_with_the_status_named() -> None:
    """Given a sent purchase order, when it is edited, approved or rejected, then
    TransitionError names its status; a send_failed one may be approved again (a retry)
    or rejected; a superseded one can do nothing."""
    po = sent_po()
    for move in (
        lambda: lc.edit_line(po, "chair", 12, by="b", at=T),
        lambda: lc.approve(po, by="b", at=T),
        lambda: lc.reject(po, by="b", at=T, note=None),
    ):
        with pytest.raises(lc.TransitionError, match="PO-1 is sent"):
            move()
    approved = lc.approve(lc.new_proposal(planned(), proposal_id="PO-2", at=T), by="a", at=T)
    failed = lc.send_failed(approved, reason="SMTP 554", by="a", at=T + 1)
    assert (failed["status"], failed["note"]) == ("send_failed", "SMTP 554")
    retried = lc.approve(failed, by="a", at=T + 2)
    assert (retried["status"], retried["note"]) == ("approved", "retry after a failed send")
    assert lc.reject(failed, by="a", at=T + 2, note="wrong supplier")["status"] == "rejected"
    old = lc.supersede(
        lc.new_proposal(planned(), proposal_id="PO-3", at=T), by="p", at=T, by_id="PO-4"
    )
    assert (old["status"], old["note"]) == ("superseded", "superseded by PO-4")
    with pytest.raises(lc.TransitionError):
        lc.approve(old, by="a", at=T)


def test_receipts_make_a_purchase_order_partially_received_then_received() -> None:
    """Given a sent order of 24 chairs and 12 desks, when 10 chairs arrive, then it is
    partially received with 10 chairs counted; when 14 chairs and 12 desks follow, then it
    is received and no line is open."""
    po = sent_po(line("chair", 24), line("desk", 12))
    a = lc.receive(po, "chair", 10, ref="r1", at=T + 5)
    assert a is not None and a["status"] == "partially_received"
    assert a["lines"][0]["received_qty"] == 10 and lc.open_units(a) == {"chair": 14, "desk": 12}
    b = lc.receive(a, "chair", 14, ref="r2", at=T + 6)
    assert b is not None
    c = lc.receive(b, "desk", 12, ref="r3", at=T + 7)
    assert c is not None and c["status"] == "received" and lc.open_units(c) == {}
    assert c["version"] == po["version"] + 3 and c["by"] == "receipts"


def test_an_over_receipt_is_counted_and_noted_and_a_sku_not_on_the_order_only_noted() -> None:
    """Given a sent order of 24 chairs, when 30 arrive, then 30 are counted, it is received,
    and the note says 6 more than open; when 5 lamps arrive against it, then nothing is
    counted and the note names the lamp."""
    po = sent_po(line("chair", 24))
    over = lc.receive(po, "chair", 30, ref="r1", at=T)
    assert over is not None and over["status"] == "received"
    assert over["lines"][0]["received_qty"] == 30
    assert "over-receipt: 6 units of chair" in (over["note"] or "")
    odd = lc.receive(po, "lamp", 5, ref="r2", at=T)
    assert odd is not None and odd["lines"][0]["received_qty"] == 0
    assert "lamp, which is not on this order" in (odd["note"] or "")


def test_the_receipt_the_last_version_recorded_is_not_counted_again() -> None:
    """Given an order whose last version counted receipt r1 (its offset not committed when
    the process died), when r1 is read again after the restart, then it is not counted
    again; r2 is."""
    po = lc.receive(sent_po(line("chair", 24)), "chair", 5, ref="r1", at=T)
    assert po is not None
    assert lc.receive(po, "chair", 5, ref="r1", at=T) is None
    again = lc.receive(po, "chair", 5, ref="r2", at=T)
    assert again is not None and again["lines"][0]["received_qty"] == 10
    assert lc.receive(again, "chair", 5, ref="r", at=T) is not None  # a prefix is not the ref


def test_receipts_of_a_proposal_never_ordered_are_not_counted() -> None:
    """Given a proposal still proposed (or rejected), when a receipt names it, then it is
    not counted (None): its number never reached a supplier."""
    proposal = lc.new_proposal(planned(), proposal_id="PO-1", at=T)
    assert lc.receive(proposal, "chair", 5, ref="r", at=T) is None
    assert (
        lc.receive(lc.reject(proposal, by="a", at=T, note=None), "chair", 5, ref="r", at=T) is None
    )


def test_cancelling_the_rest_cancels_exactly_what_is_open_per_line() -> None:
    """Given 24 chairs and 12 desks ordered and 10 chairs received, when the rest is
    cancelled, then 14 chairs and 12 desks are cancelled (the units incoming drops by), the
    order is cancelled, and a later receipt is still counted without reopening it; an order
    whose send failed is cancelled without lowering incoming."""
    po = lc.receive(sent_po(line("chair", 24), line("desk", 12)), "chair", 10, ref="r", at=T)
    assert po is not None
    done, cancelled = lc.cancel_rest(po, by="ann", at=T + 1)
    assert cancelled == {"chair": 14, "desk": 12}
    assert done["status"] == "cancelled" and lc.open_units(done) == {}
    assert [x["cancelled_qty"] for x in done["lines"]] == [14, 12]
    late = lc.receive(done, "chair", 2, ref="r9", at=T + 2)
    assert late is not None and late["status"] == "cancelled"
    assert late["lines"][0]["received_qty"] == 12
    approved = lc.approve(lc.new_proposal(planned(), proposal_id="PO-9", at=T), by="a", at=T)
    failed = lc.send_failed(approved, reason="x", by="a", at=T)
    assert lc.cancel_rest(failed, by="a", at=T)[1] == {}


@given(
    qty=st.integers(0, 50).map(lambda n: n * 6),
    receipts=st.lists(st.integers(1, 40), max_size=6),
    cancel_at=st.integers(0, 6),
)
def test_received_and_cancelled_never_leave_a_line_open_below_zero(
    qty: int, receipts: list[int], cancel_at: int
) -> None:
    """Given any ordered quantity, any receipts and a cancellation at any point, then
    the open quantity is qty - received - cancelled (never negative), cancelled never
    exceeds what was open when cancelled, and versions go up by one per change."""
    po = sent_po(line("chair", max(qty, 12)))
    version = po["version"]
    for i, units in enumerate(receipts):
        if i == cancel_at and po["status"] in lc.CANCELLABLE:
            before = lc.open_qty(po["lines"][0])
            po, cancelled = lc.cancel_rest(po, by="a", at=T)
            assert cancelled.get("chair", 0) == before
            version += 1
        got = lc.receive(po, "chair", units, ref=f"r{i}", at=T)
        assert got is not None
        po, version = got, version + 1
        assert po["version"] == version
        ln = po["lines"][0]
        assert lc.open_qty(ln) == max(0, ln["qty"] - ln["received_qty"] - ln["cancelled_qty"])
    assert po["lines"][0]["received_qty"] == sum(receipts)


def test_a_new_plan_never_reuses_a_purchase_order_number() -> None:
    """Given PO-7 and PO-7-2 taken, when the planner names a proposal PO-7, then it gets
    PO-7-3."""
    assert lc.unique_id("PO-7", {"PO-7", "PO-7-2"}) == "PO-7-3"
    assert lc.unique_id("PO-8", {"PO-7"}) == "PO-8"


def test_an_open_order_past_its_day_is_late_and_its_alert_fits_the_contract() -> None:
    """Given an order expected on 3 December with 14 chairs open, when today is the 5th,
    then it is 2 days late and its po_late alert names it, its location and open units;
    on the 3rd, or once received, it is not late."""
    po = lc.receive(sent_po(line("chair", 24)), "chair", 10, ref="r", at=T)
    assert po is not None
    assert lc.days_late(po, date(2026, 12, 5)) == 2
    assert lc.days_late(po, date(2026, 12, 3)) == 0
    received = lc.receive(po, "chair", 14, ref="r2", at=T)
    assert received is not None and lc.days_late(received, date(2026, 12, 9)) == 0
    alert = late_alert(po, 2, T)
    assert (alert["alert_id"], alert["kind"], alert["sku"], alert["value"]) == (
        "po_late|PO-1",
        "po_late",
        "chair",
        14,
    )
    assert "expected on 2026-12-03 and is 2 day(s) late" in alert["message"]
    single_object_codec().encode("stockflow.v1.Alert", alert)


def test_purchase_events_carry_the_order_number_and_the_agreed_ids() -> None:
    """Given a sent order, when its events are built, then purchase_ordered is
    po|<id>|<sku> at the destination with source purchasing and the order as source_ref,
    and the cancellation's id ends in |cancel."""
    po = sent_po()
    ordered = purchase_event("purchase_ordered", po, "chair", 24, T)
    cancelled = purchase_event("purchase_cancelled", po, "chair", 14, T)
    assert (ordered["event_id"], ordered["location"], ordered["source"], ordered["source_ref"]) == (
        "po|PO-1|chair",
        "lyon",
        "purchasing",
        "PO-1",
    )
    assert cancelled["event_id"] == "po|PO-1|chair|cancel" and cancelled["qty"] == 14
    assert ordered["channel"] is None
