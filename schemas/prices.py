"""The PriceChange contract: building and checking a price change, in one place.

The ``stockflow price set`` command, and any other writer of ``prices.events.v1``, build
their records here; the connectors' price view checks every record it reads with
:func:`problems` and dead-letters one that fails.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, TypeGuard

from schemas.times import now_ms

SCHEMA_NAME = "stockflow.v1.PriceChange"
MAX_AMOUNT_MINOR = 10**12  # a ten-billion price is a unit error at the source
_CURRENCY = re.compile(r"[A-Z]{3}")
MAX_TEXT = 200


class InvalidPrice(ValueError):  # noqa: N818 - named as schemas.events.InvalidEvent
    """A price change that cannot be used; ``reason`` is short, the message says the fix."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def change_id_of(sku: str, version: int, source: str) -> str:
    """Deterministic: the same SKU, version and source always give the same id."""
    digest = hashlib.sha256(f"{sku}\x1f{version}\x1f{source}".encode()).hexdigest()[:24]
    return f"price-{digest}"


def price_change(
    sku: str,
    amount_minor: int,
    currency: str,
    *,
    version: int,
    source: str,
    valid_from: int | None = None,
    cost_minor: int | None = None,
    at: int | None = None,
) -> dict[str, Any]:
    """A checked ``stockflow.v1.PriceChange`` record; raises :class:`InvalidPrice`."""
    recorded = now_ms() if at is None else at
    record = {
        "change_id": change_id_of(sku, version, source),
        "sku": sku,
        "amount_minor": amount_minor,
        "currency": currency,
        "cost_minor": cost_minor,
        "valid_from": recorded if valid_from is None else valid_from,
        "source": source,
        "version": version,
        "at": recorded,
    }
    found = problems(record)
    if found:
        raise found[0]
    return record


def problems(record: Mapping[str, Any]) -> list[InvalidPrice]:
    """Everything wrong with ``record`` (empty when it is a usable price change)."""
    out: list[InvalidPrice] = []
    for name in ("change_id", "sku", "source"):
        value = record.get(name)
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
            out.append(
                InvalidPrice(f"bad_{name}", f"{name} must be text of 1..{MAX_TEXT} characters")
            )
    currency = record.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        out.append(
            InvalidPrice("bad_currency", f"currency {currency!r} must be an ISO 4217 code (EUR)")
        )
    for name, required in (("amount_minor", True), ("cost_minor", False)):
        value = record.get(name)
        if value is None and not required:
            continue
        if not _is_int(value) or not 0 <= value <= MAX_AMOUNT_MINOR:
            out.append(
                InvalidPrice(
                    f"bad_{name}",
                    f"{name} {value!r} must be a whole number of minor units in "
                    f"0..{MAX_AMOUNT_MINOR} (19.99 EUR is 1999)",
                )
            )
    for name in ("version", "valid_from", "at"):
        value = record.get(name)
        if not _is_int(value) or value < 0:
            out.append(InvalidPrice(f"bad_{name}", f"{name} {value!r} must be a whole number ≥ 0"))
    return out


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
