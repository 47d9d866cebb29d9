"""Prices: the current base price of each SKU, and each channel's rules that turn it into the
price the channel shows. Pure logic, no I/O.

A channel's price, in this order:

1. an override for the SKU (``overrides: {sku: "24.90"}``, in the channel's currency) replaces
   steps 2-5;
2. conversion from the base currency to the channel's with the rates table
   (``rates: {date, base, rates: {USD: "1.0825"}}``: units of the currency per unit of
   ``base``), half-up to the minor unit;
3. markup (``markup_pct: 20``) or markdown (``markup_pct: -10``), half-up;
4. a fixed offset in the channel's currency (``offset: "-0.50"``);
5. rounding: ``none``, ``whole`` (nearest unit, half up), ``0.99`` / ``0.95`` (the nearest
   price ending so, the higher on a tie; a currency without minor units rounds to whole);
6. the floor: with ``floor_margin_pct: 15`` and a known unit cost, a price below
   ``cost * 1.15`` (converted, rounded up) is not pushed: :class:`BelowFloor` says why, the
   caller raises an alert and the channel keeps its previous price.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from connectors.framework.prices import from_decimal, minor_digits, to_decimal

ROUNDINGS = ("none", "whole", "0.99", "0.95")
PRICE_KEYS = (
    "currency",
    "markup_pct",
    "offset",
    "rounding",
    "floor_margin_pct",
    "overrides",
    "sync",
)


class PriceRuleError(ValueError):
    """A price rule or rates table that cannot be used; the message names the fix."""


class BelowFloor(Exception):  # noqa: N818 - a result, not a failure of the code
    """The channel's price would be below its floor; nothing is pushed."""

    def __init__(self, sku: str, price_minor: int, floor_minor: int, currency: str) -> None:
        super().__init__(
            f"{sku}: {to_decimal(price_minor, currency)} {currency} is below the floor "
            f"{to_decimal(floor_minor, currency)} {currency} (cost plus the minimum margin); "
            "not pushed, the channel keeps its previous price"
        )
        self.sku = sku
        self.price_minor = price_minor
        self.floor_minor = floor_minor
        self.currency = currency


@dataclass(frozen=True)
class Rates:
    """Exchange rates of one day: ``rates[C]`` units of ``C`` per unit of ``base``."""

    base: str = "EUR"
    date: str = ""
    rates: Mapping[str, Decimal] = field(default_factory=dict)

    def rate(self, source: str, target: str) -> Decimal:
        """Units of ``target`` per unit of ``source``."""
        if source == target:
            return Decimal(1)
        try:
            from_base = Decimal(1) if source == self.base else self.rates[source]
            to_target = Decimal(1) if target == self.base else self.rates[target]
        except KeyError as exc:
            raise PriceRuleError(
                f"no exchange rate for {exc.args[0]} in the rates table of {self.date or '?'} "
                f"(base {self.base}); add it under price_rates.rates"
            ) from None
        return to_target / from_base

    def convert(self, amount_minor: int, source: str, target: str, *, up: bool = False) -> int:
        """``amount_minor`` of ``source`` in minor units of ``target`` (half up, or up)."""
        if source == target:
            return amount_minor
        value = to_decimal(amount_minor, source) * self.rate(source, target)
        exact = value.scaleb(minor_digits(target))
        return int(exact.to_integral_value(ROUND_CEILING if up else ROUND_HALF_UP))

    @classmethod
    def from_config(cls, data: Mapping[str, Any] | None) -> Rates:
        if not data:
            return cls()
        try:
            rates = {str(k).upper(): Decimal(str(v)) for k, v in (data.get("rates") or {}).items()}
        except InvalidOperation:
            raise PriceRuleError("price_rates.rates: every rate must be a number") from None
        if any(r <= 0 for r in rates.values()):
            raise PriceRuleError("price_rates.rates: every rate must be above 0")
        return cls(
            base=str(data.get("base", "EUR")).upper(), date=str(data.get("date", "")), rates=rates
        )


@dataclass(frozen=True)
class PriceRule:
    """One channel's price rules (see the module docstring)."""

    currency: str | None = None  # None: the base price's currency
    markup_pct: Decimal = Decimal(0)
    offset: Decimal = Decimal(0)  # in the channel's currency, major units
    rounding: str = "none"
    floor_margin_pct: Decimal | None = None
    overrides: Mapping[str, Decimal] = field(default_factory=dict)

    @classmethod
    def from_config(cls, data: Mapping[str, Any] | None, where: str = "prices") -> PriceRule:
        data = data or {}
        unknown = set(data) - set(PRICE_KEYS)
        if unknown:
            raise PriceRuleError(f"{where}: unknown keys {sorted(unknown)}; known: {PRICE_KEYS}")
        rounding = str(data.get("rounding", "none"))
        if rounding not in ROUNDINGS:
            raise PriceRuleError(f"{where}.rounding: {rounding!r} must be one of {ROUNDINGS}")
        try:
            floor = data.get("floor_margin_pct")
            rule = cls(
                currency=None if data.get("currency") is None else str(data["currency"]).upper(),
                markup_pct=Decimal(str(data.get("markup_pct", 0))),
                offset=Decimal(str(data.get("offset", 0))),
                rounding=rounding,
                floor_margin_pct=None if floor is None else Decimal(str(floor)),
                overrides={
                    str(k): Decimal(str(v)) for k, v in (data.get("overrides") or {}).items()
                },
            )
        except InvalidOperation:
            raise PriceRuleError(
                f"{where}: markup_pct, offset, floor_margin_pct and overrides must be numbers"
            ) from None
        if rule.markup_pct <= -100:
            raise PriceRuleError(f"{where}.markup_pct: a markdown must stay above -100")
        if any(v < 0 for v in rule.overrides.values()):
            raise PriceRuleError(f"{where}.overrides: prices cannot be negative")
        return rule


def round_price(amount_minor: int, currency: str, rounding: str) -> int:
    """``amount_minor`` rounded as the rule says (see the module docstring)."""
    digits = minor_digits(currency)
    if rounding == "none":
        return amount_minor
    unit = 10**digits
    if rounding == "whole" or digits == 0:
        return ((amount_minor * 2 + unit) // (2 * unit)) * unit  # half up
    ending = int(Decimal(rounding).scaleb(digits))  # 99 or 95 (in cents)
    below = (amount_minor - ending) // unit * unit + ending  # greatest x ≡ ending, x ≤ amount
    above = below + unit
    return above if above - amount_minor <= amount_minor - below else max(below, ending)


def floor_of(
    cost_minor: int, margin_pct: Decimal, cost_currency: str, currency: str, rates: Rates
) -> int:
    """The lowest price allowed: the cost plus the margin, in ``currency``, rounded up."""
    converted = rates.convert(cost_minor, cost_currency, currency, up=True)
    return int((Decimal(converted) * (1 + margin_pct / 100)).to_integral_value(ROUND_CEILING))


@dataclass(frozen=True, slots=True)
class ChannelPrice:
    sku: str
    amount_minor: int
    currency: str


def channel_price(
    rule: PriceRule,
    rates: Rates,
    sku: str,
    amount_minor: int,
    currency: str,
    cost_minor: int | None = None,
) -> ChannelPrice:
    """The price the channel shows for ``sku``; raises :class:`BelowFloor`."""
    target = rule.currency or currency
    override = rule.overrides.get(sku)
    if override is not None:
        price = from_decimal(override, target)
    else:
        price = rates.convert(amount_minor, currency, target)
        price = int((Decimal(price) * (1 + rule.markup_pct / 100)).to_integral_value(ROUND_HALF_UP))
        price += from_decimal(rule.offset, target)
        price = round_price(max(0, price), target, rule.rounding)
    if rule.floor_margin_pct is not None and cost_minor is not None:
        floor = floor_of(cost_minor, rule.floor_margin_pct, currency, target, rates)
        if price < floor:
            raise BelowFloor(sku, price, floor, target)
    return ChannelPrice(sku, price, target)


@dataclass(frozen=True, slots=True)
class BasePrice:
    """A SKU's price as one PriceChange decided it."""

    sku: str
    amount_minor: int
    currency: str
    cost_minor: int | None
    version: int
    valid_from: int


class PriceBook:
    """The current base price of each SKU: among the changes already due
    (``valid_from ≤ now``), the one with the highest version. A change with a later
    ``valid_from`` waits in the book and becomes current when due (:meth:`due`), unless a
    higher version is current by then. An equal or older version is ignored (redelivery)."""

    def __init__(self) -> None:
        self.current: dict[str, BasePrice] = {}
        self.scheduled: dict[str, list[BasePrice]] = {}

    def add(self, change: Mapping[str, Any], now: int) -> BasePrice | None:
        """Take a PriceChange record; the new current price when it changed at once."""
        price = BasePrice(
            sku=str(change["sku"]),
            amount_minor=int(change["amount_minor"]),
            currency=str(change["currency"]),
            cost_minor=None if change.get("cost_minor") is None else int(change["cost_minor"]),
            version=int(change["version"]),
            valid_from=int(change["valid_from"]),
        )
        known = self.current.get(price.sku)
        if known is not None and price.version <= known.version:
            return None
        if price.valid_from > now:
            waiting = self.scheduled.setdefault(price.sku, [])
            if all(w.version != price.version for w in waiting):
                waiting.append(price)
            return None
        self.current[price.sku] = price
        return price

    def due(self, now: int) -> list[BasePrice]:
        """Scheduled changes that became current by ``now`` (one per SKU, the newest)."""
        changed: list[BasePrice] = []
        for sku in list(self.scheduled):
            waiting = self.scheduled[sku]
            ready = [p for p in waiting if p.valid_from <= now]
            if not ready:
                continue
            self.scheduled[sku] = [p for p in waiting if p.valid_from > now]
            if not self.scheduled[sku]:
                del self.scheduled[sku]
            best = max(ready, key=lambda p: p.version)
            known = self.current.get(sku)
            if known is None or best.version > known.version:
                self.current[sku] = best
                changed.append(best)
        return changed

    def next_due(self) -> int | None:
        """The earliest ``valid_from`` still waiting, if any."""
        times: Iterable[int] = (p.valid_from for w in self.scheduled.values() for p in w)
        return min(times, default=None)
