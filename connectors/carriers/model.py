"""The normalised carrier model every carrier client speaks (the shipping service's contract).

Money is in integer minor units, weights in grams, lengths in millimetres, times in epoch ms.
``Address`` carries personal data (name, street lines): it goes to the carrier's API and
nowhere else — never logged, never in an exception text, never to Kafka or ClickHouse
(its ``repr`` shows the country and postal code only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

# normalised tracking statuses (carrier-contracts §5 grouped into the four the order cares for)
IN_TRANSIT: Final = "in_transit"
DELIVERED: Final = "delivered"
EXCEPTION: Final = "exception"
UNKNOWN: Final = "unknown"
STATUSES: Final = (IN_TRANSIT, DELIVERED, EXCEPTION, UNKNOWN)

LABEL_FORMATS: Final = ("PDF", "ZPL")


@dataclass(frozen=True)
class Parcel:
    weight_g: int
    length_mm: int
    width_mm: int
    height_mm: int

    def __post_init__(self) -> None:
        if self.weight_g <= 0 or min(self.length_mm, self.width_mm, self.height_mm) <= 0:
            raise ValueError(
                f"a parcel needs a positive weight and dimensions, got {self.weight_g} g "
                f"{self.length_mm}×{self.width_mm}×{self.height_mm} mm"
            )


@dataclass(frozen=True)
class Address:
    """Where a parcel leaves from or goes to. ``country`` is ISO 3166-1 alpha-2."""

    country: str
    postal_code: str
    city: str = field(default="", repr=False)
    lines: tuple[str, ...] = field(default=(), repr=False)
    name: str = field(default="", repr=False)  # personal data: never logged, never to Kafka


@dataclass(frozen=True)
class Rate:
    """One price a carrier offers for one service; ``rate_id`` is stable for equal requests."""

    carrier: str
    service: str
    amount_minor: int
    currency: str
    days: int | None  # promised transit days; None when the carrier does not say
    rate_id: str


@dataclass(frozen=True)
class Label:
    carrier: str
    service: str
    tracking_number: str
    format: str  # "PDF" | "ZPL"
    data: bytes = field(repr=False)
    cost_minor: int
    currency: str


@dataclass(frozen=True)
class TrackingStatus:
    tracking_number: str
    status: str  # in_transit | delivered | exception | unknown
    at_ms: int  # carrier's time of the latest event (0 when there is none)
    detail: str  # carrier's own code and wording, e.g. "OK: Delivered"
