"""Approval rules per channel, and what happens to an approval nobody answers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.orders.approvals import (
    ESCALATED,
    ApprovalConfig,
    CustomerBook,
    approval_reason,
    expired,
    order_total,
    parse_approvals,
)
from streams.orders.errors import OrderConfigError

RULES = parse_approvals(
    {
        "channels": [
            {
                "name": "shopify",
                "total_above": 100_000,
                "risk": ["High"],
                "new_customer_above": 20_000,
                "expire_after_seconds": 60,
                "on_expiry": "release",
            },
            {"name": "b2b", "b2b_credit": True},
        ],
        "credit_limits": {"c-81": 50_000},
    }
)
SEEN = CustomerBook(orders_seen=3, open_balance=0)


def order(channel: str = "shopify", **changes: Any) -> dict[str, Any]:
    base = {"channel": channel, "customer_ref": "c-1", "customer_type": "b2c", "risk": None}
    return {**base, **changes}


def code(reason: str | None) -> str | None:
    return None if reason is None else reason.partition(":")[0]


def test_each_rule_sends_the_order_to_approval_with_its_code() -> None:
    """Given shopify's rules, when orders past each are judged, then each waits with the
    rule's code; one under every rule does not wait."""
    assert code(approval_reason(order(), 100_001, SEEN, RULES)) == "total_above"
    assert approval_reason(order(), 100_000, SEEN, RULES) is None
    assert code(approval_reason(order(risk="HIGH"), 10, SEEN, RULES)) == "risk"
    assert approval_reason(order(risk="medium"), 10, SEEN, RULES) is None
    assert code(approval_reason(order(), 20_001, CustomerBook(), RULES)) == "new_customer_above"
    assert approval_reason(order(), 20_000, CustomerBook(), RULES) is None
    guest = order(customer_ref=None)
    assert code(approval_reason(guest, 20_001, SEEN, RULES)) == "new_customer_above"


def test_a_b2b_order_past_its_customers_credit_limit_waits_counting_the_open_balance() -> None:
    """Given customer c-81 with a limit of 50,000 and an open balance of 40,000, when a b2b
    order of 10,001 comes, then it waits (credit_limit); 10,000 does not; a b2c order or a
    customer without a limit is not checked."""
    book = CustomerBook(orders_seen=5, open_balance=40_000)
    b2b = order("b2b", customer_type="b2b", customer_ref="c-81")
    assert code(approval_reason(b2b, 10_001, book, RULES)) == "credit_limit"
    assert approval_reason(b2b, 10_000, book, RULES) is None
    assert approval_reason({**b2b, "customer_type": "b2c"}, 10_001, book, RULES) is None
    assert approval_reason({**b2b, "customer_ref": "c-2"}, 10**9, book, RULES) is None
    strict = parse_approvals({"channels": [{"name": "b2b"}], "default_credit_limit": 0})
    assert code(approval_reason({**b2b, "customer_ref": "c-2"}, 1, book, strict)) == (
        "credit_limit"
    )


def test_a_channel_the_configuration_does_not_name_never_waits() -> None:
    """Given rules for shopify only, when a risky huge first order of another channel is
    judged, then it does not wait, and it never expires."""
    other = order("woocommerce", risk="high")
    assert approval_reason(other, 10**12, CustomerBook(), RULES) is None
    assert approval_reason(other, 10**12, CustomerBook(), ApprovalConfig()) is None
    state = {"status": "pending_approval", "channel": "woocommerce", "updated_at": 0}
    assert expired(state, 10**15, RULES) is None


def pending(at: int, **changes: Any) -> dict[str, Any]:
    state = {
        "status": "pending_approval",
        "channel": "shopify",
        "reason": "total_above: order 1 > 0",
        "updated_at": at,
        "transition": {"from_status": "routed", "to_status": "pending_approval", "at": at},
    }
    return {**state, **changes}


def test_an_unanswered_approval_expires_after_its_time_as_its_rule_says() -> None:
    """Given shopify's approvals expire after 60 s into release, when a pending order is
    looked at 59.999 s then 60 s after it began waiting, then nothing then release; with
    escalate, then escalate, and once escalated it never expires again."""
    assert expired(pending(1_000), 60_999, RULES) is None
    assert expired(pending(1_000), 61_000, RULES) == "release"
    escalating = parse_approvals({"channels": [{"name": "shopify", "expire_after_seconds": 60}]})
    assert expired(pending(1_000), 61_000, escalating) == "escalate"
    escalated = pending(1_000, reason=f"{ESCALATED}: nobody answered in 60 s")
    assert expired(escalated, 10**12, escalating) is None
    assert expired(pending(1_000, status="allocated"), 10**12, RULES) is None


@given(
    total=st.integers(0, 10**9),
    seen=st.integers(0, 5),
    balance=st.integers(0, 10**8),
    risk=st.sampled_from([None, "low", "high"]),
    kind=st.sampled_from(["b2c", "b2b"]),
)
def test_an_order_waits_exactly_when_one_rule_is_passed(
    total: int, seen: int, balance: int, risk: str | None, kind: str
) -> None:
    """Given any order of shopify or b2b, when judged, then it waits if and only if one of
    its channel's thresholds is passed (computed here independently)."""
    book = CustomerBook(seen, balance)
    for channel in ("shopify", "b2b"):
        item = order(channel, risk=risk, customer_type=kind, customer_ref="c-81")
        passed = (kind == "b2b" and balance + total > 50_000) or (
            channel == "shopify"
            and (risk == "high" or total > 100_000 or (seen == 0 and total > 20_000))
        )
        assert (approval_reason(item, total, book, RULES) is not None) is passed


def test_the_total_counts_priced_lines_in_minor_units() -> None:
    """Given two priced lines and an unpriced one, when totalled, then qty * price summed."""
    lines = [
        {"qty": 2, "unit_price": 4990},
        {"qty": 3, "unit_price": 100},
        {"qty": 1, "unit_price": None},
    ]
    assert order_total({"lines": lines}) == 10_280


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ([], "orders.approvals"),
        ({"chanels": []}, "orders.approvals.chanels"),
        ({"channels": {"name": "x"}}, "orders.approvals.channels"),
        ({"channels": [{"name": ""}]}, "orders.approvals.channels[0].name"),
        ({"channels": [{"name": "a"}, {"name": "a"}]}, "orders.approvals.channels[1].name"),
        (
            {"channels": [{"name": "a", "total_above": 1.5}]},
            "orders.approvals.channels[0].total_above",
        ),
        ({"channels": [{"name": "a", "risk": "high"}]}, "orders.approvals.channels[0].risk"),
        (
            {"channels": [{"name": "a", "on_expiry": "drop"}]},
            "orders.approvals.channels[0].on_expiry",
        ),
        (
            {"channels": [{"name": "a", "expire_after_seconds": 0}]},
            "orders.approvals.channels[0].expire_after_seconds",
        ),
        (
            {"channels": [{"name": "a", "b2b_credit": "yes"}]},
            "orders.approvals.channels[0].b2b_credit",
        ),
        ({"credit_limits": {"c-1": -1}}, "orders.approvals.credit_limits.c-1"),
        ({"default_credit_limit": "lots"}, "orders.approvals.default_credit_limit"),
    ],
)
def test_a_bad_section_is_refused_with_the_key_path(raw: Any, path: str) -> None:
    """Given a malformed orders.approvals section, when parsed, then OrderConfigError names
    the key path at fault."""
    with pytest.raises(OrderConfigError) as caught:
        parse_approvals(raw)
    assert caught.value.path == path


def test_an_absent_section_means_no_rule() -> None:
    """Given no orders.approvals, when parsed, then no channel has rules."""
    assert parse_approvals(None) == ApprovalConfig()
