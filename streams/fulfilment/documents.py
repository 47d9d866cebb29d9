"""Warehouse documents of a wave as PDF (reportlab): pick list, wave summary, delivery note.

Pure functions from a :class:`~streams.fulfilment.model.Wave` to bytes; the same wave gives
the same bytes (every date printed comes from the wave, none from the clock). Each document
carries Code 128 barcodes: the wave id on the pick list and the summary, the order number on
every order's row and on the delivery note, and the tracking number on the delivery note
once the carrier gave one. No personal data: the destination is a country and postal code
(the channel prints the address label; the carrier's label is its own document).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from streams.fulfilment.model import Wave, WaveOrder
from streams.fulfilment.planner import pick_list

__all__ = ["delivery_note_pdf", "pick_list_pdf", "wave_summary_pdf"]

_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


def _fonts() -> tuple[str, str]:
    if "FulfilmentSans" in pdfmetrics.getRegisteredFontNames():
        return "FulfilmentSans", "FulfilmentSans-Bold"
    regular, bold = _DEJAVU / "DejaVuSans.ttf", _DEJAVU / "DejaVuSans-Bold.ttf"
    if regular.is_file() and bold.is_file():
        pdfmetrics.registerFont(TTFont("FulfilmentSans", str(regular)))
        pdfmetrics.registerFont(TTFont("FulfilmentSans-Bold", str(bold)))
        return "FulfilmentSans", "FulfilmentSans-Bold"
    return "Helvetica", "Helvetica-Bold"


class _Styles:
    def __init__(self) -> None:
        self.regular, self.bold = _fonts()
        base = getSampleStyleSheet()["Normal"]
        self.body = ParagraphStyle("f-body", parent=base, fontName=self.regular, fontSize=9.5)
        self.title = ParagraphStyle(
            "f-title", parent=self.body, fontName=self.bold, fontSize=16, leading=20
        )

    def cell(self, text: object) -> Paragraph:
        return Paragraph(escape(str(text)), self.body)


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _barcode(value: str, height_mm: float = 12, bar_mm: float = 0.28) -> Code128:
    return Code128(value, barHeight=height_mm * mm, barWidth=bar_mm * mm, humanReadable=False)


def _facts(st: _Styles, rows: Sequence[tuple[str, str]]) -> Table:
    table = Table(
        [[st.cell(k), st.cell(v)] for k, v in rows], colWidths=[35 * mm, 135 * mm], hAlign="LEFT"
    )
    table.setStyle(TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    return table


def _grid(st: _Styles, rows: list[Sequence[object]], widths: Sequence[float]) -> Table:
    table = Table(rows, colWidths=[w * mm for w in widths], repeatRows=1, hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), st.regular),
                ("FONTSIZE", (0, 0), (-1, -1), 9.5),
                ("FONTNAME", (0, 0), (-1, 0), st.bold),
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f2f2f2")]),
            ]
        )
    )
    return table


def _pdf(title: str, story: list[Flowable]) -> bytes:
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=title,
        creator="stockflow",
        invariant=True,  # no creation time or random id: the same wave gives the same bytes
    )
    doc.build(story)
    return out.getvalue()


def _wave_facts(wave: Wave) -> list[tuple[str, str]]:
    return [
        ("Location", wave.location),
        (
            "Carrier",
            f"{wave.carrier or 'any'}" + (f", cut-off {wave.cutoff}" if wave.cutoff else ""),
        ),
        ("Kind", f"{wave.kind}-line orders" + (f", zone {wave.zone}" if wave.zone else "")),
        ("Planned", _when(wave.created_at_ms)),
        ("Orders", f"{len(wave.orders)} ({sum(len(o.lines) for o in wave.orders)} lines)"),
    ]


def pick_list_pdf(wave: Wave) -> bytes:
    """The wave's lines in walking order: bin, SKU, lot, units, order (number and barcode)."""
    st = _Styles()
    rows: list[Sequence[object]] = [("Bin", "SKU", "Lot", "Qty", "Order", "Line", "")]
    for row in pick_list(wave):
        rows.append(
            (
                st.cell(row.bin or "(no bin)"),
                st.cell(row.sku),
                st.cell(row.lot or ""),
                str(row.qty),
                st.cell(row.order_id),
                st.cell(row.line_id),
                _barcode(row.order_id, 7, 0.19),
            )
        )
    story: list[Flowable] = [
        Paragraph(f"Pick list {escape(wave.wave_id)}", st.title),
        _barcode(wave.wave_id),
        Spacer(1, 3 * mm),
        _facts(st, _wave_facts(wave)),
        Spacer(1, 5 * mm),
        _grid(st, rows, [20, 24, 22, 10, 34, 10, 50]),
    ]
    return _pdf(f"Pick list {wave.wave_id}", story)


def wave_summary_pdf(wave: Wave) -> bytes:
    """One row per order: number (and barcode), channel, lines, units, picked, destination."""
    st = _Styles()
    rows: list[Sequence[object]] = [("Order", "Channel", "Lines", "Units", "Picked", "To", "")]
    for order in wave.orders:
        units = sum(line.qty for line in order.lines)
        picked = str(order.picked_units) if order.picked else "-"
        rows.append(
            (
                st.cell(order.order_id),
                st.cell(order.channel + (" (express)" if order.express else "")),
                str(len(order.lines)),
                str(units),
                picked,
                st.cell(" ".join(x for x in (order.country, order.postal_code) if x)),
                _barcode(order.order_id, 7, 0.19),
            )
        )
    facts = [("Status", wave.status.value), *_wave_facts(wave)]
    story: list[Flowable] = [
        Paragraph(f"Wave summary {escape(wave.wave_id)}", st.title),
        _barcode(wave.wave_id),
        Spacer(1, 3 * mm),
        _facts(st, facts),
        Spacer(1, 5 * mm),
        _grid(st, rows, [36, 28, 11, 11, 13, 21, 50]),
    ]
    return _pdf(f"Wave summary {wave.wave_id}", story)


def delivery_note_pdf(
    wave: Wave, order: WaveOrder, *, tracking_number: str | None = None, carrier: str | None = None
) -> bytes:
    """The order's delivery note: order number and barcode, tracking number and barcode
    when known, where it ships from and to (country, postal code), the lines with the units
    ordered and the units in the parcel (the picked ones, once picked)."""
    st = _Styles()
    facts = [
        ("Order", order.order_id),
        ("Channel", order.channel),
        ("Ships from", wave.location),
        ("Ships to", " ".join(x for x in (order.country, order.postal_code) if x) or "-"),
        ("Carrier", carrier or order.carrier or "-"),
        ("Date", _when(wave.updated_at_ms)),
    ]
    if tracking_number:
        facts.insert(5, ("Tracking", tracking_number))
    rows: list[Sequence[object]] = [("Line", "SKU", "Lot", "Ordered", "In this parcel")]
    for line in order.lines:
        sent = line.picked_qty if line.picked_qty is not None else line.qty
        rows.append(
            (st.cell(line.line_id), st.cell(line.sku), st.cell(line.lot or ""), str(line.qty),
             str(sent))
        )  # fmt: skip
    story: list[Flowable] = [
        Paragraph(f"Delivery note {escape(order.order_id)}", st.title),
        _barcode(order.order_id),
        Spacer(1, 3 * mm),
    ]
    if tracking_number:
        story += [
            st.cell(f"Tracking {tracking_number}"),
            _barcode(tracking_number),
            Spacer(1, 3 * mm),
        ]
    missing = sum(line.missing for line in order.lines)
    story += [_facts(st, facts), Spacer(1, 5 * mm), _grid(st, rows, [20, 50, 35, 25, 35])]
    if missing:
        story += [
            Spacer(1, 4 * mm),
            st.cell(f"{missing} unit(s) follow in another parcel."),
        ]
    return _pdf(f"Delivery note {order.order_id}", story)
