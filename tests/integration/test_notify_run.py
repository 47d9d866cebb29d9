"""`notify run` on the real stack: alerts on stock.alerts.v1 → email at a local SMTP server,
POSTs at a local webhook receiver, delivery records on notifications.deliveries.v1 → the sink
→ ClickHouse's alert_deliveries; a restart that reads the alerts again sends nothing twice."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.codec import codec_for
from schemas.times import now_ms
from streams.kernel.settings import Settings
from streams.kernel.topics import SINK_TOPICS, STOCK_ALERTS
from streams.notifications.config import NotificationsConfig, parse_notifications
from streams.notifications.page import recent_page_alerts
from streams.notifications.run import NotifyRunner
from tests.integration.sink_support import (
    drop_database,
    end_offsets,
    produce,
    running_sink,
    scalar,
    set_group_offsets,
    sink_settings,
)
from tests.support.inboxes import smtp_server, webhook_receiver
from tests.support.processes import track

pytestmark = pytest.mark.integration


@contextmanager
def running_notifier(
    settings: Settings, config: NotificationsConfig, group: str
) -> Iterator[NotifyRunner]:
    """`notify run`'s runner in a thread with its own loop; stopped like SIGTERM on exit."""
    runner = NotifyRunner(settings, config, group=group)
    loop = asyncio.new_event_loop()
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(loop.run_until_complete(runner.run())), daemon=True
    )
    thread.start()
    try:
        yield runner
    finally:
        loop.call_soon_threadsafe(runner.stop.set)
        thread.join(60)
        loop.close()
    assert not thread.is_alive(), "notifier did not stop within 60 s"
    assert result == [0], f"notifier exit code {result}"


def _alert(kind: str, sku: str) -> dict[str, Any]:
    at = now_ms()
    return {
        "alert_id": f"ev-{uuid.uuid4().hex[:8]}|{kind}|paris-wh",
        "kind": kind,
        "sku": sku,
        "location": "paris-wh",
        "channel": None,
        "value": 2,
        "threshold": 5,
        "message": f"{sku} at paris-wh: {kind}",
        "event_id": None,
        "at": at,
    }


def _wait(what: str, check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_alerts_reach_people_and_alert_deliveries_and_a_restart_does_not_send_them_again(
    local_stack: Settings, unique_name: str, tmp_path: Path
) -> None:
    """Given a rule sending two test SKUs' alerts to an email, a webhook and the page, another
    putting them in an hourly digest, a sink into its own database, and low_stock(a),
    out_of_stock(b), low_stock(a) again on the alerts topic (and a record that is no alert),
    when `notify run` follows the topic, then two emails and two POSTs arrive (the repeat is
    suppressed, the bad record dead-lettered) and alert_deliveries holds 6 delivered, 4
    suppressed and 2 digested rows, 2 delivered to the page (recent_page_alerts). When the
    group's offsets are put back before the alerts (a crash before the commit) and
    `stockflow notify run` starts again, then it finds the digest still pending, reading the
    alerts again sends nothing, a new back_in_stock(a) is sent once (and digested), and
    SIGTERM stops it with exit code 0."""
    settings = sink_settings(local_stack, unique_name)
    db = settings.clickhouse_database
    group, sink_group = f"notify-{unique_name}", f"sink-{unique_name}"
    a, b = f"nt-{uuid.uuid4().hex[:8]}", f"nt-{uuid.uuid4().hex[:8]}"
    start = end_offsets(settings, [STOCK_ALERTS])
    set_group_offsets(settings, group, start)
    set_group_offsets(settings, sink_group, end_offsets(settings, SINK_TOPICS))
    codec = codec_for(settings)
    with smtp_server() as (smtp_port, inbox), webhook_receiver() as (url, hooks):
        settings = dataclasses.replace(settings, smtp_host="127.0.0.1", smtp_port=smtp_port)
        raw_config = {
            "recipients": [
                {"id": "ops", "email": "ops@example.com"},
                {"id": "erp", "webhook_url": url},
                {"id": "board", "page": True},
                {"id": "buyers", "email": "buyers@example.com"},
            ],
            "rules": [
                {"name": "tests", "skus": [a, b], "recipients": ["ops", "erp", "board"]},
                {"name": "hourly", "skus": [a, b], "recipients": ["buyers"], "mode": "digest"},
            ],
        }
        config = parse_notifications(raw_config)
        alerts = [_alert("low_stock", a), _alert("out_of_stock", b), _alert("low_stock", a)]
        poison = [(STOCK_ALERTS, a.encode(), b"not an alert")]  # dead-lettered, never blocks
        produce(settings, codec, [(STOCK_ALERTS, x) for x in alerts], raw=poison)

        def rows(status: str) -> int:
            query = f"SELECT uniqExact(delivery_id) FROM {db}.alert_deliveries WHERE status = %(s)s"
            return int(scalar(settings, query, {"s": status}))

        try:
            with running_sink(settings, codec, sink_group):
                with running_notifier(settings, config, group):
                    _wait(
                        "emails, posts",
                        lambda: (len(inbox.messages), len(hooks.accepted)) == (2, 2),
                    )
                    _wait(
                        "rows",
                        lambda: (
                            (rows("delivered"), rows("suppressed_duplicate"), rows("digested"))
                            == (6, 4, 2)
                        ),
                    )
                    page = recent_page_alerts(10, settings=settings)
                assert {(p["sku"], p["kind"], p["recipient"]) for p in page} == {
                    (a, "low_stock", "board"),
                    (b, "out_of_stock", "board"),
                }
                print(f"\n[notify] first run: {len(inbox.messages)} emails, {hooks.requests} posts")

                set_group_offsets(settings, group, start)  # as if it crashed before committing
                # the restart is the real command, stopped like a service manager stops it
                config_file = tmp_path / "stockflow.yaml"
                config_file.write_text(yaml.safe_dump({"notifications": raw_config}))
                log_file = tmp_path / "notify.log"
                env = os.environ | {
                    "STOCKFLOW_CONFIG": str(config_file),
                    "STOCKFLOW_SMTP_HOST": "127.0.0.1",
                    "STOCKFLOW_SMTP_PORT": str(smtp_port),
                }
                with log_file.open("wb") as log:
                    command = [sys.executable, "-m", "streams.cli", "notify", "run"]
                    proc = track(
                        subprocess.Popen([*command, "--group", group], env=env, stderr=log)
                    )
                    produce(settings, codec, [(STOCK_ALERTS, _alert("back_in_stock", a))])
                    _wait("the back_in_stock email", lambda: len(inbox.messages) == 3)
                    _wait("its rows", lambda: rows("delivered") == 9)
                    time.sleep(1.0)  # a resend, if any, would arrive now
                    proc.send_signal(signal.SIGTERM)
                    assert proc.wait(30) == 0
                text = log_file.read_text()
                assert "0 held, 1 digests pending" in text, text  # buyers' digest, from Kafka
                assert "notify: stopped; 4 alerts" in text, text
                assert "delivered 3, digested 1; 12 already recorded before a restart" in text, text
                assert "dead-lettered" in text  # the poison record, read again: skipped again
        finally:
            drop_database(settings)
    # a and b may sit on two partitions: the first two emails come in either order
    assert sorted(m["Subject"] for m in inbox.messages) == [
        f"[stockflow] Back in stock: {a} at paris-wh",
        f"[stockflow] Low stock: {a} at paris-wh",
        f"[stockflow] Out of stock: {b} at paris-wh",
    ]
    assert len(inbox.messages) == 3 and hooks.requests == 3 and len(hooks.accepted) == 3
    print(f"[notify] after the restart: {len(inbox.messages)} emails, {hooks.requests} posts")
