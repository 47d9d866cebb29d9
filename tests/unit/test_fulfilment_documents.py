"""Pick list, wave summary and delivery note PDFs, rendered (pdftoppm) and read back
(pdftotext, zbarimg for the barcodes)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from streams.fulfilment.config import parse
from streams.fulfilment.documents import delivery_note_pdf, pick_list_pdf, wave_summary_pdf
from streams.fulfilment.model import Wave
from streams.fulfilment.picking import confirm
from streams.fulfilment.planner import plan_waves
from tests.unit.test_fulfilment_waves import NOW, state

pytestmark = pytest.mark.skipif(
    not shutil.which("pdftotext") or not shutil.which("pdftoppm"),
    reason="poppler-utils not installed",
)

CONFIG = parse(
    {
        "split_single_line": False,
        "carriers": [{"name": "dhl", "cutoff": "17:30"}],
        "bins": {"paris-wh": {"chair": "A-10-2", "lamp": "A-2-7", "table": "C-01-01"}},
    }
)


def _wave() -> Wave:
    states = [
        state("shopify:1001", [("1", "chair", 2, "paris-wh"), ("2", "lamp", 1, "paris-wh")]),
        state("woo:77", [("9", "table", 1, "paris-wh")]),
    ]
    (wave,) = plan_waves(states, "paris-wh", set(), CONFIG, NOW)
    return wave


def _read(pdf: bytes, tmp_path: Path, name: str) -> list[str]:
    assert pdf.startswith(b"%PDF-")
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, text=True
    ).stdout
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(path), str(tmp_path / name)], check=True)
    pages = sorted(tmp_path.glob(f"{name}*.png"))
    assert len(pages) == 1 and pages[0].stat().st_size > 2000
    return [" ".join(r.split()) for r in text.splitlines() if r.strip()]


def _scan(pdf: bytes, tmp_path: Path) -> set[str]:
    if not shutil.which("zbarimg"):
        pytest.skip("zbar-tools not installed")
    path = tmp_path / "scan.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "200", "-png", str(path), str(tmp_path / "s")], check=True)
    out = subprocess.run(
        ["zbarimg", "-q", *map(str, sorted(tmp_path.glob("s*.png")))],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    return {line.split(":", 1)[1] for line in out.splitlines() if line.startswith("CODE-128:")}


def test_the_pick_list_reads_back_in_walking_order(tmp_path: Path) -> None:
    """Given a wave of two orders over bins A-10-2, A-2-7, C-01-01
    When its pick list is rendered
    Then pdftotext reads the title, the location and carrier, and the rows in bin order
    (A-2-7 lamp, A-10-2 chair, C-01-01 table) with units and orders; the barcodes scan as
    the wave id and the order numbers."""
    wave = _wave()
    pdf = pick_list_pdf(wave)
    rows = _read(pdf, tmp_path, "pick")
    assert f"Pick list {wave.wave_id}" in rows
    assert "Location paris-wh" in rows and "Carrier dhl, cut-off 17:30" in rows
    picks = [r for r in rows if r.startswith(("A-", "C-"))]
    assert picks == ["A-2-7 lamp 1 shopify:1001 2", "A-10-2 chair 2 shopify:1001 1",
                     "C-01-01 table 1 woo:77 9"]  # fmt: skip
    assert _scan(pdf, tmp_path) >= {wave.wave_id, "shopify:1001", "woo:77"}


def test_the_wave_summary_lists_every_order_and_what_was_picked(tmp_path: Path) -> None:
    """Given a wave with one order picked short
    When its summary is rendered
    Then each order's row reads its channel, lines, units and picked units."""
    wave = _wave()
    for line_id, picked in (("1", 1), ("2", 1)):
        wave = confirm(wave, "shopify:1001", line_id, picked, NOW + 1).wave
    rows = _read(wave_summary_pdf(wave), tmp_path, "summary")
    assert f"Wave summary {wave.wave_id}" in rows and "Status picking" in rows
    assert "shopify:1001 web 2 3 2 FR 75011" in rows
    assert "woo:77 web 1 1 - FR 75011" in rows


def test_the_delivery_note_carries_order_and_tracking_numbers(tmp_path: Path) -> None:
    """Given an order picked one unit short, shipped with a tracking number
    When its delivery note is rendered
    Then it reads the order, the tracking number, where from and to, each line ordered and
    in the parcel, and that the missing unit follows; both numbers scan as Code 128."""
    wave = _wave()
    wave = confirm(wave, "shopify:1001", "1", 1, NOW + 1).wave
    wave = confirm(wave, "shopify:1001", "2", 1, NOW + 1).wave
    order = wave.orders[0]
    pdf = delivery_note_pdf(wave, order, tracking_number="1Z999AA10123456784", carrier="ups")
    rows = _read(pdf, tmp_path, "note")
    assert "Delivery note shopify:1001" in rows
    assert "Tracking 1Z999AA10123456784" in rows
    assert "Ships from paris-wh" in rows and "Ships to FR 75011" in rows
    assert "Carrier ups" in rows
    assert "1 chair 2 1" in rows and "2 lamp 1 1" in rows
    assert "1 unit(s) follow in another parcel." in rows
    assert _scan(pdf, tmp_path) >= {"shopify:1001", "1Z999AA10123456784"}
