"""Channel quantities: per-location available, pools and channel rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.events import stock_event
from streams.ledger import (
    DEFAULT_CONFIG,
    ChannelRule,
    apply,
    channel_quantities,
    channel_quantity,
    parse_config,
)

T0 = 1_700_000_000_000


@pytest.mark.parametrize(
    ("rule", "pool", "shown"),
    [
        (ChannelRule(), 100, 100),
        (ChannelRule(buffer=5), 100, 95),
        (ChannelRule(buffer=5), 3, 0),
        (ChannelRule(percentage=30), 10, 3),
        (ChannelRule(max_shown=20), 100, 20),
        (ChannelRule(zero_at_or_below=2), 2, 0),
        (ChannelRule(zero_at_or_below=2), 3, 3),
        (ChannelRule(zero_at_or_below=3, buffer=1, percentage=50, max_shown=10), 4, 1),
        (ChannelRule(zero_at_or_below=3, buffer=1, percentage=50, max_shown=10), 100, 10),
        (ChannelRule(buffer=1), 0, 0),
    ],
)
def test_channel_rules_apply_in_their_documented_order(
    rule: ChannelRule, pool: int, shown: int
) -> None:
    """Given a rule and a pool, When the rule is applied,
    Then zero_at_or_below, buffer, percentage, max_shown act in that order, never < 0."""
    assert rule.apply(pool) == shown


def test_channels_sum_available_over_their_locations_after_safety_stock() -> None:
    """Given a (safety 2) with 10 on hand, 3 reserved, 1 unsellable and b with 4,
    When quantities are computed, Then a gives 4, b 4; a channel of a only shows 4,
    the default quantity (unconfigured channel) 8."""
    config = parse_config(
        {
            "locations": [{"name": "a", "safety_stock": 2}, {"name": "b"}],
            "channels": [{"name": "amazon", "locations": ["a"]}, {"name": "web"}],
        }
    )
    state = None
    for i, (kind, qty, extra) in enumerate(
        [
            ("receipt", 9, {"location": "a"}),
            ("return_received", 1, {"location": "a", "disposition": "damaged"}),
            ("order_placed", 3, {"location": "a", "order_id": "o"}),
            ("receipt", 4, {"location": "b"}),
        ]
    ):
        state, _ = apply(state, stock_event(kind, "s", f"e{i}", T0, qty=qty, **extra), config, T0)
    assert state is not None
    assert channel_quantities(state, config) == {"amazon": 4, "web": 8, "*": 8}
    assert channel_quantity(state, config, "amazon") == 4
    assert channel_quantity(state, config, "ebay") == 8
    assert channel_quantity(state, config, None) == 8


def test_the_default_configuration_shows_the_full_pool_everywhere() -> None:
    """Given no configuration file, When 100 units are counted,
    Then every channel, named or not, is shown 100 (not split between channels)."""
    state, out = apply(None, stock_event("stock_count", "s", "c", T0, qty=100), DEFAULT_CONFIG, T0)
    assert out.level is not None and out.level["default_quantity"] == 100
    assert out.level["channels"] == {}
    assert channel_quantity(state, DEFAULT_CONFIG, "anything") == 100


def test_available_is_floored_at_zero_when_a_till_sale_took_reserved_units() -> None:
    """Given 1 on hand reserved, When the till sells it, Then available is 0, not -1."""
    state = None
    for i, (kind, extra) in enumerate(
        [("receipt", {}), ("order_placed", {"order_id": "o"}), ("sale", {})]
    ):
        state, _ = apply(
            state, stock_event(kind, "s", f"e{i}", T0, qty=1, **extra), DEFAULT_CONFIG, T0
        )
    assert state is not None and state.locations["default"].on_hand == 0
    assert channel_quantities(state, DEFAULT_CONFIG) == {"*": 0}


optional = st.none() | st.integers(0, 50)


@given(
    optional,
    st.integers(0, 20),
    st.none() | st.integers(0, 100),
    optional,
    st.integers(0, 200),
    st.integers(0, 200),
)
def test_a_channel_is_never_shown_more_than_its_pool_nor_less_than_zero(
    zero_at: int | None,
    buffer: int,
    percentage: int | None,
    max_shown: int | None,
    pool: int,
    more: int,
) -> None:
    """Given any channel rule and pool, When the rule is applied,
    Then the quantity is between 0 and the pool, and a bigger pool never shows less."""
    rule = ChannelRule(zero_at, buffer, percentage, max_shown)
    shown = rule.apply(pool)
    assert 0 <= shown <= pool
    assert rule.apply(pool + more) >= shown
