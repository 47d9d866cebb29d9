"""AlertDelivery records → rows of ``alert_deliveries`` (the sink's mapper)."""

from __future__ import annotations

import pytest

from streams.kernel.topics import NOTIFICATION_DELIVERIES, SINK_TOPICS, Writer
from streams.sink.delivery_rows import ALERT_DELIVERIES, ALERT_DELIVERY
from streams.sink.order_rows import table_rows
from streams.sink.rows import RowError
from streams.warehouse.schema import MIGRATIONS
from tests.unit.schema_samples import SAMPLES


def test_a_delivery_record_becomes_one_row_with_the_recipient_id_and_both_times() -> None:
    """Given the sample AlertDelivery read at partition 2 offset 9, when mapped, then it is one
    alert_deliveries row with its columns in the table's order, times in s and ms, and the
    record's time as the row version."""
    sample = SAMPLES[ALERT_DELIVERY]
    [(table, [row])] = table_rows(ALERT_DELIVERY, sample, 2, 9)
    assert table is ALERT_DELIVERIES
    values = dict(zip(table.columns, row, strict=True))
    assert values["recipient"] == "ops" and values["status"] == "delivered"
    assert values["attempts"] == 2 and values["error"] == "503 Service Unavailable"
    assert values["alert_at"] == sample["alert_at"] // 1000
    assert values["at_ms"] == values["ver"] == sample["at"]
    assert (values["kafka_partition"], values["kafka_offset"]) == (2, 9)


def test_a_delivery_record_without_a_recipient_is_refused_for_the_dead_letter_topic() -> None:
    """Given a delivery record whose recipient is empty, when mapped, then a RowError says so."""
    with pytest.raises(RowError, match="recipient"):
        table_rows(ALERT_DELIVERY, {**SAMPLES[ALERT_DELIVERY], "recipient": ""}, 0, 0)


def test_the_deliveries_topic_is_written_by_the_notifier_and_stored_by_migration_7() -> None:
    """Given the topic registry and the migrations, then notifications.deliveries.v1 is the
    notifier's, the sink reads it, and migration 7 creates alert_deliveries."""
    assert NOTIFICATION_DELIVERIES.writer is Writer.NOTIFIER
    assert NOTIFICATION_DELIVERIES in SINK_TOPICS
    [seven] = [m for m in MIGRATIONS if m.version == 7]
    assert "alert_deliveries" in seven.statements[0]
