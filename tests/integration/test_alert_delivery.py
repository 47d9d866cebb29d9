"""Alerts delivered for real: email to a local SMTP server (aiosmtpd), JSON and Slack-shaped
POSTs to a local webhook receiver (aiohttp), including receivers that fail for a while.
No Kafka here: the notifier is fed alerts directly (the consumer path has its own test)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from schemas.times import now_ms
from streams.kernel.settings import Settings, load
from streams.notifications.config import parse_notifications
from streams.notifications.notifier import Notifier, Record
from streams.notifications.run import SmtpAndWebhooks
from tests.support.inboxes import smtp_server, webhook_receiver

FAST_RETRY = {"max_attempts": 6, "base_backoff": 0.05, "max_backoff": 0.2}


def _settings(smtp_port: int) -> Settings:
    return dataclasses.replace(load(), smtp_host="127.0.0.1", smtp_port=smtp_port)


def _alert(kind: str, sku: str, location: str = "paris-wh", at: int | None = None) -> dict:
    at = at if at is not None else now_ms()
    return {
        "alert_id": f"ev-{sku}-{at}|{kind}|{location}",
        "kind": kind,
        "sku": sku,
        "location": location,
        "message": f"{sku} at {location}: {kind.replace('_', ' ')} (3 available, below 5)",
        "at": at,
    }


def _run(
    config: dict[str, Any],
    settings: Settings,
    scenario: Callable[[Notifier], Awaitable[list[Record]]],
) -> list[Record]:
    async def main() -> list[Record]:
        async with aiohttp.ClientSession() as session:
            notifier = Notifier(parse_notifications(config), SmtpAndWebhooks(settings, session))
            return await scenario(notifier)

    return asyncio.run(main())


def test_an_alert_email_reaches_the_smtp_server_with_its_subject_and_message() -> None:
    """Given ops routed out_of_stock alerts by email, when one arrives, then the local SMTP
    server receives one email to ops from the configured sender, its subject naming the kind,
    SKU and location and its body the alert's message, severity and rule; the record says
    delivered after one attempt and carries the recipient id only."""
    with smtp_server() as (port, inbox):
        config = {
            "recipients": [{"id": "ops", "email": "ops@example.com"}],
            "rules": [{"name": "outs", "kinds": ["out_of_stock"], "recipients": ["ops"]}],
        }
        alert = _alert("out_of_stock", "chair")
        records = _run(config, _settings(port), lambda n: n.handle(alert, now_ms()))
        [message] = inbox.wait(1)
    assert message["To"] == "ops@example.com"
    assert message["From"] == load().smtp_from
    assert message["Subject"] == "[stockflow] Out of stock: chair at paris-wh"
    body = message.get_payload(decode=True).decode()
    assert alert["message"] in body and "Severity: critical" in body and "Rule: outs" in body
    [record] = records
    assert (record["status"], record["attempts"], record["recipient"]) == ("delivered", 1, "ops")
    assert "@" not in str(record)


def test_one_digest_email_lists_every_alert_that_crossed_in_the_interval() -> None:
    """Given buyers on an hourly digest, when three alerts of two kinds arrive, then nothing is
    sent at once (three digested records); when the digest falls due, then ONE email arrives
    listing the three alerts grouped by kind (critical first), and three delivered records in
    digest mode follow."""
    with smtp_server() as (port, inbox):
        config = {
            "recipients": [{"id": "buyers", "email": "buyers@example.com"}],
            "rules": [{"name": "digest", "recipients": ["buyers"], "mode": "digest"}],
        }
        alerts = [
            _alert("low_stock", "chair"),
            _alert("low_stock", "desk", "lyon"),
            _alert("out_of_stock", "lamp"),
        ]

        async def scenario(n: Notifier) -> list[Record]:
            queued = [r for a in alerts for r in await n.handle(a, now_ms())]
            assert [r["status"] for r in queued] == ["digested"] * 3
            assert inbox.messages == []
            return await n.tick(n.digest_due["buyers"])

        records = _run(config, _settings(port), scenario)
        [message] = inbox.wait(1)
    assert message["Subject"] == "[stockflow] Digest: 3 alerts"
    body = message.get_payload(decode=True).decode()
    for sku in ("chair", "desk", "lamp"):
        assert sku in body
    assert body.index("Out of stock (1)") < body.index("Low stock (2)")
    assert [(r["status"], r["mode"]) for r in records] == [("delivered", "digest")] * 3


def test_an_smtp_server_refusing_for_a_while_gets_the_email_once_after_retries() -> None:
    """Given an SMTP server answering 451 (try later) to the next two messages, when an alert
    email is sent, then it arrives once, and its record says delivered after 3 attempts with
    the last error kept."""
    with smtp_server() as (port, inbox):
        inbox.fail_next(2)
        config = {
            "recipients": [{"id": "ops", "email": "ops@example.com"}],
            "rules": [{"name": "all", "recipients": ["ops"]}],
            "retry": FAST_RETRY,
        }
        records = _run(
            config, _settings(port), lambda n: n.handle(_alert("low_stock", "x"), now_ms())
        )
        assert len(inbox.wait(1)) == 1
    assert inbox.refused == 2
    [record] = records
    assert (record["status"], record["attempts"], record["error"]) == ("delivered", 3, "SMTP 451")


def test_webhooks_get_the_alert_as_json_or_as_a_slack_message() -> None:
    """Given two webhook recipients, one plain and one with slack: true, when a low_stock
    arrives, then the plain one receives {"digest": false, "alerts": [...]} with the alert's
    fields and the Slack one {"text": ..., "blocks": [header, section]}."""
    with webhook_receiver() as (url, hooks):
        config = {
            "recipients": [
                {"id": "erp", "webhook_url": url},
                {"id": "chat", "webhook_url": url, "slack": True},
            ],
            "rules": [{"name": "all", "recipients": ["erp", "chat"]}],
        }
        alert = _alert("low_stock", "chair")
        _run(config, load(), lambda n: n.handle(alert, now_ms()))
        bodies = hooks.wait(2)
    plain = next(b for b in bodies if "alerts" in b)
    slack = next(b for b in bodies if "blocks" in b)
    assert plain["digest"] is False
    assert plain["alerts"][0] | {"alert_at": 0} == {
        "alert_id": alert["alert_id"],
        "kind": "low_stock",
        "sku": "chair",
        "location": "paris-wh",
        "severity": "warning",
        "message": alert["message"],
        "rule": "all",
        "alert_at": 0,
    }
    assert slack["text"] == "Low stock: chair at paris-wh"
    assert [b["type"] for b in slack["blocks"]] == ["header", "section"]
    assert alert["message"] in slack["blocks"][1]["text"]["text"]


def test_a_webhook_failing_for_a_while_gets_the_alert_exactly_once_after_retries() -> None:
    """Given a receiver answering 503 to the next four requests, when an alert is sent to it,
    then it accepts the alert exactly once, after five requests, and the record says
    delivered, attempts 5, last error HTTP 503; a second alert afterwards goes through at the
    first attempt (nothing lost, nothing doubled)."""
    with webhook_receiver() as (url, hooks):
        hooks.fail_next(4, status=503)
        config = {
            "recipients": [{"id": "erp", "webhook_url": url}],
            "rules": [{"name": "all", "recipients": ["erp"]}],
            "retry": FAST_RETRY,
        }
        first, second = _alert("out_of_stock", "chair"), _alert("out_of_stock", "desk")

        async def scenario(n: Notifier) -> list[Record]:
            return [*(await n.handle(first, now_ms())), *(await n.handle(second, now_ms()))]

        records = _run(config, load(), scenario)
        accepted = hooks.wait(2)
    assert hooks.requests == 6
    assert [b["alerts"][0]["alert_id"] for b in accepted] == [first["alert_id"], second["alert_id"]]
    assert [(r["status"], r["attempts"]) for r in records] == [("delivered", 5), ("delivered", 1)]
    assert records[0]["error"] == "webhook answered HTTP 503"


def test_a_webhook_that_never_recovers_is_recorded_failed_after_the_last_attempt() -> None:
    """Given a receiver answering 500 to everything and 3 attempts allowed, when an alert is
    sent, then it is tried 3 times and recorded failed with the error; a 404 is not retried."""
    with webhook_receiver() as (url, hooks):
        hooks.fail_next(100, status=500)
        config = {
            "recipients": [{"id": "erp", "webhook_url": url}],
            "rules": [{"name": "all", "recipients": ["erp"]}],
            "retry": {**FAST_RETRY, "max_attempts": 3},
        }
        [record] = _run(config, load(), lambda n: n.handle(_alert("drift", "x"), now_ms()))
        assert (record["status"], record["attempts"]) == ("failed", 3)
        assert record["error"] == "webhook answered HTTP 500" and hooks.requests == 3
        hooks.fail_next(1, status=404)
        [record] = _run(config, load(), lambda n: n.handle(_alert("drift", "y"), now_ms()))
    assert (record["status"], record["attempts"]) == ("failed", 1)
    assert hooks.accepted == []
