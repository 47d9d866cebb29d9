"""The feed files already processed, by content hash, kept in a JSON file across restarts.

A file is recorded only after its events and dead letters were acknowledged by Kafka, so a
crash before that processes it again on restart; its events carry the same ids, and the
ledger counts each once.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from schemas.times import iso, now_ms


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class SeenFiles:
    """``digest → {name, status, at}`` in ``path`` (written whole, then renamed over)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: dict[str, dict[str, Any]] = {}
        if path.exists():
            try:
                self._seen = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ValueError(
                    f"{path}: the list of processed feed files cannot be read ({exc}); "
                    "restore it or move it away (files are then processed again, and the "
                    "ledger drops the events it already has)"
                ) from None

    def get(self, key: str) -> dict[str, Any] | None:
        return self._seen.get(key)

    def add(self, key: str, name: str, status: str) -> None:
        self._seen[key] = {"name": name, "status": status, "at": iso(now_ms())}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(tmp, "w", encoding="utf-8") as out:
            json.dump(self._seen, out, indent=1, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)

    def __len__(self) -> int:
        return len(self._seen)
