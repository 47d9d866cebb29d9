"""A purchase order as the documents a supplier receives: PDF, CSV and EDIFACT ORDERS.

Pure functions from a Proposal record (``schemas/Proposal.avsc``, as the codec reads it:
times as epoch ms, ``expected_on`` as days since 1970-01-01) and the supplier's configuration
to bytes. The same record gives the same bytes: every date printed comes from the record
(``updated_at`` is the document's date), none from the clock. Lines of 0 units are left out;
amounts are integers in minor units until they are printed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import escape

from pydifact.control import Characters
from pydifact.segmentcollection import Interchange, Message
from pydifact.segments import Segment
from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from streams.replenishment.model import Supplier

EdifactSyntax = Literal["D96A", "D01B"]
EDIFACT_SYNTAXES: tuple[str, ...] = ("D96A", "D01B")

# ISO 4217 minor-unit digits of the currencies that do not use two
_MINOR_DIGITS = {
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI"), 0
    ),
    **dict.fromkeys(("VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    "CLF": 4,
    "UYW": 4,
}

CSV_HEADER: tuple[str, ...] = (
    "po_number",
    "supplier",
    "location",
    "expected_on",
    "line",
    "supplier_sku",
    "sku",
    "qty",
    "pack_size",
    "packs",
    "unit_cost",
    "line_total",
    "currency",
)


class DocumentError(ValueError):
    """The proposal cannot be written as this document; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One line as the supplier sees it: units, packs and money in minor units."""

    number: int
    sku: str
    supplier_sku: str
    qty: int
    pack_size: int
    packs: int
    unit_cost: int
    total: int


def minor_digits(currency: str) -> int:
    """Digits after the decimal mark of ``currency`` (ISO 4217; 2 unless listed)."""
    return _MINOR_DIGITS.get(currency.upper(), 2)


def format_amount(minor: int, currency: str, *, grouping: bool = True) -> str:
    """``minor`` units of ``currency`` as a decimal: 123456 EUR -> ``1,234.56``."""
    digits = minor_digits(currency)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**digits)
    text = f"{whole:,}" if grouping else str(whole)
    return f"{sign}{text}.{frac:0{digits}d}" if digits else f"{sign}{text}"


def format_money(minor: int, currency: str) -> str:
    """``1,234.56 EUR``."""
    return f"{format_amount(minor, currency)} {currency.upper()}"


def order_lines(proposal: Mapping[str, Any]) -> list[OrderLine]:
    """The lines to order (qty above 0), numbered from 1; DocumentError when a quantity is
    negative or not a whole number of packs."""
    lines: list[OrderLine] = []
    for raw in proposal.get("lines") or ():
        qty = int(raw["qty"])
        sku = str(raw["sku"])
        if qty < 0:
            raise DocumentError(f"line {sku}: qty {qty} is negative")
        if qty == 0:
            continue
        pack_size = int(raw.get("pack_size") or 1)
        if pack_size < 1 or qty % pack_size:
            raise DocumentError(
                f"line {sku}: qty {qty} is not a whole number of packs of {pack_size}; "
                "round the line to its pack size before sending"
            )
        unit_cost = int(raw["unit_cost"])
        lines.append(
            OrderLine(
                number=len(lines) + 1,
                sku=sku,
                supplier_sku=str(raw.get("supplier_sku") or sku),
                qty=qty,
                pack_size=pack_size,
                packs=qty // pack_size,
                unit_cost=unit_cost,
                total=qty * unit_cost,
            )
        )
    return lines


def po_number(proposal: Mapping[str, Any]) -> str:
    """The purchase order number the supplier sees: the proposal id."""
    number = str(proposal.get("proposal_id") or "")
    if not number:
        raise DocumentError("the proposal has no proposal_id (the purchase order number)")
    return number


def expected_on(proposal: Mapping[str, Any]) -> date | None:
    """The expected day of delivery (days since the epoch in the record), or None."""
    value = proposal.get("expected_on")
    if value is None or isinstance(value, date):
        return value
    return date(1970, 1, 1) + timedelta(days=int(value))


def issued_at(proposal: Mapping[str, Any]) -> datetime:
    """The document's date: when this version of the proposal was made (UTC)."""
    value = proposal.get("updated_at") or proposal.get("created_at") or 0
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def _currency(proposal: Mapping[str, Any], supplier: Supplier) -> str:
    return str(proposal.get("currency") or supplier.currency).upper()


def _ordered(proposal: Mapping[str, Any]) -> list[OrderLine]:
    lines = order_lines(proposal)
    if not lines:
        raise DocumentError(f"purchase order {po_number(proposal)} has no line above 0 units")
    return lines


# ---------------------------------------------------------------------------- CSV


def purchase_order_csv(proposal: Mapping[str, Any], supplier: Supplier) -> bytes:
    """UTF-8 CSV (RFC 4180), header ``CSV_HEADER``, one row per line; amounts as decimals in
    the currency's major unit without grouping (``1234.56``)."""
    number = po_number(proposal)
    currency = _currency(proposal, supplier)
    due = expected_on(proposal)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for line in _ordered(proposal):
        writer.writerow(
            (
                number,
                supplier.id,
                proposal.get("location", ""),
                due.isoformat() if due else "",
                line.number,
                line.supplier_sku,
                line.sku,
                line.qty,
                line.pack_size,
                line.packs,
                format_amount(line.unit_cost, currency, grouping=False),
                format_amount(line.total, currency, grouping=False),
                currency,
            )
        )
    return out.getvalue().encode("utf-8")


def purchase_order_json(proposal: Mapping[str, Any], supplier: Supplier) -> bytes:
    """The purchase order as a supplier's webhook receives it: UTF-8 JSON, keys sorted,
    amounts in minor units (``minor_digits`` says where the decimal mark goes), dates ISO."""
    currency = _currency(proposal, supplier)
    lines = _ordered(proposal)
    due = expected_on(proposal)
    body = {
        "po_number": po_number(proposal),
        "version": int(proposal.get("version", 1)),
        "supplier": supplier.id,
        "location": proposal.get("location", ""),
        "issued_at": issued_at(proposal).isoformat(timespec="seconds"),
        "expected_on": due.isoformat() if due else None,
        "currency": currency,
        "minor_digits": minor_digits(currency),
        "total": sum(line.total for line in lines),
        "lines": [
            {
                "line": line.number,
                "supplier_sku": line.supplier_sku,
                "sku": line.sku,
                "qty": line.qty,
                "pack_size": line.pack_size,
                "packs": line.packs,
                "unit_cost": line.unit_cost,
                "line_total": line.total,
            }
            for line in lines
        ],
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


# ---------------------------------------------------------------------------- PDF

# DejaVu Sans (Debian's fonts-dejavu-core) prints names beyond Latin-1; Helvetica otherwise.
_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


def _fonts() -> tuple[str, str]:
    if "StockflowSans" in pdfmetrics.getRegisteredFontNames():
        return "StockflowSans", "StockflowSans-Bold"
    regular, bold = _DEJAVU / "DejaVuSans.ttf", _DEJAVU / "DejaVuSans-Bold.ttf"
    if regular.is_file() and bold.is_file():
        pdfmetrics.registerFont(TTFont("StockflowSans", str(regular)))
        pdfmetrics.registerFont(TTFont("StockflowSans-Bold", str(bold)))
        return "StockflowSans", "StockflowSans-Bold"
    return "Helvetica", "Helvetica-Bold"


def purchase_order_pdf(proposal: Mapping[str, Any], supplier: Supplier, *, buyer: str) -> bytes:
    """An A4 purchase order: the PO number in text and as a Code 128 barcode, buyer, supplier,
    destination, order and expected dates, then the lines (supplier SKU, our SKU, units, packs,
    unit cost, line total) and the order total. The table runs over pages with its header."""
    number = po_number(proposal)
    currency = _currency(proposal, supplier)
    lines = _ordered(proposal)
    regular, bold = _fonts()
    styles = getSampleStyleSheet()
    body = ParagraphStyle("po-body", parent=styles["Normal"], fontName=regular, fontSize=9.5)
    title = ParagraphStyle("po-title", parent=body, fontName=bold, fontSize=16, leading=20)
    due = expected_on(proposal)

    def cell(text: object) -> Paragraph:
        return Paragraph(escape(str(text)), body)

    header = Table(
        [
            [Paragraph(f"Purchase order {escape(number)}", title), ""],
            [
                Code128(number, barHeight=14 * mm, barWidth=0.3 * mm),
                "",
            ],
        ],
        colWidths=[120 * mm, 50 * mm],
        hAlign="LEFT",
    )
    header.setStyle(TableStyle([("SPAN", (0, 0), (1, 0)), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    facts = Table(
        [
            [cell("Buyer"), cell(buyer)],
            [cell("Supplier"), cell(f"{supplier.name} ({supplier.id})")],
            [cell("Deliver to"), cell(str(proposal.get("location", "")))],
            [cell("Order date"), cell(issued_at(proposal).date().isoformat())],
            [cell("Expected on"), cell(due.isoformat() if due else "as soon as possible")],
            [cell("Currency"), cell(currency)],
        ],
        colWidths=[35 * mm, 135 * mm],
        hAlign="LEFT",
    )
    facts.setStyle(TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    rows: list[Sequence[object]] = [
        ("#", "Supplier SKU", "Our SKU", "Qty", "Packs", "Unit cost", "Line total")
    ]
    for line in lines:
        rows.append(
            (
                str(line.number),
                cell(line.supplier_sku),
                cell(line.sku),
                str(line.qty),
                f"{line.packs} x {line.pack_size}",
                format_amount(line.unit_cost, currency),
                format_amount(line.total, currency),
            )
        )
    total = sum(line.total for line in lines)
    rows.append(("", "", "", "", "", "Total", format_money(total, currency)))
    table = Table(
        rows,
        colWidths=[8 * mm, 38 * mm, 38 * mm, 16 * mm, 20 * mm, 22 * mm, 30 * mm],
        repeatRows=1,
        hAlign="LEFT",
    )
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), regular),
                ("FONTSIZE", (0, 0), (-1, -1), 9.5),
                ("FONTNAME", (0, 0), (-1, 0), bold),
                ("FONTNAME", (0, -1), (-1, -1), bold),
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
                ("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black),
                ("ALIGN", (3, 0), (-1, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("ROWBACKGROUNDS", (0, 1), (-1, -2), [colors.white, colors.HexColor("#f2f2f2")]),
            ]
        )
    )
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=f"Purchase order {number}",
        author=buyer,
        subject=f"Purchase order {number} to {supplier.name}",
        creator="stockflow",
        invariant=True,  # no creation time or random id: the same order gives the same bytes
    )
    doc.build([header, Spacer(1, 4 * mm), facts, Spacer(1, 6 * mm), table])
    return out.getvalue()


# ---------------------------------------------------------------------------- EDIFACT

_ORDERS_VERSION = {"D96A": ("D", "96A"), "D01B": ("D", "01B")}


def _party(party_id: str) -> tuple[str, str]:
    """(UNB identification code qualifier, NAD code list agency): a 13-digit GLN is EAN's
    (14 / 9); any other id is mutually defined (ZZZ / ZZZ)."""
    if len(party_id) == 13 and party_id.isdigit():
        return "14", "9"
    return "ZZZ", "ZZZ"


def control_reference(proposal: Mapping[str, Any]) -> str:
    """The interchange control reference (an..14): 14 digits derived from the PO number and
    version, so a resent version repeats its reference and a new version gets a new one."""
    digest = hashlib.sha256(f"{po_number(proposal)}|{proposal.get('version', 1)}".encode())
    return str(int.from_bytes(digest.digest()[:8], "big") % 10**14).zfill(14)


def purchase_order_edifact(
    proposal: Mapping[str, Any],
    supplier: Supplier,
    *,
    buyer_id: str,
    syntax: EdifactSyntax = "D96A",
) -> bytes:
    """One interchange (UNOC, syntax version 3) holding one ORDERS message of directory
    ``syntax``: UNB, UNH, BGM (220, the PO number), DTM 137 (order date) and 2 (expected),
    NAD BY (``buyer_id``) / SU (``supplier.edi_recipient``) / DP (destination location),
    CUX, then per line LIN, PIA (supplier's article number SA, our SKU as buyer's item number
    IN), QTY 21, PRI AAA, MOA 203; UNS, MOA 79 (total), CNT 2 (lines), UNT, UNZ. Encoded
    ISO 8859-1 as UNOC requires."""
    if syntax not in _ORDERS_VERSION:
        raise DocumentError(f"EDIFACT syntax {syntax!r}: use one of {', '.join(EDIFACT_SYNTAXES)}")
    number = po_number(proposal)
    if len(number) > 35:
        raise DocumentError(f"PO number {number!r} is longer than EDIFACT's 35 characters")
    if not buyer_id:
        raise DocumentError("no buyer party id for EDIFACT (the supplier's edi_sender)")
    if not supplier.edi_recipient:
        raise DocumentError(f"supplier {supplier.id} has no edi_recipient (its EDIFACT party id)")
    currency = _currency(proposal, supplier)
    lines = _ordered(proposal)
    issued = issued_at(proposal)
    due = expected_on(proposal)
    sender_q, sender_agency = _party(buyer_id)
    recipient_q, recipient_agency = _party(supplier.edi_recipient)
    reference = control_reference(proposal)

    def amount(minor: int) -> str:
        return format_amount(minor, currency, grouping=False)

    release, directory = _ORDERS_VERSION[syntax]
    message = Message("1", ["ORDERS", release, directory, "UN"])
    segments = [
        Segment("BGM", "220", number, "9"),
        Segment("DTM", ["137", f"{issued:%Y%m%d}", "102"]),
    ]
    if due is not None:
        segments.append(Segment("DTM", ["2", f"{due:%Y%m%d}", "102"]))
    segments += [
        Segment("NAD", "BY", [buyer_id, "", sender_agency]),
        Segment("NAD", "SU", [supplier.edi_recipient, "", recipient_agency]),
        Segment("NAD", "DP", [str(proposal.get("location", "")), "", "92"]),
        Segment("CUX", ["2", currency, "9"]),
    ]
    for line in lines:
        segments += [
            Segment("LIN", str(line.number)),
            Segment("PIA", "5", [line.supplier_sku, "SA"]),
            Segment("PIA", "1", [line.sku, "IN"]),
            Segment("QTY", ["21", str(line.qty)]),
            Segment("PRI", ["AAA", amount(line.unit_cost)]),
            Segment("MOA", ["203", amount(line.total)]),
        ]
    segments += [
        Segment("UNS", "S"),
        Segment("MOA", ["79", amount(sum(line.total for line in lines))]),
        Segment("CNT", ["2", str(len(lines))]),
    ]
    message.add_segments(segments)
    interchange = Interchange(
        sender=[buyer_id, sender_q],
        recipient=[supplier.edi_recipient, recipient_q],
        control_reference=reference,
        syntax_identifier=("UNOC", 3),
        timestamp=issued.replace(tzinfo=None),
        characters=Characters(decimal_point="."),  # UNA:+.? ' : amounts are written 20.00
    )
    interchange.has_una_segment = True
    interchange.add_message(message)
    text = interchange.serialize()
    try:
        return text.encode("iso-8859-1")
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end]
        raise DocumentError(
            f"purchase order {number}: {bad!r} cannot be written in EDIFACT's UNOC character "
            "set (ISO 8859-1); use Latin-1 SKUs and party ids for EDI suppliers"
        ) from None


def edifact_file_name(proposal: Mapping[str, Any]) -> str:
    """``ORDERS_<PO number>_v<version>.edi``, with anything but letters, digits, ``-`` and
    ``_`` in the PO number replaced by ``_``."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in po_number(proposal))
    return f"ORDERS_{safe}_v{int(proposal.get('version', 1))}.edi"
