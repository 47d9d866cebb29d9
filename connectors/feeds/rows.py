"""A feed file's rows: the events kept, the bad rows with their line, the file-level error."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas.events import problems

SOURCE = "erp"  # StockEvent.source of every feed event


class Unreadable(ValueError):  # noqa: N818 - a file-level failure, named for what it says
    """The whole file cannot be read: its message says why and what a good one looks like."""


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int  # 1-based line of the file
    reason: str  # stable code (dead-letter reason detail, report column)
    message: str
    text: str  # the row as it was in the file


@dataclass(slots=True)
class Parsed:
    kind: str  # snapshot, delta, invrpt, desadv, recadv
    events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (line, event)
    bad: list[BadRow] = field(default_factory=list)
    rows: int = 0  # data rows (CSV) or quantity segments (EDIFACT) read

    def keep(self, line: int, text: str, event: dict[str, Any]) -> None:
        """``event`` kept when the ledger would apply it, else a bad row naming its problem."""
        found = problems(event)
        if found:
            self.bad.append(BadRow(line, found[0].reason, found[0].message, text))
        else:
            self.events.append((line, event))
