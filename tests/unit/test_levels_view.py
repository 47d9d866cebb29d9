"""The order book's view of the levels keeps records as bytes in RocksDB, out of the process's
memory, and decodes a SKU's latest when routing reads it (streams/worker/order_views.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from schemas.codec import single_object_codec
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_LEVELS
from streams.worker.order_views import LevelsView


def _level(sku: str, version: int, locations: dict[str, int]) -> dict[str, Any]:
    return {
        "sku": sku,
        "version": version,
        "channels": {"shop": sum(locations.values())},
        "locations": locations,
        "cause_event_id": f"e-{sku}-{version}",
        "occurred_at": 1_700_000_000_000,
        "at": 1_700_000_000_000,
    }


def test_a_sku_s_levels_are_decoded_when_read_and_the_latest_version_wins(tmp_path: Path) -> None:
    """Given the levels view fed records of two SKUs as read from stock.levels.v1,
    when routing reads one SKU,
    then it gets that SKU's latest split, the other SKU's records are still undecoded
    bytes on disk, and a record older than the version already read changes nothing."""
    codec = single_object_codec()
    (tmp_path / "view").mkdir()
    (tmp_path / "view" / "left-over").write_text("a previous run's")
    view = LevelsView(Settings(), codec, tmp_path / "view")

    def feed(sku: str, version: int, locations: dict[str, int]) -> None:
        record = _level(sku, version, locations)
        view.take(sku.encode(), codec.encode(STOCK_LEVELS.value_schema, record))
        view.taken()

    feed("A", 1, {"paris": 5})
    feed("A", 2, {"paris": 4, "lyon": 1})
    feed("B", 1, {"lyon": 9})
    assert view("A") == {"paris": 4, "lyon": 1}
    assert not (tmp_path / "view" / "left-over").exists()
    assert view._db is not None and b"B" in view._db and "B" not in view.levels
    feed("A", 1, {"paris": 5})  # older than what was read: refused
    assert view("A") == {"paris": 4, "lyon": 1}
    feed("A", 3, {"paris": 2})
    assert view("A") == {"paris": 2}
    assert view("B") == {"lyon": 9}
    assert view("C") == {}


def test_past_its_limit_the_view_forgets_what_it_decoded_not_what_it_stored(
    tmp_path: Path,
) -> None:
    """Given a view that remembers at most two SKUs read, when a third is read,
    then the decoded ones are dropped and every SKU still reads its latest split."""
    codec = single_object_codec()
    view = LevelsView(Settings(), codec, tmp_path / "view")
    view.read_max = 2
    for n, sku in enumerate("ABC"):
        view.take(sku.encode(), codec.encode(STOCK_LEVELS.value_schema, _level(sku, 1, {"p": n})))
    view.taken()
    assert view("A") == {"p": 0} and view("B") == {"p": 1}
    assert view("C") == {"p": 2} and set(view.levels) == {"C"}
    assert view("A") == {"p": 0}


def test_starting_the_view_leaves_the_last_run_s_folder_to_the_view_s_thread(
    tmp_path: Path,
) -> None:
    """Given a folder left by the last run, when the view is started (its thread doing
    nothing here), then the caller returns without having emptied it."""
    (tmp_path / "view").mkdir()
    (tmp_path / "view" / "left-over").write_text("a previous run's")
    view = LevelsView(Settings(), single_object_codec(), tmp_path / "view")
    view._run = lambda: None  # type: ignore[method-assign]
    view.start()
    assert (tmp_path / "view" / "left-over").exists()
