"""Dead-letter records: the original bytes, the error, and where the record came from."""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import Counter

from schemas.times import now_ms

log = logging.getLogger("stockflow.deadletter")


def dead_letter(
    counter: Counter,
    *,
    component: str,
    reason: str,
    error: str,
    original: bytes,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    key: bytes | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A DeadLetter record; also counted on ``counter`` (the calling process's
    ``dead_letter_counter``, from ``streams.kernel.metrics``) and logged with its coordinates."""
    counter.labels(component=component, reason=reason).inc()
    log.warning(
        "%s[%s] offset=%s event_id=%s dead-lettered: %s: %s",
        topic,
        partition,
        offset,
        event_id,
        reason,
        error,
    )
    return {
        "component": component,
        "reason": reason,
        "error": error[:2000],
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": key,
        "original": original,
        "event_id": event_id,
        "at": now_ms(),
    }
