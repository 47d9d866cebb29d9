"""The table stores the worker fault tests run on.

``STOCKFLOW_FAULT_STORES`` (comma-separated): RocksDB by default, the store a worker uses
unless told otherwise; ``rocksdb://,memory://`` adds Faust's in-memory store, whose
recovery replays the whole changelog (the ledger's own tests cover it on every run)."""

from __future__ import annotations

import os


def fault_stores() -> list[str]:
    return [
        s.strip()
        for s in os.environ.get("STOCKFLOW_FAULT_STORES", "rocksdb://").split(",")
        if s.strip()
    ]
