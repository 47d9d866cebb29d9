"""Proposal records → purchase_orders / purchase_order_lines rows; the replenish plan output."""

from __future__ import annotations

import copy
import csv
import io
import json
from datetime import date
from typing import Any

import pytest

from streams.kernel.topics import REPLENISHMENT_PROPOSALS, SINK_TOPICS
from streams.purchasing.command import as_csv, as_json, as_table
from streams.sink.order_rows import order_key, table_rows
from streams.sink.purchase_rows import PROPOSAL, PURCHASE_ORDER_LINES, PURCHASE_ORDERS
from streams.sink.rows import RowError
from tests.unit.schema_samples import SAMPLES


def sample() -> dict[str, Any]:
    return copy.deepcopy(SAMPLES[PROPOSAL])


def test_a_proposal_becomes_one_order_row_and_one_row_per_line() -> None:
    """Given the sample Proposal (version 2, one line of 24 chairs, expected day 20427)
    When mapped at partition 1 offset 7
    Then purchase_orders gets its head with the day as a date and the actor, and
    purchase_order_lines one row with the line's figures, both keyed by id and version."""
    (orders, [head]), (lines, [line]) = table_rows(PROPOSAL, sample(), 1, 7)
    assert (orders, lines) == (PURCHASE_ORDERS, PURCHASE_ORDER_LINES)
    got = dict(zip(PURCHASE_ORDERS.columns, head, strict=True))
    assert got["proposal_id"] == "PO-acme-paris-wh-20261130-1" and got["version"] == 2
    assert (got["status"], got["lines"], got["units"], got["total"]) == ("sent", 1, 24, 48000)
    assert got["expected_on"] == date(2025, 12, 5) and got["actor"] == "auto"
    assert (got["auto"], got["kafka_partition"], got["kafka_offset"]) == (1, 1, 7)
    row = dict(zip(PURCHASE_ORDER_LINES.columns, line, strict=True))
    assert (row["sku"], row["qty"], row["pack_size"], row["unit_cost"]) == ("chair", 24, 6, 2000)
    assert (row["status"], row["supplier"], row["currency"]) == ("sent", "acme", "EUR")
    assert row["last_order_qty"] == 18 and row["forecast_lead_time"] == 7.2
    assert order_key(sample()) == "PO-acme-paris-wh-20261130-1@2"


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"version": 0}, "version must be between 1"),
        ({"proposal_id": ""}, "proposal_id must be a non-empty string"),
        ({"expected_on": -3}, "expected_on must be a day"),
        ({"lines": "chair"}, "lines must be a list"),
        ({"created_at": -1}, "created_at"),
    ],
)
def test_a_record_clickhouse_would_refuse_is_a_row_error(change: dict[str, Any], says: str) -> None:
    """Given a Proposal with one bad field / When mapped / Then RowError (a dead letter)."""
    record = sample() | change
    with pytest.raises(RowError, match=says):
        table_rows(PROPOSAL, record, 0, 0)


def test_two_lines_of_one_sku_are_refused() -> None:
    """Given a Proposal listing chair twice / When mapped / Then RowError."""
    record = sample()
    record["lines"] = record["lines"] * 2
    with pytest.raises(RowError, match="two lines"):
        table_rows(PROPOSAL, record, 0, 0)


def test_the_sink_reads_the_proposals_topic() -> None:
    """Given the topic registry / Then the sink's topics include replenishment.proposals.v1."""
    assert REPLENISHMENT_PROPOSALS in SINK_TOPICS


def proposal() -> dict[str, Any]:
    record = sample()
    record.update(status="proposed", version=1, auto=False, review_reason="auto-send is off")
    return record


def test_the_plan_prints_as_a_table_json_and_csv() -> None:
    """Given one proposal
    When rendered
    Then the table shows the header with total, day and review reason and a row per line
    with packs and reason; JSON carries ISO days; CSV one row per line with its total."""
    table = as_table([proposal()])
    assert "PO-acme-paris-wh-20261130-1  supplier acme -> paris-wh  total 480.00 EUR" in table
    assert "expected 2025-12-05  review: auto-send is off" in table
    assert "4x6" in table and "projected 3 - 7.2 over 5 days" in table
    [record] = json.loads(as_json([proposal()]))
    assert record["expected_on"] == "2025-12-05"
    assert record["created_at"] == "2026-11-23T08:00:00.000+00:00"
    [row] = list(csv.DictReader(io.StringIO(as_csv([proposal()]))))
    assert (row["sku"], row["qty"], row["line_total"], row["auto"]) == (
        "chair",
        "24",
        "48000",
        "False",
    )
    assert "No proposals" in as_table([])
