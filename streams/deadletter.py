"""Dead-letter records: the original bytes, the error, and where the record came from."""

from __future__ import annotations

import logging
from typing import Any

from streams import metrics
from streams.times import now_ms

log = logging.getLogger("stockflow.deadletter")


def dead_letter(
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
    """A DeadLetter record; also counted and logged with its coordinates."""
    metrics.DEAD_LETTERS.labels(component=component, reason=reason).inc()
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
