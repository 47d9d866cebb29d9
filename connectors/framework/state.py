"""What the connectors keep across a restart, as small JSON files in the state folder.

``$STOCKFLOW_STATE_DIR/connectors/<consumer group>/``:

- ``checkpoints.json``: per channel, the polling checkpoint (newest order version seen,
  epoch ms). Written after each poll whose deliveries all went through the intake.
- ``dirty-<channel>.json``: the SKUs whose push failed for good, with the quantity and level
  version that could not be pushed (and, for a channel written per location, the units
  per location). Written on every change (rare: a channel outage).
- ``acked-<channel>.json``: the quantity the channel last acknowledged per SKU. Written
  when the levels offsets are committed, so that after a restart reconciliation still
  covers every SKU pushed before it (the committed levels are not read again).

Each file is replaced atomically (write a temporary file, fsync, rename): a crash leaves
the previous version or the new one, never half of one. An unreadable file is logged with
its path and ignored (the lanes then start empty, as on a first start).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from connectors.framework.types import PushItem

log = logging.getLogger(__name__)


def write_json(path: Path, document: Any) -> None:
    """Replace ``path`` with ``document`` atomically (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w") as fh:
        json.dump(document, fh, separators=(",", ":"), sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def read_json(path: Path) -> Any:
    """``path``'s document, or None when it is missing or unreadable (logged)."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        log.warning("%s unreadable (%s); starting without it", path, exc)
        return None


def _items(channel: str, raw: Any) -> dict[str, PushItem]:
    if not isinstance(raw, dict):
        return {}
    items = {}
    for sku, fields in raw.items():
        try:
            quantity, version, occurred_at = (int(f) for f in fields[:3])
            split = fields[3] if len(fields) > 3 else None
            locations = (
                tuple(sorted((str(k), int(v)) for k, v in split.items()))
                if isinstance(split, dict)
                else None
            )
        except (TypeError, ValueError, AttributeError):
            continue
        items[sku] = PushItem(channel, sku, quantity, version, occurred_at, locations=locations)
    return items


def _dump(items: Mapping[str, PushItem]) -> dict[str, list[Any]]:
    """``[quantity, version, occurred_at]``, and the units per location as a fourth element
    for a channel written per location (a file without it is read as before)."""
    return {
        sku: [i.quantity, i.version, i.occurred_at]
        + ([dict(i.locations)] if i.locations is not None else [])
        for sku, i in items.items()
    }


class ConnectorState:
    """The connectors' files under ``folder`` (one folder per consumer group)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()

    @classmethod
    def for_group(cls, state_dir: Path, group: str) -> ConnectorState:
        return cls(state_dir / "connectors" / group)

    def knows_lanes(self) -> bool:
        """Whether this group has saved what its channels acknowledged (a new or lost state
        folder has not: the channels' figures must then be read again from the levels)."""
        return any(self.folder.glob("acked-*.json"))

    # ---- lanes (engine.LaneStore) ----------------------------------------------------
    def load(self, channel: str) -> tuple[dict[str, PushItem], dict[str, PushItem]]:
        acked = _items(channel, read_json(self.folder / f"acked-{channel}.json"))
        dirty = _items(channel, read_json(self.folder / f"dirty-{channel}.json"))
        if dirty:
            log.info("%s: %d dirty SKUs restored, pushed again at start", channel, len(dirty))
        return acked, dirty

    def save_dirty(self, channel: str, dirty: Mapping[str, PushItem]) -> None:
        with self._lock:
            write_json(self.folder / f"dirty-{channel}.json", _dump(dirty))

    def save_acked(self, channel: str, acked: Mapping[str, PushItem]) -> None:
        with self._lock:
            write_json(self.folder / f"acked-{channel}.json", _dump(acked))

    # ---- polling checkpoints -----------------------------------------------------------
    def checkpoint(self, channel: str) -> int | None:
        raw = read_json(self.folder / "checkpoints.json")
        value = raw.get(channel) if isinstance(raw, dict) else None
        return int(value) if isinstance(value, int) else None

    def save_checkpoint(self, channel: str, checkpoint_ms: int) -> None:
        with self._lock:
            path = self.folder / "checkpoints.json"
            raw = read_json(path)
            document = raw if isinstance(raw, dict) else {}
            document[channel] = int(checkpoint_ms)
            write_json(path, document)
