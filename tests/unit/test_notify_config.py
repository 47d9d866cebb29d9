"""The `notifications:` section: recipients, rules, quiet hours, digests and retries, with
errors that name the key path."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Any

import pytest

from streams.notifications.config import (
    NotificationsConfigError,
    load_notifications,
    parse_notifications,
)


def _base() -> dict[str, Any]:
    return {
        "recipients": [
            {
                "id": "ops",
                "email": "ops@example.com",
                "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Paris"},
            },
            {"id": "chat", "webhook_url": "https://hooks.example.com/T1/B2", "slack": True},
            {"id": "page", "page": True},
        ],
        "rules": [
            {
                "name": "stock-outs",
                "kinds": ["out_of_stock", "oversell_attempt"],
                "locations": ["paris-wh"],
                "recipients": ["ops", "chat", "page"],
            },
            {"name": "daily", "min_severity": "warning", "recipients": "ops", "mode": "digest"},
        ],
        "digest_interval": 1800,
        "retry": {"max_attempts": 3, "base_backoff": 0.5},
    }


def test_a_full_section_parses_into_recipients_rules_and_policies() -> None:
    """Given recipients of the three channels, two rules, a digest interval and a retry policy,
    when parsed, then each is kept with its defaults filled in (immediate mode, info minimum,
    60 s backoff cap, severities per kind)."""
    config = parse_notifications(_base())
    assert [r.channel for r in config.recipients.values()] == ["email", "webhook", "page"]
    ops = config.recipients["ops"]
    assert ops.quiet_hours is not None and ops.quiet_hours.start == time(22, 0)
    assert ops.quiet_hours.then == "hold"
    assert config.recipients["chat"].slack is True
    first, second = config.rules
    assert first.kinds == {"out_of_stock", "oversell_attempt"} and first.mode == "immediate"
    assert second.recipients == ("ops",) and second.mode == "digest" and second.kinds is None
    assert config.digest_interval_s == 1800
    assert (config.retry.max_attempts, config.retry.base_backoff) == (3, 0.5)
    assert config.retry.max_backoff == 60
    assert config.severity("out_of_stock") == "critical"
    assert config.severity("back_in_stock") == "info"
    assert "ops@example.com" not in repr(ops)


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (
            lambda c: c["rules"][0].update(kind=["low_stock"]),
            "notifications.rules[0].kind",
            "unknown key",
        ),
        (lambda c: c.update(recipient=[]), "notifications.recipient", "unknown key"),
        (
            lambda c: c["rules"][1].update(recipients=["nobody"]),
            "notifications.rules[1].recipients[0]",
            "no recipient id",
        ),
        (
            lambda c: c["rules"][0].update(kinds=["low"]),
            "notifications.rules[0].kinds[0]",
            "not one of",
        ),
        (
            lambda c: c["rules"][1].update(mode="weekly"),
            "notifications.rules[1].mode",
            "not one of",
        ),
        (
            lambda c: c["recipients"][0].update(webhook_url="https://x"),
            "notifications.recipients[0]",
            "exactly one of",
        ),
        (
            lambda c: c["recipients"][0]["quiet_hours"].update(timezone="Mars/Base"),
            "notifications.recipients[0].quiet_hours.timezone",
            "IANA",
        ),
        (
            lambda c: c["recipients"][0]["quiet_hours"].update(start="25:00"),
            "notifications.recipients[0].quiet_hours.start",
            "HH:MM",
        ),
        (
            lambda c: c["recipients"][1].update(webhook_url="ftp://x"),
            "notifications.recipients[1].webhook_url",
            "http",
        ),
        (lambda c: c["recipients"][2].update(id="ops"), "notifications.recipients[2].id", "twice"),
        (
            lambda c: c["retry"].update(max_attempts=0),
            "notifications.retry.max_attempts",
            "positive",
        ),
        (lambda c: c.update(digest_interval="hourly"), "notifications.digest_interval", "positive"),
        (
            lambda c: c["rules"][0].update(categories=["chairs"]),
            "notifications.categories",
            "no SKU has one",
        ),
        (
            lambda c: c.update(severities={"low_stock": "urgent"}),
            "notifications.severities.low_stock",
            "not one of",
        ),
    ],
)
def test_a_wrong_key_or_value_is_refused_with_its_key_path(
    change: Any, path: str, words: str
) -> None:
    """Given a valid section with one thing wrong (a typo in a key, an unknown recipient, a bad
    time zone, ...), when parsed, then the error names the key path and says what is wrong."""
    raw = _base()
    change(raw)
    with pytest.raises(NotificationsConfigError) as caught:
        parse_notifications(raw)
    assert str(caught.value).startswith(f"{path}:")
    assert words in str(caught.value)


def test_categories_come_from_the_replenishment_section_when_notifications_has_none(
    tmp_path: Path,
) -> None:
    """Given a file whose replenishment section maps categories to SKUs and a rule matching a
    category, when loaded, then the SKUs' categories are the replenishment ones; a
    notifications.categories mapping (sku: category) wins over them."""
    path = tmp_path / "stockflow.yaml"
    path.write_text(
        "locations: [{name: paris-wh}]\n"
        "replenishment:\n  categories: {furniture: [chair, desk]}\n"
        "notifications:\n"
        "  recipients: [{id: ops, email: ops@example.com}]\n"
        "  rules: [{name: furniture, categories: furniture, recipients: [ops]}]\n",
        encoding="utf-8",
    )
    config = load_notifications(path)
    assert config.categories == {"chair": "furniture", "desk": "furniture"}
    raw = _base() | {"categories": {"chair": "seating"}}
    assert parse_notifications(raw, replenishment={"categories": {"x": ["chair"]}}).categories == {
        "chair": "seating"
    }


def test_no_section_means_nobody_is_told() -> None:
    """Given no notifications section, when parsed, then there are no rules and no recipients."""
    config = parse_notifications(None)
    assert config.rules == () and config.recipients == {}


def test_notify_run_refuses_to_start_on_a_bad_section_naming_the_key_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a configuration file whose rule names an unknown recipient, when `stockflow
    notify run` starts, then it exits 2 before touching Kafka, the message naming the key."""
    from streams.cli import main

    path = tmp_path / "stockflow.yaml"
    path.write_text(
        "notifications:\n  recipients: [{id: ops, page: true}]\n"
        "  rules: [{name: r, recipients: [nobody]}]\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("STOCKFLOW_CONFIG", str(path))
    assert main(["notify", "run"]) == 2
    assert "notifications.rules[0].recipients[0]: 'nobody' is no recipient id" in (
        capsys.readouterr().err
    )
