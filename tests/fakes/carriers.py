"""In-memory carriers speaking the carrier protocol (``connectors.carriers.base.Carrier``),
for the shipping service's tests: a fixed price and promise per carrier, switches for an
outage (labels, rates or pickups answer ``CarrierUnavailable``), the pickups booked and the
tracking status of each parcel.
The carriers' own HTTP fakes live in ``connectors/testing/carriers``."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import date

from connectors.carriers.base import CarrierUnavailable
from connectors.carriers.model import Address, Label, Parcel, Rate, TrackingStatus

PDF = b"%PDF-1.4\n% label\n"


class MemoryCarrier:
    def __init__(self, name: str, price_minor: int, days: int) -> None:
        self.name = name
        self.price = price_minor
        self.days = days
        self.labels_down = False  # ship() answers CarrierUnavailable (a 503)
        self.rates_down = False
        self.labels: dict[str, str] = {}  # reference -> tracking number
        self.status: dict[str, str] = {}  # tracking number -> status
        self.refused: list[str] = []  # references of the labels refused while down
        self.destinations: dict[str, Address] = {}  # reference -> where the label sends it
        self.pickups_down = False  # pickup() answers CarrierUnavailable (a 503)
        self.pickups: list[tuple[Address, date, int]] = []  # bookings: from, day, parcels
        self._lock = threading.Lock()

    async def rates(
        self, ship_from: Address, ship_to: Address, parcels: Sequence[Parcel]
    ) -> list[Rate]:
        if self.rates_down:
            raise CarrierUnavailable(f"{self.name}: 503 Service Unavailable")
        amount = self.price * len(parcels) + sum(p.weight_g for p in parcels) // 100
        return [Rate(self.name, "std", amount, "EUR", self.days, f"{self.name}-std")]

    async def ship(
        self,
        rate: Rate,
        ship_from: Address,
        ship_to: Address,
        parcels: Sequence[Parcel],
        reference: str,
    ) -> Label:
        with self._lock:
            if self.labels_down:
                self.refused.append(reference)
                raise CarrierUnavailable(f"{self.name}: 503 Service Unavailable")
            number = self.labels.setdefault(reference, f"{self.name.upper()}{len(self.labels):08d}")
            self.destinations[reference] = ship_to
            self.status.setdefault(number, "in_transit")
        return Label(
            self.name, rate.service, number, "PDF", PDF + number.encode(), rate.amount_minor, "EUR"
        )

    async def pickup(self, ship_from: Address, day: date, parcels: int) -> str:
        with self._lock:
            if self.pickups_down:
                raise CarrierUnavailable(f"{self.name}: 503 Service Unavailable")
            self.pickups.append((ship_from, day, parcels))
            return f"{self.name}-pickup-{day.isoformat()}-{len(self.pickups)}"

    async def track(self, tracking_numbers: Sequence[str]) -> list[TrackingStatus]:
        with self._lock:
            return [
                TrackingStatus(
                    n, self.status.get(n, "unknown"), 0, f"{self.name}: {self.status.get(n)}"
                )
                for n in tracking_numbers
            ]
