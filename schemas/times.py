"""Times in the pipeline are integers: milliseconds since the epoch, UTC."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_time_ms(value: object, field: str) -> int:
    """Epoch milliseconds from an int (ms) or an ISO 8601 string with a timezone."""
    if isinstance(value, bool):
        raise ValueError(f"{field}: expected epoch milliseconds or ISO 8601, got a boolean")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{field}: epoch milliseconds must not be negative")
        return value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{field}: {value!r} is not ISO 8601") from None
        if parsed.tzinfo is None:
            raise ValueError(f"{field}: {value!r} has no timezone; add Z or +01:00")
        return int(parsed.timestamp() * 1000)
    raise ValueError(f"{field}: expected epoch milliseconds or ISO 8601 string")


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def parse_date_days(value: object, field: str) -> int:
    """Days since 1970-01-01 from a date ``YYYY-MM-DD`` or an int (days already)."""
    if isinstance(value, bool):
        raise ValueError(f"{field}: expected a date YYYY-MM-DD, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value).toordinal() - _EPOCH_ORDINAL
        except ValueError:
            raise ValueError(f"{field}: {value!r} is not a date YYYY-MM-DD") from None
    raise ValueError(f"{field}: expected a date YYYY-MM-DD")


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def iso_to_ms(value: str, *, naive_is_utc: bool = False) -> int:
    """Epoch ms from an ISO 8601 time. Channels that send GMT without an offset
    (WooCommerce ``*_gmt`` fields) pass ``naive_is_utc=True``; otherwise a missing offset is an
    error, because guessing a timezone would reorder events."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        if not naive_is_utc:
            raise ValueError(f"time {value!r} has no timezone offset")
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def ms_to_iso(ms: int) -> str:
    """ISO 8601 with a ``Z``, as channel APIs take it."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
