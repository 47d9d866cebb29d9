"""The pickups booked, kept beside the labels in ``$STOCKFLOW_STATE_DIR/shipping/pickups.json``.

A booking is written ``booking`` (flushed to disk) before the carrier is called, then
``booked`` with the carrier's confirmation number; a failed call removes it (tried again at
the next tick). A restart that finds one at ``booking`` stopped during the carrier's call:
the carrier may hold it (no carrier offers an idempotency key for pickups), so it is not
booked again but reported for a person to check (:meth:`PickupBook.unsure`). Every write
replaces the file whole (a temporary file, fsync, rename). Entries older than
``KEEP_DAYS`` are dropped. No address is kept: carrier, location, day, parcels, number.
"""

from __future__ import annotations

import json
import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from streams.shipping.pickups import PickupKey

KEEP_DAYS = 14


class PickupBookError(ValueError):
    """The pickups file cannot be read; the message says what to do."""


class PickupBook:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        if path.exists():
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                raw = None
            if not isinstance(raw, dict):
                raise PickupBookError(
                    f"{path}: not a mapping of pickups; check today's bookings with the "
                    "carriers, then move the file aside to start anew"
                )
            self.entries = {str(k): dict(v) for k, v in raw.items()}

    def __contains__(self, key_id: object) -> bool:
        return key_id in self.entries

    def ids(self) -> set[str]:
        return set(self.entries)

    def unsure(self) -> list[tuple[PickupKey, int]]:
        """Bookings a stop interrupted during the carrier's call (not booked again)."""
        return [
            (PickupKey(e["carrier"], e["location"], date.fromisoformat(e["day"])), e["parcels"])
            for e in self.entries.values()
            if e["status"] == "booking"
        ]

    def begin(self, key: PickupKey, parcels: int, now_ms: int) -> None:
        self.entries[key.id] = {
            "carrier": key.carrier,
            "location": key.location,
            "day": key.day.isoformat(),
            "parcels": parcels,
            "status": "booking",
            "confirmation": None,
            "at": now_ms,
        }
        self._write(key.day)

    def booked(self, key: PickupKey, confirmation: str, now_ms: int) -> None:
        self.entries[key.id] = {
            **self.entries[key.id],
            "status": "booked",
            "confirmation": confirmation,
            "at": now_ms,
        }
        self._write(key.day)

    def failed(self, key: PickupKey) -> None:
        self.entries.pop(key.id, None)
        self._write(key.day)

    def _write(self, today: date) -> None:
        oldest = (today - timedelta(days=KEEP_DAYS)).isoformat()
        self.entries = {k: e for k, e in self.entries.items() if e["day"] >= oldest}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as out:
            json.dump(self.entries, out, sort_keys=True, indent=1)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.path)
