"""Per-token rate limits of the write routes: one token bucket per token name and process."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    rate: float
    burst: int
    level: float
    at: float


class TokenBuckets:
    """``take(name, rate, burst)``: 0 when a request may go now, else the seconds until one
    may (the request is then refused and does not spend anything)."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}

    def take(self, name: str, rate: float, burst: int, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(name)
        if bucket is None or (bucket.rate, bucket.burst) != (rate, burst):
            bucket = self._buckets[name] = _Bucket(rate, burst, float(burst), now)
        bucket.level = min(float(burst), bucket.level + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.level >= 1:
            bucket.level -= 1
            return 0.0
        return (1 - bucket.level) / rate


def retry_after(wait_s: float) -> str:
    """The ``Retry-After`` header: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))
