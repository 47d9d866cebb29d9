"""``stockflow replenish plan``: print the proposals a plan would make now (read-only).

``--format table`` (default): one block per proposal (supplier x location) with its total,
expected day and whether it would go out automatically, then one row per line with the
reason. ``json``: the Proposal records, days and times in ISO 8601. ``csv``: one row per line
with its proposal's figures. Exit 0; 1 when the configuration is wrong or ClickHouse does not
answer (the message says which and how to fix it).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO

from streams.kernel.settings import Settings
from streams.replenishment.plan import money

FORMATS = ("table", "json", "csv")
FAILED = 1
EPOCH = date(1970, 1, 1)

CSV_COLUMNS = (
    "proposal_id", "supplier", "location", "currency", "expected_on", "auto", "review_reason",
    "sku", "supplier_sku", "qty", "pack_size", "moq", "unit_cost", "line_total", "policy",
    "available", "incoming", "projected_available", "forecast_lead_time", "safety_stock",
    "forecast_method", "last_order_qty", "reason",
)  # fmt: skip


def _day(days: int | None) -> str | None:
    return None if days is None else (EPOCH + timedelta(days=days)).isoformat()


def _moment(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def as_json(proposals: list[dict[str, Any]]) -> str:
    out = [
        {
            **p,
            "expected_on": _day(p["expected_on"]),
            "created_at": _moment(p["created_at"]),
            "updated_at": _moment(p["updated_at"]),
        }
        for p in proposals
    ]
    return json.dumps(out, indent=2) + "\n"


def as_csv(proposals: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for p in proposals:
        for line in p["lines"]:
            row = {
                **p,
                **line,
                "expected_on": _day(p["expected_on"]),
                "line_total": line["qty"] * line["unit_cost"],
            }
            writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
    return buf.getvalue()


def _aligned(rows: list[list[str]], right: Collection[int]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            v.rjust(w) if i in right else v.ljust(w)
            for i, (v, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def as_table(proposals: list[dict[str, Any]]) -> str:
    if not proposals:
        return "No proposals: no SKU with a supplier item needs ordering now.\n"
    out: list[str] = []
    for p in proposals:
        cur = p["currency"]
        sending = "auto-send" if p["auto"] else f"review: {p['review_reason']}"
        out.append(
            f"{p['proposal_id']}  supplier {p['supplier']} -> {p['location']}"
            f"  total {money(p['total'], cur)}  expected {_day(p['expected_on'])}  {sending}"
        )
        rows = [["sku", "supplier_sku", "qty", "packs", "unit", "policy", "reason"]]
        for line in p["lines"]:
            rows.append(
                [
                    line["sku"],
                    line["supplier_sku"],
                    str(line["qty"]),
                    f"{line['qty'] // line['pack_size']}x{line['pack_size']}",
                    money(line["unit_cost"], cur),
                    line["policy"],
                    line["reason"],
                ]
            )
        out += ["  " + r for r in _aligned(rows, right={2, 3, 4})]
        out.append("")
    return "\n".join(out)


RENDER = {"table": as_table, "json": as_json, "csv": as_csv}


def run_plan(
    settings: Settings,
    *,
    location: str | None = None,
    fmt: str = "table",
    today: date | None = None,
    out: TextIO | None = None,
) -> int:
    """Print the proposals of a plan made now (``today``: plan as of that day)."""
    from streams.ledger.config import ConfigError
    from streams.purchasing.planning import compute_proposals
    from streams.replenishment.config import ReplenishmentConfigError, load_replenishment
    from streams.warehouse.clickhouse import first_line, is_unavailable

    out = out or sys.stdout
    if fmt not in RENDER:
        return _fail(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    try:
        config = load_replenishment(settings.config_path or None)
    except ReplenishmentConfigError as exc:
        return _fail(f"{exc} (fix the file of STOCKFLOW_CONFIG)")
    if not config.items:
        return _fail(
            "no supplier items: add a `replenishment:` section with suppliers and items to the"
            f" file of STOCKFLOW_CONFIG ({settings.config_path or 'not set'})"
        )
    try:
        proposals = compute_proposals(
            settings,
            config,
            today=today or datetime.now(UTC).date(),
            locations=None if location is None else {location},
        )
    except ConfigError as exc:
        return _fail(f"{exc} (fix the file of STOCKFLOW_CONFIG)")
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        where = f"{settings.clickhouse_host}:{settings.clickhouse_port}"
        return _fail(
            f"ClickHouse at {where} is not answering ({first_line(exc)}); start it with"
            " `stockflow stack up` or set STOCKFLOW_CLICKHOUSE_HOST/_PORT"
        )
    out.write(RENDER[fmt](proposals))
    return 0


def _fail(message: str) -> int:
    print(f"stockflow replenish plan: {message}", file=sys.stderr)
    return FAILED
