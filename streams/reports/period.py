"""The period a report covers, from ``--since``/``--until`` (ISO dates or times)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

DAY_MS = 86_400_000


class ReportError(ValueError):
    """A report request that cannot be answered; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Period:
    since_ms: int
    until_ms: int

    @property
    def days(self) -> float:
        return (self.until_ms - self.since_ms) / DAY_MS

    @property
    def first_day(self) -> date:
        return datetime.fromtimestamp(self.since_ms / 1000, tz=UTC).date()

    @property
    def last_day(self) -> date:
        return datetime.fromtimestamp((self.until_ms - 1) / 1000, tz=UTC).date()


def parse_time(value: str, option: str) -> datetime:
    """``2026-11-01`` (midnight UTC) or ``2026-11-01T08:00:00+01:00``; naive times are UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(
            f"{option} {value!r} is not a date or time; use e.g. 2026-11-01 or 2026-11-01T08:00:00Z"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def period(
    since: str | None, until: str | None, *, now: datetime | None = None, default_days: int = 30
) -> Period:
    """The period ``[since, until)``; default: the ``default_days`` days up to now."""
    end = parse_time(until, "--until") if until else (now or datetime.now(tz=UTC))
    start = parse_time(since, "--since") if since else end - timedelta(days=default_days)
    if start >= end:
        raise ReportError(
            f"--since ({start.isoformat()}) must be before --until ({end.isoformat()})"
        )
    if start.timestamp() < 0:
        raise ReportError("--since must not be before 1970-01-01")
    return Period(int(start.timestamp() * 1000), int(end.timestamp() * 1000))
