"""``stockflow pos import FILE --store S``: a till's end-of-day CSV, the fallback for tills
that cannot call ``POST /v1/pos/changes``.

The file has a header row; columns (``;`` or ``,`` separated, any order): ``id``, ``sku``,
``qty``, ``occurred_at`` (ISO 8601 with a zone, or epoch ms), and optionally ``type`` (sale,
the default, or return, count, adjustment, transfer), ``receipt``, ``reason``,
``disposition``, ``to_location``. Each row is checked by the API's rules
(:mod:`streams.worker.pos`); its event id is ``pos.{store}.{id}``, the id the till's API call
used for the same change, so a sale sent by both routes, or a file imported twice, counts
once. A row without ``id`` is named by the file's content hash and its line number.

A bad row is reported with its line number and reasons, and dead-lettered (component
``pos-import``, the line as the original bytes); the good rows around it are applied.
Exit status: 0 every row sent, 2 some rows refused (the others sent), 1 the file unreadable
or Kafka not acknowledging.
"""

from __future__ import annotations

import csv
import hashlib
import io
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from schemas.codec import Codec, CodecError, codec_for
from schemas.times import now_ms
from streams.bundles.catalogue import Catalogue, load_catalogue
from streams.bundles.expand import BUNDLE_NOT_STOCKED, EXPANDED, expand_event
from streams.kernel.deadletter import dead_letter
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_DEADLETTER, STOCK_EVENTS
from streams.worker import metrics
from streams.worker.pos import ChangeResult, check_token, parse_change

COMPONENT = "pos-import"
REQUIRED = ("sku", "qty", "occurred_at")
OPTIONAL = ("id", "type", "receipt", "reason", "disposition", "to_location")
PROGRESS_EVERY = 1.0  # seconds between progress lines
SHOWN_ERRORS = 20  # bad rows printed one by one; the rest counted


class UnreadableFileError(ValueError):
    """A file that cannot be imported at all (missing, not UTF-8, no header, a required
    column missing); nothing of it is sent."""


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    text: str
    result: ChangeResult


@dataclass(slots=True)
class Summary:
    rows: int = 0
    sent: int = 0
    refused: list[Row] = field(default_factory=list)
    failed: int = 0  # not acknowledged by Kafka


def read_rows(text: str, *, store: str, source: str, received_ms: int) -> Iterator[Row]:
    """Every data row of a till CSV as a StockEvent or its errors, with its line number."""
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise UnreadableFileError(
            "the file is empty: expected a header row (sku;qty;occurred_at...)"
        )
    delimiter = ";" if lines[0].count(";") >= lines[0].count(",") else ","
    header = [h.strip().lower() for h in next(csv.reader([lines[0]], delimiter=delimiter))]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise UnreadableFileError(
            f"header: missing column(s) {', '.join(missing)}; found {', '.join(header)}"
        )
    unknown = [h for h in header if h not in REQUIRED + OPTIONAL]
    if unknown:
        raise UnreadableFileError(f"header: unknown column(s) {', '.join(unknown)}")
    file_key = "csv-" + hashlib.sha256(text.encode()).hexdigest()[:16]
    for line_no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = next(csv.reader([line], delimiter=delimiter))
        if len(cells) != len(header):
            errors = (f"{len(cells)} cells for {len(header)} columns",)
            yield Row(line_no, line, ChangeResult(line_no, None, errors))
            continue
        change: dict[str, Any] = {
            name: cell.strip() for name, cell in zip(header, cells, strict=True) if cell.strip()
        }
        change.setdefault("type", "sale")
        yield Row(line_no, line, _parse(change, line_no, store, file_key, source, received_ms))


def _parse(
    change: dict[str, Any], line: int, store: str, file_key: str, source: str, received_ms: int
) -> ChangeResult:
    errors = []
    for name in ("qty", "occurred_at"):
        value = change.get(name)
        if isinstance(value, str) and value.lstrip("-").isdigit():
            change[name] = int(value)
        elif name == "qty" and value is not None:
            errors.append(f"qty: {value!r} is not an integer")
            del change[name]
    if errors:
        return ChangeResult(line, None, tuple(errors))
    return parse_change(
        change, index=line, store=store, key=file_key, source=source, received_ms=received_ms
    )


def run_import(
    settings: Settings,
    path: Path,
    store: str,
    *,
    source: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Import one till CSV for ``store``; prints progress on ``err`` and the summary on
    ``out`` (default: the process's streams as they are when called). Returns the exit
    status (see the module's docstring)."""
    out = out or sys.stdout
    err = err or sys.stderr
    from confluent_kafka import KafkaError, Message, Producer

    from streams.kernel.kafka_config import producer_config
    from streams.kernel.produce import produce

    problem = check_token(store, "--store")
    if problem:
        print(f"error: {problem}", file=err)
        return 1
    try:
        text = path.read_text(encoding="utf-8-sig")
        rows = list(
            read_rows(text, store=store, source=source or f"pos:{store}", received_ms=now_ms())
        )
    except (OSError, UnicodeDecodeError, UnreadableFileError, csv.Error) as exc:
        print(f"error: {path}: {exc}", file=err)
        return 1
    try:
        codec: Codec = codec_for(settings)
    except CodecError as exc:
        print(f"error: schema registry: {exc}", file=err)
        return 1
    bundles = load_catalogue(settings.config_path or None)
    rows = [_unstocked_refused(row, bundles) for row in rows]
    producer = Producer(producer_config(settings, **{"client.id": "stockflow-pos-import"}))
    summary = Summary(rows=len(rows))

    def delivered(error: KafkaError | None, _msg: Message) -> None:
        if error is not None:
            summary.failed += 1

    started = last = time.monotonic()
    for n, row in enumerate(rows, 1):
        event = row.result.event
        if event is not None:
            for part in expand_event(event, bundles):  # a bundle's sale: its components'
                value = codec.encode(STOCK_EVENTS.value_schema, part)
                produce(
                    producer, STOCK_EVENTS.name, part["sku"].encode(), value, on_delivery=delivered
                )
            summary.sent += 1
        else:
            summary.refused.append(row)
            record = dead_letter(
                metrics.DEAD_LETTERS,
                component=COMPONENT,
                reason="invalid_row",
                error=f"{path.name} line {row.line} (store {store}): "
                + "; ".join(row.result.errors),
                original=row.text.encode(),
            )
            value = codec.encode(STOCK_DEADLETTER.value_schema, record)
            produce(producer, STOCK_DEADLETTER.name, None, value, on_delivery=delivered)
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY:
            last = now
            producer.poll(0)
            print(f"  {n}/{len(rows)} rows ({n / (now - started):.0f}/s)", file=err)
    summary.failed += producer.flush(60)
    _print_summary(summary, path, store, time.monotonic() - started, out)
    if summary.failed:
        return 1
    return 2 if summary.refused else 0


def _unstocked_refused(row: Row, bundles: Catalogue) -> Row:
    """``row`` refused when it counts, receives or adjusts a bundle SKU (never stocked)."""
    event = row.result.event
    if event is None or not bundles.get(event["sku"]) or event["type"] in EXPANDED:
        return row
    error = f"{event['type']} for bundle {event['sku']!r}: {BUNDLE_NOT_STOCKED}"
    return replace(row, result=ChangeResult(row.result.index, None, (error,)))


def _print_summary(summary: Summary, path: Path, store: str, took: float, out: TextIO) -> None:
    buffer = io.StringIO()
    for row in summary.refused[:SHOWN_ERRORS]:
        print(f"line {row.line}: {'; '.join(row.result.errors)}", file=buffer)
    more = len(summary.refused) - SHOWN_ERRORS
    if more > 0:
        print(f"... and {more} more bad rows (see stockflow deadletters list)", file=buffer)
    print(buffer.getvalue(), end="", file=out)
    print(
        f"{path.name} for store {store}: {summary.rows} rows, {summary.sent} sent, "
        f"{len(summary.refused)} refused (dead-lettered), {summary.failed} not acknowledged "
        f"by Kafka, in {took:.1f} s",
        file=out,
    )
