"""Rendering reports as table, CSV and JSON, and rejecting bad requests."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime

import pytest

from streams.kernel.settings import Settings
from streams.reports import run_report
from streams.reports.period import ReportError, period
from streams.reports.queries import Report
from streams.reports.render import render

REPORT = Report(
    "Best sellers",
    ("rank", "sku", "units", "share"),
    [(1, "chair", 120, 66.667), (2, "table-large", 7, None)],
)


def test_a_table_aligns_text_left_and_numbers_right_under_a_header_rule() -> None:
    """Given a report with text, integers, floats and a missing value, when rendered as a
    table, then the title, header, rule and rows line up, numbers right-aligned."""
    text = render(REPORT, "table")
    assert text == (
        "Best sellers\n"
        "rank  sku          units  share\n"
        "----  -----------  -----  -----\n"
        "   1  chair          120  66.67\n"
        "   2  table-large      7\n"
    )


def test_an_empty_table_says_there_is_no_data() -> None:
    """Given a report without rows, when rendered as a table, then it says so."""
    assert "(no data for this period)" in render(Report("X", ("a",), []), "table")


def test_csv_and_json_carry_the_same_rows_with_dates_as_iso() -> None:
    """Given a report with a date column, when rendered as CSV and JSON, then both parse back
    to the same values, dates ISO, missing values empty (CSV) or null (JSON)."""
    report = Report(
        "Trend",
        ("day", "sku", "units", "change"),
        [(date(2026, 11, 1), "chair", 3, None), (date(2026, 11, 2), "chair", 5, 2)],
    )
    rows = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    assert rows[0] == {"day": "2026-11-01", "sku": "chair", "units": "3", "change": ""}
    doc = json.loads(render(report, "json"))
    assert doc[1] == {"day": "2026-11-02", "sku": "chair", "units": 5, "change": 2}
    assert doc[0]["change"] is None


def test_a_period_defaults_to_thirty_days_up_to_now_and_reads_dates_as_utc() -> None:
    """Given no --since and an --until date, when parsed, then the period is the 30 days up
    to midnight UTC of that date."""
    p = period(None, "2026-11-30")
    end = datetime(2026, 11, 30, tzinfo=UTC)
    assert p.until_ms == int(end.timestamp() * 1000)
    assert p.days == 30


@pytest.mark.parametrize(
    ("since", "until"), [("yesterday", None), ("2026-11-30", "2026-11-01"), ("2026-13-01", None)]
)
def test_bad_dates_are_refused_with_the_option_named(since: str, until: str | None) -> None:
    """Given an unreadable date or a period ending before it starts, when parsed, then
    ReportError names the option to fix."""
    with pytest.raises(ReportError, match="--since"):
        period(since, until)


@pytest.mark.parametrize(
    ("name", "fmt", "args", "message"),
    [
        ("stock-outs", "table", {}, "unknown report 'stock-outs'; choose one of turnover"),
        ("turnover", "xml", {}, "unknown format 'xml'"),
        ("turnover", "table", {"since": "last week"}, "--since 'last week' is not a date"),
        ("turnover", "table", {"limit": "0"}, "--limit must be at least 1"),
    ],
)
def test_a_bad_report_request_exits_2_with_a_clear_message(
    name: str,
    fmt: str,
    args: dict[str, str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Given an unknown report name, format, a bad date or limit, when the report runs, then
    it exits 2 before touching ClickHouse and stderr says what to change."""
    out = io.StringIO()
    assert run_report(Settings(clickhouse_port=1), name, fmt, args, out=out) == 2
    assert message in capsys.readouterr().err
    assert out.getvalue() == ""
