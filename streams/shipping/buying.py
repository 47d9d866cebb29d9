"""Rate shopping and label purchase over the configured carriers.

Every carrier is asked for rates at once (each within ``timeout_s``); one that fails or does
not answer in time is skipped, the others still count. The rates are ranked for the
channel's service level (:func:`rank`), and the label is bought from the best; a carrier
that is unavailable at purchase (5xx, timeout) gives way to the next best rate, from
another carrier. A refusal (invalid address) is the answer for that carrier too: the next
one is tried, and when none is left the last refusal is raised with its reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from connectors.carriers.base import Carrier, CarrierError, CarrierRefused, CarrierUnavailable
from connectors.carriers.model import Address, Label, Parcel, Rate
from streams.shipping.config import ServiceLevel

log = logging.getLogger("stockflow.shipping")

NO_DAYS = 99  # a rate without a promised time ranks after every promise


def rank(rates: Sequence[Rate], service: ServiceLevel) -> list[Rate]:
    """``rates`` best first: those promised within ``max_days`` (all when none is), then
    standard: cheapest first (faster on a tie); express: fastest first (cheaper on a tie).
    Ties end on carrier and service so the order is the same every time."""
    if service.max_days is not None:
        within = [r for r in rates if r.days is not None and r.days <= service.max_days]
        rates = within or list(rates)

    def key(r: Rate) -> tuple[int, int, str, str]:
        days = NO_DAYS if r.days is None else r.days
        first, second = (
            (days, r.amount_minor) if service.level == "express" else (r.amount_minor, days)
        )
        return first, second, r.carrier, r.service

    return sorted(rates, key=key)


@dataclass(frozen=True, slots=True)
class Bought:
    label: Label
    rate: Rate
    skipped: tuple[str, ...]  # "<carrier>: <why>" for every carrier passed over


class NoLabelError(CarrierError):
    """No carrier sold a label; the message lists why for each."""


async def _rates(
    carrier: Carrier,
    ship_from: Address,
    ship_to: Address,
    parcels: Sequence[Parcel],
    timeout_s: float,
) -> list[Rate]:
    return await asyncio.wait_for(carrier.rates(ship_from, ship_to, parcels), timeout_s)


async def buy(
    carriers: Mapping[str, Carrier],
    ship_from: Address,
    ship_to: Address,
    parcels: Sequence[Parcel],
    service: ServiceLevel,
    reference: str,
    *,
    timeout_s: float = 10.0,
) -> Bought:
    """The label of the best rate that a carrier sells (see the module docstring)."""
    names = sorted(carriers)
    answers = await asyncio.gather(
        *(_rates(carriers[n], ship_from, ship_to, parcels, timeout_s) for n in names),
        return_exceptions=True,
    )
    skipped: list[str] = []
    rates: list[Rate] = []
    for name, answer in zip(names, answers, strict=True):
        if isinstance(answer, BaseException):
            skipped.append(f"{name}: rates {_why(answer)}")
        else:
            rates.extend(answer)
    for rate in rank(rates, service):
        if any(s.startswith(f"{rate.carrier}: ship ") for s in skipped):
            continue  # that carrier already failed a purchase for this parcel
        carrier = carriers[rate.carrier]
        try:
            label = await asyncio.wait_for(
                carrier.ship(rate, ship_from, ship_to, parcels, reference), timeout_s
            )
        except (CarrierUnavailable, CarrierRefused, TimeoutError) as exc:
            skipped.append(f"{rate.carrier}: ship {_why(exc)}")
            log.warning(
                "shipping: %s label for %s failed (%s); next rate",
                rate.carrier,
                reference,
                _why(exc),
            )
            continue
        return Bought(label, rate, tuple(skipped))
    raise NoLabelError(
        f"no carrier sold a label for {reference}: " + ("; ".join(skipped) or "no rate")
    )


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, CarrierError):
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    return type(exc).__name__  # unexpected errors: the class only (texts may carry requests)
