"""Purchase order documents, rendered and read back: PDF (pdftotext, pdftoppm, zbarimg),
CSV (the csv module) and EDIFACT ORDERS (pydifact)."""

from __future__ import annotations

import copy
import csv
import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydifact.segmentcollection import Interchange

from streams.replenishment.documents import (
    CSV_HEADER,
    DocumentError,
    control_reference,
    edifact_file_name,
    format_amount,
    format_money,
    purchase_order_csv,
    purchase_order_edifact,
    purchase_order_json,
    purchase_order_pdf,
)
from streams.replenishment.model import SendVia, Supplier
from tests.unit.schema_samples import SAMPLES

# pydifact warns on every parse that it ships no segment tables for the directories it checks
# segments against (d24a, service/v3): validation it skips, not a fault of the document
pytestmark = pytest.mark.filterwarnings("ignore::pydifact.exceptions.MissingImplementationWarning")

SUPPLIER = Supplier(
    id="acme",
    name="Acme & Söhne GmbH",
    send_via=SendVia.EDI,
    lead_time_days=5,
    edi_sender="4012345000009",
    edi_recipient="ACME-EDI",
)


def line(sku: str, qty: int, *, pack: int = 6, cost: int = 2000, ssku: str = "") -> dict[str, Any]:
    base = copy.deepcopy(SAMPLES["stockflow.v1.Proposal"]["lines"][0])
    base.update(sku=sku, supplier_sku=ssku or f"ACME-{sku.upper()}", qty=qty, proposed_qty=qty)
    base.update(pack_size=pack, unit_cost=cost)
    return base


def proposal(*lines: dict[str, Any], currency: str = "EUR") -> dict[str, Any]:
    record = copy.deepcopy(SAMPLES["stockflow.v1.Proposal"])
    record["lines"] = list(lines) or record["lines"]
    record["currency"] = currency
    record["total"] = sum(li["qty"] * li["unit_cost"] for li in record["lines"])
    return record


THREE_LINES = proposal(
    line("chair", 24, cost=2000),
    line("table", 0, cost=15000),  # removed by a person: not ordered
    line("lamp", 12, pack=4, cost=123456),
)


def test_amounts_are_printed_from_minor_units_with_the_currencys_digits() -> None:
    """Given amounts in minor units, When formatted, Then the decimal mark sits where ISO 4217
    puts it for the currency (2 digits for EUR, none for JPY, 3 for KWD), signs kept."""
    assert format_money(123456, "EUR") == "1,234.56 EUR"
    assert format_money(5, "eur") == "0.05 EUR"
    assert format_money(-1999, "USD") == "-19.99 USD"
    assert format_money(1234567, "JPY") == "1,234,567 JPY"
    assert format_money(1234567, "KWD") == "1,234.567 KWD"
    assert format_amount(123456, "EUR", grouping=False) == "1234.56"


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils not installed")
def test_the_pdf_reads_back_with_supplier_destination_dates_lines_and_total(
    tmp_path: Path,
) -> None:
    """Given a PO of three lines, one of them at 0 units, When rendered as PDF, Then pdftotext
    reads the PO number, buyer, supplier, destination, expected date, each ordered line
    (supplier SKU, our SKU, qty, packs, unit cost, line total) and the total in EUR; the line
    of 0 units is absent, and pdftoppm renders the page."""
    pdf = purchase_order_pdf(THREE_LINES, SUPPLIER, buyer="Maison Martin")
    assert pdf.startswith(b"%PDF-")
    path = tmp_path / "po.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, text=True
    ).stdout
    # one space between words; "4 x 6" packs may come out as "4x6"
    rows = [" ".join(r.split()).replace(" x ", "x") for r in text.splitlines()]
    assert any("Purchase order PO-acme-paris-wh-20261130-1" in r for r in rows)
    assert "Buyer Maison Martin" in rows
    assert "Supplier Acme & Söhne GmbH (acme)" in rows
    assert "Deliver to paris-wh" in rows
    assert "Expected on 2025-12-05" in rows
    assert "1 ACME-CHAIR chair 24 4x6 20.00 480.00" in rows
    assert "2 ACME-LAMP lamp 12 3x4 1,234.56 14,814.72" in rows
    assert "Total 15,294.72 EUR" in rows
    assert "table" not in text and "ACME-TABLE" not in text
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(path), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page*.png"))
    assert len(pages) == 1 and pages[0].stat().st_size > 2000


@pytest.mark.skipif(not shutil.which("zbarimg"), reason="zbar-tools not installed")
def test_the_pdfs_barcode_scans_as_the_po_number(tmp_path: Path) -> None:
    """Given a rendered PO, When its page is rasterised and scanned, Then the barcode is a
    Code 128 of the PO number."""
    path = tmp_path / "po.pdf"
    path.write_bytes(purchase_order_pdf(THREE_LINES, SUPPLIER, buyer="Maison Martin"))
    subprocess.run(["pdftoppm", "-r", "200", "-png", str(path), str(tmp_path / "p")], check=True)
    scan = subprocess.run(
        ["zbarimg", "-q", str(next(tmp_path.glob("p*.png")))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert scan.stdout.strip().splitlines() == ["CODE-128:PO-acme-paris-wh-20261130-1"]


def test_the_pdf_of_a_long_order_runs_over_pages_and_is_the_same_bytes_each_time(
    tmp_path: Path,
) -> None:
    """Given a PO of 120 lines, When rendered twice, Then both renders are the same bytes (no
    clock, no random id) and poppler counts more than one page."""
    many = proposal(*(line(f"sku-{i:03d}", 6 * (i + 1)) for i in range(120)))
    first = purchase_order_pdf(many, SUPPLIER, buyer="Maison Martin")
    assert first == purchase_order_pdf(many, SUPPLIER, buyer="Maison Martin")
    if shutil.which("pdfinfo"):
        path = tmp_path / "long.pdf"
        path.write_bytes(first)
        info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
        pages = int(next(r for r in info.stdout.splitlines() if r.startswith("Pages:")).split()[1])
        assert pages >= 3


def test_the_csv_has_a_stable_header_and_one_row_per_ordered_line() -> None:
    """Given the three-line PO, When written as CSV, Then the header is CSV_HEADER and the two
    ordered lines come back with units, packs and amounts as decimals."""
    rows = list(csv.DictReader(io.StringIO(purchase_order_csv(THREE_LINES, SUPPLIER).decode())))
    assert tuple(rows[0]) == CSV_HEADER
    assert [(r["line"], r["sku"], r["supplier_sku"], r["qty"], r["packs"]) for r in rows] == [
        ("1", "chair", "ACME-CHAIR", "24", "4"),
        ("2", "lamp", "ACME-LAMP", "12", "3"),
    ]
    assert [(r["unit_cost"], r["line_total"], r["currency"]) for r in rows] == [
        ("20.00", "480.00", "EUR"),
        ("1234.56", "14814.72", "EUR"),
    ]
    assert {(r["po_number"], r["supplier"], r["location"], r["expected_on"]) for r in rows} == {
        ("PO-acme-paris-wh-20261130-1", "acme", "paris-wh", "2025-12-05")
    }


def _parse(edi: bytes) -> Interchange:
    return Interchange.from_str(edi.decode("iso-8859-1"))


@pytest.mark.parametrize("syntax", ["D96A", "D01B"])
def test_edifact_orders_parse_back_with_correct_control_counts(syntax: str) -> None:
    """Given the three-line PO, When written as EDIFACT ORDERS of D96A or D01B, Then pydifact
    reads one ORDERS message of that directory with the PO number, buyer and supplier party
    ids, two LIN groups with supplier SKUs and quantities, UNT counting the message's segments
    and UNZ counting one message under the UNB's control reference."""
    edi = purchase_order_edifact(THREE_LINES, SUPPLIER, buyer_id="4012345000009", syntax=syntax)
    assert edi.startswith(b"UNA:+.? 'UNB+UNOC:3+4012345000009:14+ACME-EDI:ZZZ+")
    interchange = _parse(edi)
    assert interchange.sender == ["4012345000009", "14"]
    assert interchange.recipient == ["ACME-EDI", "ZZZ"]
    messages = list(interchange.get_messages())
    assert len(messages) == 1
    unh = interchange.get_segment("UNH")
    assert unh is not None and unh.elements[1] == ["ORDERS", "D", syntax[1:], "UN"]
    bgm = interchange.get_segment("BGM")
    assert bgm is not None and bgm.elements == ["220", "PO-acme-paris-wh-20261130-1", "9"]
    nads = {s.elements[0]: s.elements[1][0] for s in interchange.get_segments("NAD")}
    assert nads == {"BY": "4012345000009", "SU": "ACME-EDI", "DP": "paris-wh"}
    dtm = {s.elements[0][0]: s.elements[0][1] for s in interchange.get_segments("DTM")}
    assert dtm == {"137": "20261123", "2": "20251205"}
    supplier_skus = [
        s.elements[1][0] for s in interchange.get_segments("PIA") if s.elements[0] == "5"
    ]
    assert supplier_skus == ["ACME-CHAIR", "ACME-LAMP"]
    assert [s.elements[0][1] for s in interchange.get_segments("QTY")] == ["24", "12"]
    assert [s.elements[0][1] for s in interchange.get_segments("PRI")] == ["20.00", "1234.56"]
    cnt = interchange.get_segment("CNT")
    assert cnt is not None and cnt.elements == [["2", "2"]]
    # UNT counts UNH..UNT inclusive
    tags = [s.tag for s in interchange.segments]
    unt = interchange.get_segment("UNT")
    assert unt is not None
    assert int(str(unt.elements[0])) == tags.index("UNT") - tags.index("UNH") + 1
    assert unt.elements[1] == "1"
    # UNZ counts the messages and repeats the control reference
    assert edi.decode("iso-8859-1").endswith(f"UNZ+1+{control_reference(THREE_LINES)}'")
    assert interchange.control_reference == control_reference(THREE_LINES)


@given(
    st.lists(
        st.tuples(
            st.text(
                alphabet=st.characters(codec="latin-1", exclude_categories=["Cs", "Cc"]),
                min_size=1,
                max_size=20,
            ),
            st.integers(min_value=0, max_value=50),
            st.integers(min_value=1, max_value=12),
        ),
        min_size=1,
        max_size=15,
    ).filter(lambda ls: any(q for _, q, _ in ls))
)
def test_edifact_carries_any_latin1_sku_and_every_ordered_quantity(
    specs: list[tuple[str, int, int]],
) -> None:
    """Given lines whose supplier SKUs hold EDIFACT's own separators (+ : ' ?) or any Latin-1
    text, When written and parsed back, Then each line above 0 units comes back with its SKU
    and quantity, in order, and CNT and the LIN count match."""
    lines = [
        line(f"s{i}", packs * pack, pack=pack, ssku=ssku)
        for i, (ssku, packs, pack) in enumerate(specs)
    ]
    record = proposal(*lines)
    interchange = _parse(purchase_order_edifact(record, SUPPLIER, buyer_id="BUYER"))
    ordered = [(li["supplier_sku"], str(li["qty"])) for li in lines if li["qty"]]
    got_skus = [s.elements[1][0] for s in interchange.get_segments("PIA") if s.elements[0] == "5"]
    got_qty = [s.elements[0][1] for s in interchange.get_segments("QTY")]
    assert list(zip(got_skus, got_qty, strict=True)) == ordered
    assert len(list(interchange.get_segments("LIN"))) == len(ordered)
    cnt = interchange.get_segment("CNT")
    assert cnt is not None and cnt.elements[0][1] == str(len(ordered))


def test_documents_refuse_what_a_supplier_could_not_read() -> None:
    """Given a PO whose lines are all 0, a line not in whole packs, a SKU outside Latin-1 for
    EDIFACT, or an EDI supplier without its party id, When written, Then DocumentError says
    which and why."""
    with pytest.raises(DocumentError, match="no line above 0 units"):
        purchase_order_csv(proposal(line("chair", 0)), SUPPLIER)
    with pytest.raises(DocumentError, match="not a whole number of packs of 6"):
        purchase_order_pdf(proposal(line("chair", 7)), SUPPLIER, buyer="x")
    with pytest.raises(DocumentError, match="UNOC"):
        purchase_order_edifact(proposal(line("chair", 6, ssku="椅子")), SUPPLIER, buyer_id="B")
    no_id = Supplier(id="bare", name="Bare", send_via=SendVia.EDI, lead_time_days=1)
    with pytest.raises(DocumentError, match="bare has no edi_recipient"):
        purchase_order_edifact(THREE_LINES, no_id, buyer_id="B")
    with pytest.raises(DocumentError, match="D96A, D01B"):
        purchase_order_edifact(THREE_LINES, SUPPLIER, buyer_id="B", syntax="D99Z")  # type: ignore[arg-type]


def test_the_json_body_and_file_name_carry_the_order_and_its_version() -> None:
    """Given the three-line PO at version 2, When written as the webhook's JSON and named as
    an EDI file, Then the JSON has the two ordered lines, the total in minor units with the
    currency's digits, and the file name the PO number and version."""
    body = json.loads(purchase_order_json(THREE_LINES, SUPPLIER))
    assert body["po_number"] == "PO-acme-paris-wh-20261130-1" and body["version"] == 2
    assert [(li["sku"], li["qty"], li["packs"]) for li in body["lines"]] == [
        ("chair", 24, 4),
        ("lamp", 12, 3),
    ]
    assert (body["total"], body["currency"], body["minor_digits"]) == (1529472, "EUR", 2)
    assert body["expected_on"] == "2025-12-05"
    assert edifact_file_name(THREE_LINES) == "ORDERS_PO-acme-paris-wh-20261130-1_v2.edi"
