"""Rate shopping: ask every configured carrier at once, rank by the channel's service level,
buy the best label and fall back to the next rate when a carrier cannot sell it.

- ``shop`` asks the carriers concurrently; a carrier that fails (``CarrierError``) or does not
  answer within ``timeout_s`` is skipped with its reason, the others still count.
- ``rank`` orders the rates: ``standard`` = cheapest first (then fastest), ``express`` =
  fastest first (then cheapest); a rate whose promised days exceed the level's ``max_days``
  (or unknown, when a maximum is set) comes only after every rate that keeps the promise.
- ``buy`` tries the ranked rates in turn: a carrier that is unavailable (5xx, timeout) or
  refuses (invalid address on its side) is dropped and the next carrier's best rate is tried.
  Only when every carrier failed does it raise: ``CarrierRefused`` if every one refused (the
  address is likely wrong: the message lists each carrier's reason), else
  ``CarrierUnavailable``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from connectors.carriers import metrics
from connectors.carriers.base import Carrier, CarrierError, CarrierRefused, CarrierUnavailable
from connectors.carriers.model import Address, Label, Parcel, Rate

STANDARD: Final = "standard"
EXPRESS: Final = "express"
LEVELS: Final = (STANDARD, EXPRESS)
_NEVER: Final = 10**6


@dataclass(frozen=True)
class ServiceLevel:
    level: str = STANDARD
    max_days: int | None = None

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"service level must be one of {LEVELS}, got {self.level!r}")
        if self.max_days is not None and self.max_days < 0:
            raise ValueError("max_days must be 0 or more")

    def keeps_promise(self, rate: Rate) -> bool:
        return self.max_days is None or (rate.days is not None and rate.days <= self.max_days)


@dataclass(frozen=True)
class Quote:
    rates: tuple[Rate, ...]  # best first
    skipped: Mapping[str, str] = field(default_factory=dict)  # carrier → why it gave no rate


@dataclass(frozen=True)
class Purchase:
    label: Label
    rate: Rate
    failed: Mapping[str, str] = field(default_factory=dict)  # carrier → why its label failed


def rank(rates: Sequence[Rate], level: ServiceLevel, currency: str | None = None) -> list[Rate]:
    """``rates`` best first for ``level`` (rates in another ``currency`` are left out)."""
    usable = [r for r in rates if currency is None or r.currency == currency]

    def key(rate: Rate) -> tuple[int, int, int, str, str]:
        days = rate.days if rate.days is not None else _NEVER
        first, second = (
            (rate.amount_minor, days) if level.level == STANDARD else (days, rate.amount_minor)
        )
        return (0 if level.keeps_promise(rate) else 1, first, second, rate.carrier, rate.service)

    return sorted(usable, key=key)


async def shop(
    carriers: Sequence[Carrier],
    ship_from: Address,
    ship_to: Address,
    parcels: Sequence[Parcel],
    level: ServiceLevel,
    *,
    timeout_s: float = 10.0,
    currency: str | None = None,
) -> Quote:
    async def ask(carrier: Carrier) -> list[Rate] | str:
        try:
            return await asyncio.wait_for(carrier.rates(ship_from, ship_to, parcels), timeout_s)
        except TimeoutError:
            return f"no answer within {timeout_s:g} s"
        except CarrierError as exc:
            return f"{type(exc).__name__}: {exc}"

    answers = await asyncio.gather(*(ask(c) for c in carriers))
    rates: list[Rate] = []
    skipped: dict[str, str] = {}
    for carrier, answer in zip(carriers, answers, strict=True):
        if isinstance(answer, str):
            metrics.QUOTES_SKIPPED.labels(carrier.name).inc()
            skipped[carrier.name] = answer
        elif not answer:
            skipped[carrier.name] = "no rate for this parcel"
        else:
            rates.extend(answer)
            if currency is not None and all(r.currency != currency for r in answer):
                skipped[carrier.name] = f"no rate in {currency}"
    return Quote(tuple(rank(rates, level, currency)), skipped)


async def buy(
    carriers: Sequence[Carrier],
    quote: Quote,
    ship_from: Address,
    ship_to: Address,
    parcels: Sequence[Parcel],
    reference: str,
) -> Purchase:
    by_name = {c.name: c for c in carriers}
    failed: dict[str, str] = {}
    refusals = 0
    for rate in quote.rates:
        carrier = by_name.get(rate.carrier)
        if carrier is None or rate.carrier in failed:
            continue
        try:
            label = await carrier.ship(rate, ship_from, ship_to, parcels, reference)
        except CarrierRefused as exc:
            metrics.LABEL_FALLBACKS.labels(rate.carrier, "refused").inc()
            failed[rate.carrier] = f"refused: {exc}"
            refusals += 1
        except CarrierError as exc:  # unavailable, or misconfigured: the next carrier
            metrics.LABEL_FALLBACKS.labels(rate.carrier, "unavailable").inc()
            failed[rate.carrier] = f"{type(exc).__name__}: {exc}"
        else:
            return Purchase(label, rate, failed)
    reasons = "; ".join(f"{name}: {why}" for name, why in {**quote.skipped, **failed}.items())
    if failed and refusals == len(failed):
        raise CarrierRefused(f"every carrier refused the label for {reference}: {reasons}")
    raise CarrierUnavailable(
        f"no carrier sold a label for {reference}: {reasons or 'no rate at all'}"
    )


async def shop_and_buy(
    carriers: Sequence[Carrier],
    ship_from: Address,
    ship_to: Address,
    parcels: Sequence[Parcel],
    level: ServiceLevel,
    reference: str,
    *,
    timeout_s: float = 10.0,
    currency: str | None = None,
) -> Purchase:
    quote = await shop(
        carriers, ship_from, ship_to, parcels, level, timeout_s=timeout_s, currency=currency
    )
    return await buy(carriers, quote, ship_from, ship_to, parcels, reference)


def parcels_for(
    lines: Mapping[str, int],
    per_sku: Mapping[str, Parcel],
    default: Parcel | None = None,
    max_weight_g: int = 30_000,
) -> list[Parcel]:
    """Packs ``lines`` (SKU → units) into parcels: units in SKU order, a new parcel when the
    next unit would pass ``max_weight_g``; a parcel is as long and wide as its largest unit and
    as high as its units stacked. A SKU without dimensions uses ``default`` (else KeyError)."""
    parcels: list[Parcel] = []
    weight = length = width = height = 0
    for sku in sorted(lines):
        unit = per_sku.get(sku, default)
        if unit is None:
            raise KeyError(f"no parcel dimensions for SKU {sku!r}: add it under carriers.parcels")
        for _ in range(lines[sku]):
            if weight and weight + unit.weight_g > max_weight_g:
                parcels.append(Parcel(weight, length, width, height))
                weight = length = width = height = 0
            weight += unit.weight_g
            length = max(length, unit.length_mm)
            width = max(width, unit.width_mm)
            height += unit.height_mm
    if weight:
        parcels.append(Parcel(weight, length, width, height))
    return parcels
