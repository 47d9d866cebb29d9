"""Feed files read into StockEvents: CSV snapshots and deltas, EANCOM INVRPT, DESADV and
RECADV (built with pydifact, as a partner's system writes them), bad rows with their line."""

from __future__ import annotations

from datetime import datetime

import pytest
from pydifact.control import Characters
from pydifact.segmentcollection import Interchange, Message
from pydifact.segments import Segment

from connectors.feeds.formats import read
from connectors.feeds.rows import Unreadable
from schemas.events import check
from schemas.times import parse_time_ms

pytestmark = pytest.mark.filterwarnings("ignore::pydifact.exceptions.MissingImplementationWarning")

AS_OF = "2026-11-30T02:00:00Z"
GLN_PARIS = "5400000000017"


def edifact(kind: str, body: list[Segment], *, one_per_line: bool = True) -> bytes:
    """An interchange with one ``kind`` message holding ``body``, serialised by pydifact."""
    message = Message("1", [kind, "D", "96A", "UN", "EAN005"])
    message.add_segments(body)
    interchange = Interchange(
        sender=["5412345000013", "14"],
        recipient=["5498765000012", "14"],
        control_reference="42",
        syntax_identifier=("UNOC", 3),
        timestamp=datetime(2026, 11, 30, 8, 0),
        characters=Characters(decimal_point="."),
    )
    interchange.has_una_segment = True
    interchange.add_message(message)
    return interchange.serialize(break_lines=one_per_line).encode()


def head(doc: str, *extra: Segment) -> list[Segment]:
    return [Segment("BGM", "35", doc, "9"), Segment("DTM", ["137", "202611300200", "203"]), *extra]


def test_a_snapshot_row_is_a_stock_count_that_rebases_with_its_sequence() -> None:
    """Given a snapshot CSV (with an extra gtin column) of two rows,
    When it is read,
    Then each row is a stock_count at its location whose as_of and source_seq are the file's,
    with an id from location, SKU and sequence (the same row sent again has the same id),
    and the ledger's own check accepts both."""
    data = (
        "sku;gtin;location;on_hand;as_of;seq\n"
        f"chair;4000000000017;paris;12;{AS_OF};7\n"
        f"desk;;lyon;0;{AS_OF};7\n"
    ).encode()
    parsed = read(data)
    assert parsed.kind == "snapshot" and not parsed.bad
    (line1, chair), (line2, desk) = parsed.events
    assert (line1, line2) == (2, 3)
    assert chair["type"] == "stock_count" and chair["qty"] == 12 and chair["location"] == "paris"
    assert chair["as_of"] == parse_time_ms(AS_OF, "as_of") and chair["source_seq"] == 7
    assert (
        chair["event_id"] == f"feeds/count/paris/chair/7/{chair['as_of']}"
        and chair["source"] == "erp"
    )
    assert desk["qty"] == 0
    assert [check(e) for _, e in parsed.events] == ["stock_count", "stock_count"]
    assert read(data).events[0][1]["event_id"] == chair["event_id"]


def test_a_delta_row_is_an_adjustment_whose_id_is_the_movement_id() -> None:
    """Given a delta CSV with a comma delimiter, a negative and a positive movement,
    When it is read,
    Then each row is a signed adjustment with its reason, source_ref and id from movement_id."""
    data = (
        b"movement_id,sku,location,delta,reason,occurred_at\n"
        b"M-1,chair,paris,-2,damage,2026-11-30T09:00:00+01:00\n"
        b"M-2,chair,paris,5,correction,2026-11-30T09:05:00Z\n"
    )
    parsed = read(data)
    assert parsed.kind == "delta" and not parsed.bad
    (_, first), (_, second) = parsed.events
    assert (first["type"], first["qty"], first["reason"]) == ("adjustment", -2, "damage")
    assert first["event_id"] == "feeds/movement/M-1" and first["source_ref"] == "M-1"
    assert first["occurred_at"] == parse_time_ms("2026-11-30T08:00:00Z", "t")
    assert second["qty"] == 5


def test_every_bad_csv_row_is_reported_with_its_line_and_reason_and_the_good_rows_kept() -> None:
    """Given a delta CSV with a good row, then a row with too few fields, a delta that is
    not a number, a time without timezone, a zero delta, a missing reason, a blank line and
    a last good row,
    When it is read,
    Then the two good rows are events and each bad row is reported at its own line with a
    reason naming the problem and its text as written."""
    data = (
        "movement_id;sku;location;delta;reason;occurred_at\n"
        f"M-1;chair;paris;-1;sold;{AS_OF}\n"
        "M-2;chair;paris\n"
        f"M-3;chair;paris;three;sold;{AS_OF}\n"
        "M-4;chair;paris;1;sold;2026-11-30T02:00:00\n"
        f"M-5;chair;paris;0;sold;{AS_OF}\n"
        f"M-6;chair;paris;2;;{AS_OF}\n"
        "\n"
        f"M-7;desk;paris;3;found;{AS_OF}\n"
    ).encode()
    parsed = read(data)
    assert [line for line, _ in parsed.events] == [2, 9]
    assert [(b.line, b.reason) for b in parsed.bad] == [
        (3, "columns"),
        (4, "bad_delta"),
        (5, "bad_occurred_at"),
        (6, "zero_qty"),
        (7, "missing_reason"),
    ]
    assert parsed.bad[0].text == "M-2;chair;paris" and "timezone" in parsed.bad[2].message
    assert parsed.rows == 7


def test_a_file_of_no_known_format_is_unreadable_with_the_headers_it_expects() -> None:
    """Given a CSV with another header, an empty file, bytes that are not UTF-8, and an
    EDIFACT interchange of ORDERS,
    When each is read,
    Then each is Unreadable, the header one naming both expected headers."""
    with pytest.raises(Unreadable, match="sku;location;on_hand;as_of;seq"):
        read(b"article;qty\nchair;3\n")
    with pytest.raises(Unreadable, match="empty"):
        read(b"\n\n")
    with pytest.raises(Unreadable, match="UTF-8"):
        read(b"sku;location\xff\xfe")
    with pytest.raises(Unreadable, match="ORDERS"):
        read(edifact("ORDERS", [*head("PO-1"), Segment("LIN", "1"), Segment("QTY", ["21", "3"])]))


def test_an_invrpt_gives_a_count_per_item_and_place_with_the_report_date() -> None:
    """Given an INVRPT (pydifact-built) with a header place, two items (one named by
    PIA ...:IN, one by its GTIN), one item with two LOC breakdowns, and other quantities
    (QTY+66 committed) beside the actual stock QTY+145,
    When it is read with the header GLN mapped to 'paris',
    Then there is one stock_count per (item, place) from QTY+145 only, as of DTM+366, in
    the mapped or given location, with ids from document, place and SKU."""
    body = [
        Segment("BGM", "35", "INV-9", "9"),
        Segment("DTM", ["137", "20261130", "102"]),
        Segment("DTM", ["366", "202611300200", "203"]),
        Segment("LOC", "18", [GLN_PARIS, "", "9"]),
        Segment("LIN", "1", "", ["4000000000017", "SRV"]),
        Segment("PIA", "1", ["chair", "IN"]),
        Segment("QTY", ["145", "12"]),
        Segment("QTY", ["66", "3"]),
        Segment("LIN", "2", "", ["4000000000024", "SRV"]),
        Segment("LOC", "18", ["lyon"]),
        Segment("QTY", ["145", "4"]),
        Segment("LOC", "18", ["nice"]),
        Segment("QTY", ["145", "0"]),
    ]
    parsed = read(edifact("INVRPT", body), locations={GLN_PARIS: "paris"})
    assert parsed.kind == "invrpt" and not parsed.bad
    got = [(e["sku"], e["location"], e["qty"], e["type"]) for _, e in parsed.events]
    assert got == [
        ("chair", "paris", 12, "stock_count"),
        ("4000000000024", "lyon", 4, "stock_count"),
        ("4000000000024", "nice", 0, "stock_count"),
    ]
    first = parsed.events[0][1]
    assert first["as_of"] == parse_time_ms(AS_OF, "t") == first["source_seq"]
    assert first["event_id"] == "feeds/invrpt/INV-9/paris/chair"
    assert parsed.events[0][0] == 10  # QTY+145's line: UNA UNB UNH BGM DTM DTM LOC LIN PIA QTY


def test_a_desadv_line_is_incoming_at_the_destination_for_its_purchase_order() -> None:
    """Given a DESADV with its order number (RFF+ON), the delivery party NAD+DP, and two
    despatched lines (QTY+12),
    When it is read,
    Then each line is a purchase_ordered (incoming) at the mapped destination with the
    order number as source_ref and an id from the DESADV number, line and SKU."""
    body = [
        *head("DES-7", Segment("RFF", ["ON", "PO-1"]), Segment("NAD", "DP", [GLN_PARIS, "", "9"])),
        Segment("LIN", "1", "", ["4000000000017", "SRV"]),
        Segment("PIA", "1", ["chair", "IN"]),
        Segment("QTY", ["12", "10"]),
        Segment("LIN", "2", "", ["4000000000024", "SRV"]),
        Segment("QTY", ["12", "4"]),
    ]
    parsed = read(edifact("DESADV", body), locations={GLN_PARIS: "paris"})
    assert not parsed.bad
    got = [
        (e["type"], e["sku"], e["location"], e["qty"], e["source_ref"]) for _, e in parsed.events
    ]
    assert got == [
        ("purchase_ordered", "chair", "paris", 10, "PO-1"),
        ("purchase_ordered", "4000000000024", "paris", 4, "PO-1"),
    ]
    assert parsed.events[0][1]["event_id"] == "feeds/desadv/DES-7/1/chair"
    assert [check(e) for _, e in parsed.events] == ["purchase_ordered"] * 2


def test_a_recadv_line_is_a_receipt_of_the_accepted_quantity() -> None:
    """Given a RECADV whose first line says 10 received (QTY+48) and 9 accepted (QTY+194),
    and whose second line has only QTY+48,
    When it is read,
    Then the first line is a receipt of 9 (accepted wins), the second of its received
    quantity, both at the place of delivery LOC+7."""
    body = [
        *head("REC-3", Segment("RFF", ["ON", "PO-1"]), Segment("LOC", "7", ["paris"])),
        Segment("LIN", "1", "", ["4000000000017", "SRV"]),
        Segment("PIA", "1", ["chair", "IN"]),
        Segment("QTY", ["48", "10"]),
        Segment("QTY", ["194", "9"]),
        Segment("LIN", "2", "", ["4000000000024", "SRV"]),
        Segment("QTY", ["48", "4"]),
    ]
    parsed = read(edifact("RECADV", body))
    got = [(e["type"], e["sku"], e["location"], e["qty"]) for _, e in parsed.events]
    assert got == [("receipt", "chair", "paris", 9), ("receipt", "4000000000024", "paris", 4)]
    assert parsed.events[0][1]["event_id"] == "feeds/recadv/REC-3/1/chair"


def test_bad_edifact_segments_are_reported_at_their_line_and_the_good_lines_kept() -> None:
    """Given a DESADV (one segment per line) with a good line, a quantity of 2.5, a LIN
    without any item number, a negative quantity and a last good line,
    When it is read (and again written on a single line),
    Then the two good lines are events and each bad quantity is reported at the line of its
    QTY segment with its reason and its text; on a single line, the same reasons at line 1."""
    body = [
        *head("DES-8", Segment("RFF", ["ON", "PO-2"]), Segment("LOC", "7", ["paris"])),
        Segment("LIN", "1", "", ["4000000000017", "SRV"]),
        Segment("QTY", ["12", "3"]),
        Segment("LIN", "2", "", ["4000000000024", "SRV"]),
        Segment("QTY", ["12", "2.5"]),
        Segment("LIN", "3"),
        Segment("QTY", ["12", "1"]),
        Segment("LIN", "4", "", ["4000000000031", "SRV"]),
        Segment("QTY", ["12", "-2"]),
        Segment("LIN", "5", "", ["4000000000048", "SRV"]),
        Segment("QTY", ["12", "6"]),
    ]
    parsed = read(edifact("DESADV", body))
    assert [e["qty"] for _, e in parsed.events] == [3, 6]
    assert [(b.line, b.reason) for b in parsed.bad] == [
        (11, "bad_qty"),
        (13, "missing_item"),
        (15, "negative_qty"),
    ]
    assert parsed.bad[0].text == "QTY+12:2.5'"
    flat = read(edifact("DESADV", body, one_per_line=False))
    assert [(b.line, b.reason, b.text) for b in flat.bad] == [
        (1, b.reason, b.text) for b in parsed.bad
    ]


def test_an_edifact_message_without_a_date_has_its_quantities_reported() -> None:
    """Given a RECADV without DTM, When it is read, Then its quantity is a bad row
    ``missing_date`` and nothing is applied (a receipt needs the moment it happened)."""
    body = [
        Segment("BGM", "632", "REC-4", "9"),
        Segment("LIN", "1", "", ["4000000000017", "SRV"]),
        Segment("QTY", ["48", "4"]),
    ]
    parsed = read(edifact("RECADV", body))
    assert not parsed.events and [b.reason for b in parsed.bad] == ["missing_date"]
