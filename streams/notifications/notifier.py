"""The notifier's state and decisions, fed alerts and the time: what to send, hold, digest or
suppress, and the AlertDelivery records saying so. No Kafka here (streams.notifications.run
is the consumer loop); sending goes through a :class:`Transport`.

State, and how it survives a restart:

* ``dedup`` (core.Dedup) is a function of the alerts alone: at start the runner replays
  stock.alerts.v1 up to the group's committed offsets through :meth:`observe`; the alerts
  after them are handled again and reach the same decisions.
* ``recorded``: the last status of every delivery_id (alert_id>recipient) found in
  notifications.deliveries.v1 (read whole at start through :meth:`restore`). An alert read
  again after a crash (its offset was not committed yet) skips every recipient whose
  delivery is already recorded: it is not sent twice.
* ``held`` and ``digests``: deliveries recorded as held_quiet_hours or digested and not yet
  followed by their delivered/failed record, rebuilt from the same topic.

The one window left: a crash after a send and before its record is acknowledged by Kafka
sends that one notification again at the next start (at least once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from streams.notifications import render
from streams.notifications.channels import Outcome, with_retries
from streams.notifications.config import NotificationsConfig, Recipient
from streams.notifications.core import (
    Dedup,
    Route,
    delivery_id,
    digest_due,
    plan,
    quiet_end,
    route,
)

log = logging.getLogger(__name__)

FINAL = frozenset({"delivered", "failed", "suppressed_duplicate"})
Record = dict[str, Any]


class Transport(Protocol):
    async def email(self, to: str, subject: str, body: str) -> object: ...

    async def webhook(self, url: str, payload: dict[str, Any]) -> object: ...


@dataclass
class Tally:
    alerts: int = 0
    stale: int = 0
    unrouted: int = 0
    already_recorded: int = 0  # deliveries of an alert read again after a restart: skipped
    statuses: dict[str, int] = field(default_factory=dict)

    def count(self, records: list[Record]) -> None:
        for r in records:
            self.statuses[r["status"]] = self.statuses.get(r["status"], 0) + 1


class Notifier:
    def __init__(
        self,
        config: NotificationsConfig,
        transport: Transport,
        *,
        stale_after_ms: int = 86_400_000,
    ) -> None:
        self.config = config
        self.transport = transport
        self.dedup = Dedup(int(config.dedup_window_s * 1000))
        self.recorded: dict[str, str] = {}
        self.held: dict[str, Record] = {}  # delivery_id -> its held_quiet_hours record
        self.digests: dict[str, dict[str, Record]] = {}  # recipient -> delivery_id -> record
        self.digest_due: dict[str, int] = {}
        self.stale_after_ms = stale_after_ms
        self.tally = Tally()

    @property
    def interval_ms(self) -> int:
        return int(self.config.digest_interval_s * 1000)

    # -- rebuilding the state at start -------------------------------------------------------

    def observe(self, alert: Mapping[str, Any]) -> None:
        """An alert handled before the last start: only its effect on dedup is replayed."""
        self.dedup.observe(alert)

    def restore(self, record: Mapping[str, Any]) -> None:
        """One record of notifications.deliveries.v1, in the topic's order."""
        did, status = str(record["delivery_id"]), str(record["status"])
        self.recorded[did] = status
        rid = str(record["recipient"])
        if status == "held_quiet_hours":
            self.held[did] = dict(record)
        elif status == "digested":
            self.digests.setdefault(rid, {})[did] = dict(record)
            self._digest_started(rid, int(record["at"]))
        elif status in FINAL:
            self.held.pop(did, None)
            pending = self.digests.get(rid)
            if pending is not None:
                pending.pop(did, None)
                if not pending:
                    del self.digests[rid]
                    self.digest_due.pop(rid, None)

    def _digest_started(self, rid: str, at_ms: int) -> None:
        if rid not in self.digest_due:
            recipient = self.config.recipients.get(rid)
            quiet = recipient.quiet_hours if recipient else None
            self.digest_due[rid] = digest_due(at_ms, self.interval_ms, quiet)

    # -- one alert ---------------------------------------------------------------------------

    async def handle(self, alert: Mapping[str, Any], now_ms: int) -> list[Record]:
        """Decide and do everything about one alert; returns its delivery records (none
        when no rule routes it, or when every delivery was recorded before a restart)."""
        self.tally.alerts += 1
        news = self.dedup.observe(alert)
        routes = route(self.config, alert)
        if not routes:
            self.tally.unrouted += 1
            return []
        if now_ms - int(alert.get("at") or 0) > self.stale_after_ms:
            self.tally.stale += 1  # older than a day: an old backlog is not sent to people
            return []
        records: list[Record] = []
        sends: list[tuple[Route, Record]] = []
        for r in routes:
            did = delivery_id(str(alert["alert_id"]), r.recipient.id)
            if did in self.recorded:
                self.tally.already_recorded += 1
                continue  # recorded before a restart: never twice
            rid = r.recipient.id
            if not news:
                records.append(_record(alert, r, did, "suppressed_duplicate", now_ms))
                continue
            p = plan(r, now_ms, self.interval_ms, self.digest_due.get(rid))
            if p.action == "digest":
                record = _record(alert, r, did, "digested", now_ms, mode="digest")
                self.digests.setdefault(rid, {})[did] = record
                self.digest_due.setdefault(rid, p.due_ms)
                records.append(record)
            elif p.action == "hold":
                record = _record(alert, r, did, "held_quiet_hours", now_ms)
                record["due_ms"] = p.due_ms
                self.held[did] = record
                records.append(record)
            else:
                sends.append((r, _record(alert, r, did, "delivered", now_ms)))
        outcomes = await asyncio.gather(*(self._send(r.recipient, [item]) for r, item in sends))
        for (_, item), outcome in zip(sends, outcomes, strict=True):
            records.append(_outcome(item, outcome, now_ms))
        return self._done(records)

    # -- timers: held notifications, digests -------------------------------------------------

    def next_due_ms(self) -> int | None:
        dues = [_due(r, self) for r in self.held.values()] + list(self.digest_due.values())
        return min(dues) if dues else None

    async def tick(self, now_ms: int) -> list[Record]:
        """Send what is due: held notifications whose quiet hours ended, digests whose
        interval ended. Returns their delivered/failed records."""
        jobs: list[tuple[Recipient | None, list[Record]]] = []
        for did, record in list(self.held.items()):
            if _due(record, self) <= now_ms:
                del self.held[did]
                jobs.append((self.config.recipients.get(record["recipient"]), [record]))
        for rid, due in list(self.digest_due.items()):
            if due <= now_ms:
                del self.digest_due[rid]
                items = list(self.digests.pop(rid, {}).values())
                if items:
                    jobs.append((self.config.recipients.get(rid), items))
        outcomes = await asyncio.gather(*(self._send(rcpt, items) for rcpt, items in jobs))
        records: list[Record] = []
        for (_, items), outcome in zip(jobs, outcomes, strict=True):
            records.extend(_outcome(item, outcome, now_ms) for item in items)
        return self._done(records)

    # -- sending -----------------------------------------------------------------------------

    async def _send(self, recipient: Recipient | None, items: list[Record]) -> Outcome:
        if recipient is None:
            return Outcome(False, 0, "recipient no longer in the configuration")
        if recipient.channel == "page":
            return Outcome(True, 1, None)  # the page reads alert_deliveries
        if recipient.channel == "email":
            assert recipient.email is not None
            to = recipient.email
            subject, body = render.email_subject(items), render.email_body(items)
            return await with_retries(
                lambda: self.transport.email(to, subject, body), self.config.retry
            )
        assert recipient.webhook_url is not None
        url, payload = recipient.webhook_url, render.webhook_json(items, slack=recipient.slack)
        return await with_retries(lambda: self.transport.webhook(url, payload), self.config.retry)

    def _done(self, records: list[Record]) -> list[Record]:
        for record in records:
            self.recorded[record["delivery_id"]] = record["status"]
            record.pop("due_ms", None)
        self.tally.count(records)
        return [dict(r) for r in records]


def _due(record: Mapping[str, Any], notifier: Notifier) -> int:
    """When a held notification is sent: its due time, or (restored from the topic, where it
    is not kept) the end of its quiet hours after it was held."""
    if "due_ms" in record:
        return int(record["due_ms"])
    recipient = notifier.config.recipients.get(str(record["recipient"]))
    rule = next((r for r in notifier.config.rules if r.name == record["rule"]), None)
    quiet = (rule.quiet_hours if rule else None) or (recipient.quiet_hours if recipient else None)
    if quiet is None:
        return int(record["at"])
    return quiet_end(quiet, int(record["at"]))


def _record(
    alert: Mapping[str, Any],
    r: Route,
    did: str,
    status: str,
    now_ms: int,
    *,
    mode: str | None = None,
) -> Record:
    return {
        "delivery_id": did,
        "alert_id": str(alert["alert_id"]),
        "kind": str(alert["kind"]),
        "sku": str(alert["sku"]),
        "location": alert.get("location"),
        "rule": r.rule.name,
        "recipient": r.recipient.id,
        "channel": r.recipient.channel,
        "mode": mode or r.mode,
        "status": status,
        "severity": r.severity,
        "message": str(alert.get("message") or ""),
        "attempts": 0,
        "error": None,
        "alert_at": int(alert.get("at") or 0),
        "at": now_ms,
    }


def _outcome(item: Mapping[str, Any], outcome: Outcome, now_ms: int) -> Record:
    record = {k: v for k, v in item.items() if k != "due_ms"}
    record.update(
        status="delivered" if outcome.ok else "failed",
        attempts=outcome.attempts,
        error=outcome.error,
        at=now_ms,
    )
    return record
