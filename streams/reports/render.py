"""Print a report as an aligned text table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from streams.reports.queries import Report, as_records, cell

FORMATS = ("table", "csv", "json")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(cell(value))


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def as_table(report: Report) -> str:
    """Columns padded to their widest cell, numbers right-aligned, a rule under the header."""
    cells = [[_text(v) for v in row] for row in report.rows]
    widths = [len(c) for c in report.columns]
    for row in cells:
        widths = [max(w, len(v)) for w, v in zip(widths, row, strict=True)]
    right = [
        bool(report.rows) and all(_numeric(r[i]) or r[i] is None for r in report.rows)
        for i in range(len(report.columns))
    ]

    def line(values: list[str]) -> str:
        parts = [
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [report.title, line(list(report.columns)), line(["-" * w for w in widths])]
    out += [line(row) for row in cells]
    if not report.rows:
        out.append("(no data for this period)")
    return "\n".join(out) + "\n"


def as_csv(report: Report) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(report.columns)
    for row in report.rows:
        writer.writerow(["" if v is None else cell(v) for v in row])
    return buf.getvalue()


def as_json(report: Report) -> str:
    return json.dumps(as_records(report), indent=2) + "\n"


def render(report: Report, fmt: str) -> str:
    if fmt == "table":
        return as_table(report)
    if fmt == "csv":
        return as_csv(report)
    if fmt == "json":
        return as_json(report)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
