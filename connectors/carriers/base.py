"""The protocol every carrier client implements and the errors it raises.

Errors say what the caller should do:

- ``CarrierUnavailable`` (5xx, timeout, throttled beyond the client's retries, unreachable):
  the carrier could not answer now — try another carrier, or this one later;
- ``CarrierRefused`` (invalid address, service not offered on this lane, bad parcel): the
  carrier answered no; the message says why (the carrier's code and text, never the address);
- ``CarrierError`` is their base (and what a misconfiguration raises).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Protocol, runtime_checkable

from connectors.carriers.model import Address, Label, Parcel, Rate, TrackingStatus


class CarrierError(Exception):
    """A carrier call failed; the text is safe to log (no secrets, no personal data)."""


class CarrierUnavailable(CarrierError):  # noqa: N818 - the protocol's name
    """5xx, timeout, throttled or unreachable: try another carrier (or this one later)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CarrierRefused(CarrierError):  # noqa: N818 - the protocol's name
    """The carrier refused the request (invalid address, no such service): says why."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


@runtime_checkable
class Carrier(Protocol):
    name: str

    async def rates(
        self, ship_from: Address, ship_to: Address, parcels: Sequence[Parcel]
    ) -> list[Rate]: ...

    async def ship(
        self,
        rate: Rate,
        ship_from: Address,
        ship_to: Address,
        parcels: Sequence[Parcel],
        reference: str,
    ) -> Label: ...

    async def pickup(self, ship_from: Address, day: date, parcels: int) -> str:
        """Books a collection; returns the carrier's confirmation number."""
        ...

    async def track(self, tracking_numbers: Sequence[str]) -> list[TrackingStatus]: ...
