"""Channel price rules and the price book: rounding, conversion, markup, the floor,
overrides, scheduled prices. Property tests over the pure rules."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.framework.prices import PriceItem, from_decimal, to_decimal
from connectors.framework.pricing import (
    BelowFloor,
    PriceBook,
    PriceRule,
    PriceRuleError,
    Rates,
    channel_price,
    round_price,
)
from schemas.prices import InvalidPrice, change_id_of, price_change, problems

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy/local/connectors.example.yaml"
RATES = Rates(
    base="EUR", date="2026-11-30", rates={"USD": Decimal("1.0825"), "JPY": Decimal("162.5")}
)
amounts = st.integers(min_value=0, max_value=10**9)


@given(amounts, st.sampled_from(["0.99", "0.95"]))
def test_charm_rounding_ends_in_the_ending_and_moves_less_than_half_a_unit(
    amount: int, rounding: str
) -> None:
    """Given any price in cents, when rounded to .99 or .95, then the result ends so and is
    within half a unit of the price (the nearest such price; below the first one, 0.99)."""
    ending = int(rounding[2:])
    rounded = round_price(amount, "EUR", rounding)
    assert rounded % 100 == ending
    assert abs(rounded - amount) <= 50 or (amount < ending and rounded == ending)


@given(amounts, amounts)
def test_rounding_keeps_the_order_of_prices(a: int, b: int) -> None:
    """Given two prices, when both are rounded the same way, then a cheaper price never
    becomes dearer than a dearer one."""
    low, high = sorted((a, b))
    for rounding in ("none", "whole", "0.99", "0.95"):
        assert round_price(low, "EUR", rounding) <= round_price(high, "EUR", rounding)


def test_rounding_examples() -> None:
    """Given known prices, when rounded, then they match what a merchant expects."""
    assert round_price(1920, "EUR", "0.99") == 1899
    assert round_price(1960, "EUR", "0.99") == 1999
    assert round_price(1949, "EUR", "0.99") == 1999  # a tie goes up
    assert round_price(1949, "EUR", "whole") == 1900
    assert round_price(1950, "EUR", "whole") == 2000
    assert round_price(1980, "EUR", "0.95") == 1995
    assert round_price(1234, "JPY", "0.99") == 1234  # no minor unit: whole already


@given(amounts)
def test_conversion_there_and_back_loses_at_most_a_cent(amount: int) -> None:
    """Given a EUR price, when converted to USD and back with the same table, then it is
    within one cent of itself (half-up at each step)."""
    usd = RATES.convert(amount, "EUR", "USD")
    back = RATES.convert(usd, "USD", "EUR")
    assert abs(back - amount) <= 1


def test_conversion_uses_the_minor_units_of_the_target_currency() -> None:
    """Given 19.99 EUR, when converted to USD and JPY, then the rates apply and JPY has
    no minor unit."""
    assert RATES.convert(1999, "EUR", "USD") == 2164  # 21.639 → 21.64
    assert RATES.convert(1999, "EUR", "JPY") == 3248  # 3248.375 → 3248


def test_a_missing_rate_names_the_currency_and_the_table_date() -> None:
    """Given no GBP rate, when converting to GBP, then the error says which and where."""
    with pytest.raises(PriceRuleError, match=r"GBP.*2026-11-30"):
        RATES.convert(100, "EUR", "GBP")


@given(amounts, st.integers(min_value=-50, max_value=200), st.integers(0, 200))
def test_the_floor_never_lets_a_price_below_cost_plus_margin_through(
    amount: int, markup: int, margin: int
) -> None:
    """Given any base price, markup and margin, when the channel price is computed with a
    cost, then either it is at least cost x (1 + margin) or it is blocked."""
    cost = 1000
    rule = PriceRule(
        currency="USD",
        markup_pct=Decimal(markup),
        rounding="0.99",
        floor_margin_pct=Decimal(margin),
    )
    floor = Decimal(RATES.convert(cost, "EUR", "USD", up=True)) * (1 + Decimal(margin) / 100)
    try:
        shown = channel_price(rule, RATES, "chair", amount, "EUR", cost)
    except BelowFloor as why:
        assert why.price_minor < why.floor_minor
        assert why.floor_minor >= floor
        return
    assert shown.amount_minor >= floor
    assert shown.currency == "USD"


def test_markup_offset_rounding_and_conversion_in_order() -> None:
    """Given 19.99 EUR, +20 %, -0.50 USD, .99 rounding into USD, when computed, then
    19.99 → 21.64 USD → 25.97 → 25.47 → 24.99 (the nearest .99)."""
    rule = PriceRule(
        currency="USD", markup_pct=Decimal(20), offset=Decimal("-0.50"), rounding="0.99"
    )
    assert channel_price(rule, RATES, "chair", 1999, "EUR").amount_minor == 2499


def test_an_override_replaces_the_rules_but_not_the_floor() -> None:
    """Given an override of 24.90 for chair, when priced, then 24.90 is shown whatever the
    base price; an override below the floor is still blocked."""
    rule = PriceRule(
        markup_pct=Decimal(50),
        rounding="0.99",
        floor_margin_pct=Decimal(10),
        overrides={"chair": Decimal("24.90")},
    )
    assert channel_price(rule, RATES, "chair", 100, "EUR", 2000).amount_minor == 2490
    assert channel_price(rule, RATES, "table", 1000, "EUR").amount_minor == 1499
    with pytest.raises(BelowFloor) as blocked:
        channel_price(rule, RATES, "chair", 100, "EUR", 2300)
    assert blocked.value.floor_minor == 2530


def test_rules_from_configuration_refuse_what_they_cannot_use() -> None:
    """Given bad rule keys and values, when read, then each is refused with its path."""
    with pytest.raises(PriceRuleError, match="rounding"):
        PriceRule.from_config({"rounding": "0.49"})
    with pytest.raises(PriceRuleError, match="unknown keys"):
        PriceRule.from_config({"markup": 3})
    with pytest.raises(PriceRuleError, match="numbers"):
        PriceRule.from_config({"markup_pct": "lots"})
    with pytest.raises(PriceRuleError, match="above 0"):
        Rates.from_config({"rates": {"USD": 0}})
    rule = PriceRule.from_config({"currency": "usd", "overrides": {"chair": "49"}})
    assert rule.currency == "USD"
    assert rule.overrides == {"chair": Decimal(49)}


@given(amounts, st.sampled_from(["EUR", "JPY", "KWD"]))
def test_minor_units_and_decimals_round_trip(amount: int, currency: str) -> None:
    """Given any amount in minor units, when written as text and read back, then it is the
    same amount."""
    item = PriceItem("chair", amount, currency)
    assert from_decimal(item.text(), currency) == amount
    assert to_decimal(amount, currency) == item.amount


def change(version: int, amount: int, valid_from: int = 0) -> dict[str, object]:
    return price_change(
        "chair", amount, "EUR", version=version, source="cli", valid_from=valid_from, at=1
    )


def test_the_book_keeps_the_highest_version_already_due() -> None:
    """Given changes arriving out of order and a redelivery, when added, then the highest
    version is current and older or repeated ones change nothing."""
    book = PriceBook()
    assert book.add(change(2, 2000), now=10) is not None
    assert book.add(change(1, 1000), now=10) is None
    assert book.add(change(2, 2000), now=10) is None
    assert book.current["chair"].amount_minor == 2000


def test_a_scheduled_price_applies_when_due_unless_a_newer_one_wins() -> None:
    """Given a price for t=100 then a newer immediate one, when time passes, then the
    scheduled one applies at 100 only if it is still the newest."""
    book = PriceBook()
    book.add(change(1, 1000), now=10)
    assert book.add(change(2, 900, valid_from=100), now=10) is None
    assert book.due(50) == []
    assert book.next_due() == 100
    assert [p.amount_minor for p in book.due(100)] == [900]
    book.add(change(4, 700, valid_from=200), now=110)
    book.add(change(5, 800), now=120)
    assert book.due(300) == []
    assert book.current["chair"].amount_minor == 800


def test_price_change_records_are_checked_and_get_deterministic_ids() -> None:
    """Given good and bad fields, when a record is built, then the bad ones are refused and
    the same change always gets the same id."""
    assert change(3, 10)["change_id"] == change_id_of("chair", 3, "cli")
    assert problems(change(3, 10)) == []
    with pytest.raises(InvalidPrice, match="currency"):
        price_change("chair", 10, "euro", version=1, source="cli")
    with pytest.raises(InvalidPrice, match="amount_minor"):
        price_change("chair", -1, "EUR", version=1, source="cli")
    with pytest.raises(InvalidPrice, match="sku"):
        price_change("", 1, "EUR", version=1, source="cli")


def test_a_price_change_survives_the_wire_and_its_schema_is_documented() -> None:
    """Given a price change with and without a cost, when encoded and decoded with the
    project's codec, then it comes back equal, and the schema is a current one."""
    from schemas.codec import single_object_codec
    from schemas.loader import current_schemas

    codec = single_object_codec()
    assert "stockflow.v1.PriceChange" in current_schemas()
    for cost in (None, 1250):
        record = price_change("chair", 1999, "EUR", version=7, source="cli", cost_minor=cost)
        name, back = codec.decode(codec.encode("stockflow.v1.PriceChange", record))
        assert (name, back) == ("stockflow.v1.PriceChange", record)


def test_the_connector_configuration_names_a_bad_price_rule_by_its_path() -> None:
    """Given the example configuration with a bad rounding, a bad rate and an unknown key,
    when parsed, then each is refused with its key path; the example itself parses, and a
    channel's prices sync in real time or every N minutes, like its stock."""
    import yaml

    from connectors.config import ConnectorConfigError, parse_connectors_config

    raw = yaml.safe_load(EXAMPLE.read_text())
    good = parse_connectors_config(raw)
    assert [c.prices is not None for c in good.channels] == [True, True]
    assert good.price_rates.rate("EUR", "USD") == Decimal("1.0825")
    assert good.channels[0].price_sync.interval_s is None  # real time, like stock
    every = yaml.safe_load(EXAMPLE.read_text())
    every["channels"][1]["prices"]["sync"] = {"every_minutes": 15}
    assert parse_connectors_config(every).channels[1].price_sync.interval_s == 900
    for change, where in (
        (lambda r: r["channels"][1]["prices"].update(rounding="0.49"), r"channels\[1\].prices"),
        (lambda r: r["price_rates"]["rates"].update(USD="x"), "price_rates"),
        (lambda r: r["channels"][0]["prices"].update(markup=1), r"channels\[0\].prices.markup"),
    ):
        bad = yaml.safe_load(EXAMPLE.read_text())
        change(bad)
        with pytest.raises(ConnectorConfigError, match=where):
            parse_connectors_config(bad)
