"""The table stores the worker tests that recover a table run on.

``STOCKFLOW_TEST_STORES`` (comma-separated): RocksDB by default, the store a worker uses
unless told otherwise; ``rocksdb://,memory://`` adds Faust's in-memory store, whose
recovery replays the whole changelog."""

from __future__ import annotations

import os


def table_stores() -> list[str]:
    stores = os.environ.get("STOCKFLOW_TEST_STORES", "rocksdb://").split(",")
    return [s.strip() for s in stores if s.strip()]
