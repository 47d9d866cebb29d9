"""Price writers: the contract between the price lanes and each channel's client.

A channel that shows prices implements :class:`PriceWriter` (usually on its client): it
receives the final price of each SKU for that channel (the channel's rules already applied:
markup, rounding, conversion, floor) in minor units of the channel's currency, writes them,
and answers one :class:`ItemResult` per item. It never raises for a channel error: a
throttle or 5xx is ``Outcome.RETRY`` (with the channel's ``Retry-After`` when it said one),
an unknown SKU or a refused value is ``Outcome.REFUSED`` (a drift alert, no retry), a bad
request for this item is ``Outcome.FAILED`` (dead-lettered). An exception from
``set_prices`` is treated as ``RETRY`` for the whole batch.

A writer that can read prices back also implements :class:`PriceReader`; price drift
detection compares what it reads with what we pushed.

Writers are found by channel kind in ``connectors.price_writers`` (one line per kind).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, runtime_checkable

from connectors.framework.types import Outcome

# ISO 4217 minor unit digits that are not 2; every other currency has 2.
_MINOR_DIGITS = {
    "BHD": 3,
    "CLP": 0,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "OMR": 3,
    "TND": 3,
    "VND": 0,
}


def minor_digits(currency: str) -> int:
    """How many decimal digits the currency's minor unit has (2 for EUR, 0 for JPY)."""
    return _MINOR_DIGITS.get(currency.upper(), 2)


def to_decimal(amount_minor: int, currency: str) -> Decimal:
    """``1999, "EUR"`` → ``Decimal("19.99")``; ``1999, "JPY"`` → ``Decimal("1999")``."""
    digits = minor_digits(currency)
    return Decimal(amount_minor).scaleb(-digits).quantize(Decimal(1).scaleb(-digits))


def from_decimal(amount: Decimal | str | float, currency: str) -> int:
    """A channel's price in major units (``"19.99"``) → minor units (``1999``)."""
    value = Decimal(str(amount)).scaleb(minor_digits(currency))
    return int(value.to_integral_value())


@dataclass(frozen=True, slots=True)
class PriceItem:
    """The price one channel should show for one SKU.

    ``amount_minor`` is in minor units of ``currency`` (cents for EUR). ``version`` grows
    with every price change of the SKU; a writer with idempotency keys may use
    ``(sku, version)``.
    """

    sku: str
    amount_minor: int
    currency: str
    version: int = 0

    @property
    def amount(self) -> Decimal:
        """The price in major units, exact: ``Decimal("19.99")``."""
        return to_decimal(self.amount_minor, self.currency)

    def text(self) -> str:
        """The price as most APIs take it in JSON or XML: ``"19.99"``."""
        return str(self.amount)


@dataclass(frozen=True, slots=True)
class ItemResult:
    """What became of one item of a ``set_prices`` call."""

    sku: str
    outcome: Outcome
    error: str = ""
    retry_after: float | None = None  # seconds the channel asked us to wait, when it said


class PriceWriter(Protocol):
    """A channel's price output. ``max_batch`` bounds how many items one call receives."""

    max_batch: int

    async def set_prices(self, items: Sequence[PriceItem]) -> list[ItemResult]:
        """Write each item's price once; one result per item; never raises for channel
        errors."""
        ...


@runtime_checkable
class PriceReader(Protocol):
    """A channel whose prices can be read back (price drift detection)."""

    async def get_prices(self, skus: Sequence[str]) -> dict[str, int]:
        """The channel's current prices in minor units of its currency; a SKU the channel
        does not know is left out."""
        ...
