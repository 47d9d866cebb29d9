"""The HTTP transport every carrier client shares: limits, retries, timeouts, redaction.

One rule for every carrier (carrier-contracts §1.8, §2.8: limits are unpublished, 429 may
carry no ``Retry-After``):

- an optional client-side token bucket (``per_s``/``burst``) spaces requests out;
- 429 is retried after ``Retry-After`` (or the backoff when absent), up to ``max_attempts``;
- 5xx, timeouts and connection errors are retried with full-jitter backoff **only for safe
  calls** (quotes, tracking, tokens). Creating a label or a pickup is not idempotent at any of
  the three carriers (no idempotency key): a lost answer may have created a shipment, so those
  calls are tried once and a failure raises :class:`CarrierUnavailable` at once — the caller
  falls back to another carrier rather than risk paying twice here;
- what is still failing after the attempts raises :class:`CarrierUnavailable`; any other
  answer (2xx, 4xx) is handed back for the carrier's client to read its own error shape.

Errors never carry request headers (tokens, Basic auth) nor bodies (addresses): see
``connectors.framework.redact``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from connectors.carriers import metrics
from connectors.carriers.base import CarrierUnavailable
from connectors.framework import redact
from connectors.framework.ratelimit import TokenBucket, backoff_delay, parse_retry_after

MAX_RETRY_AFTER_S = 30.0  # a longer Retry-After is an outage for a caller that can go elsewhere


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        import orjson

        try:
            return orjson.loads(self.body) if self.body else {}
        except orjson.JSONDecodeError:
            return {}


@dataclass(frozen=True)
class HttpLimits:
    timeout_s: float = 10.0
    max_attempts: int = 3
    per_s: float | None = None
    burst: float = 10.0
    backoff_base_s: float = 0.2
    backoff_cap_s: float = 2.0


class CarrierHttp:
    """Requests to one carrier's host under its :class:`HttpLimits`."""

    def __init__(
        self,
        carrier: str,
        session: aiohttp.ClientSession,
        base_url: str,
        limits: HttpLimits | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.carrier = carrier
        self.base_url = base_url.rstrip("/")
        self.limits = limits or HttpLimits()
        self._session = session
        self._bucket = (
            TokenBucket(self.limits.burst, self.limits.per_s) if self.limits.per_s else None
        )
        self._rng = rng or random.Random()
        self.attempts = 0  # requests sent, for tests and metrics

    async def request(
        self,
        method: str,
        path: str,
        *,
        safe: bool,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Answer:
        """Sends until an answer other than 429/5xx comes back (see the module's rules)."""
        timeout = aiohttp.ClientTimeout(total=self.limits.timeout_s)
        last = ""
        for attempt in range(max(1, self.limits.max_attempts)):
            if self._bucket is not None:
                await self._bucket.acquire(1.0)
            self.attempts += 1
            wait: float | None = None
            started = time.monotonic()
            try:
                async with self._session.request(
                    method, self.base_url + path, headers=headers, timeout=timeout, **kwargs
                ) as response:
                    body = await response.read()
                    answer = Answer(response.status, dict(response.headers), body)
            except (aiohttp.ClientError, TimeoutError) as exc:
                metrics.LATENCY.labels(self.carrier).observe(time.monotonic() - started)
                metrics.REQUESTS.labels(self.carrier, "unreachable").inc()
                # never {exc!r}: aiohttp's errors print the request headers (credentials)
                last = f"unreachable ({redact.describe(exc)})"
                if not safe:
                    break
            else:
                metrics.LATENCY.labels(self.carrier).observe(time.monotonic() - started)
                metrics.REQUESTS.labels(self.carrier, _outcome(answer.status)).inc()
                if answer.status == 429:
                    last = "429 throttled"
                    wait = parse_retry_after(answer.headers.get("Retry-After"))
                    if wait is not None and wait > MAX_RETRY_AFTER_S:
                        raise CarrierUnavailable(
                            f"{self.carrier}: throttled for {wait:.0f} s", wait
                        )
                elif answer.status >= 500:
                    last = f"HTTP {answer.status}"
                    if not safe:
                        break
                else:
                    return answer
            if attempt + 1 < self.limits.max_attempts:
                await asyncio.sleep(
                    wait
                    if wait is not None
                    else backoff_delay(
                        attempt,
                        base=self.limits.backoff_base_s,
                        cap=self.limits.backoff_cap_s,
                        rng=self._rng,
                    )
                )
        raise CarrierUnavailable(
            redact.scrub(f"{self.carrier} {method} {path.split('?')[0]}: {last}")
        )


def _outcome(status: int) -> str:
    if status == 429:
        return "throttled"
    if status >= 500:
        return "server_error"
    return "refused" if status >= 400 else "ok"
