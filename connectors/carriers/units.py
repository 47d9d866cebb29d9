"""Unit and money conversions shared by the carrier clients (exact: Decimal, never float)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from connectors.carriers.base import CarrierError
from connectors.carriers.model import Address, Parcel

_ZERO_DECIMAL = {"JPY", "KRW", "CLP", "ISK", "HUF", "TWD", "VND"}


def minor_units(amount: str | float | int, currency: str) -> int:
    """``"12.34"`` EUR → 1234 (half up); carriers send strings (UPS), numbers (DHL) or XML
    text (Chronopost); a float goes through its shortest ``repr`` so 12.3 is 1230."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise CarrierError(f"not an amount: {amount!r}") from None
    exponent = 0 if currency.upper() in _ZERO_DECIMAL else 2
    return int((value.scaleb(exponent)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def kg(grams: int) -> str:
    """Grams as kilograms with up to three decimals, no trailing zeros (``1500`` → ``"1.5"``)."""
    text = format(Decimal(grams) / 1000, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def cm(mm: int) -> int:
    """Millimetres to whole centimetres, rounded up (a carrier bills the box it measures)."""
    return max(1, -(-mm // 10))


def rate_id(
    carrier: str, service: str, ship_from: Address, ship_to: Address, parcels: Sequence[Parcel]
) -> str:
    """Equal requests give equal ids (no address detail beyond country and postal code)."""
    key = "|".join(
        [
            carrier,
            service,
            ship_from.country,
            ship_from.postal_code,
            ship_to.country,
            ship_to.postal_code,
        ]
        + [f"{p.weight_g}:{p.length_mm}:{p.width_mm}:{p.height_mm}" for p in parcels]
    )
    return f"{carrier}:{service}:{hashlib.sha256(key.encode()).hexdigest()[:16]}"
