"""Order acceptance on marketplaces: the interface the channels code against (the gate that
reads the ledger's decisions and calls these actions lives here too)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class AwaitedLine:
    line_id: str  # the marketplace's line id
    sku: str
    qty: int


@dataclass(frozen=True, slots=True)
class AwaitedOrder:
    channel: str  # the channel name in the connectors config
    account: str  # the account part of the event ids
    order_id: str  # the marketplace's order id
    lines: tuple[AwaitedLine, ...]
    deadline_ms: int | None  # the marketplace's acceptance deadline, epoch ms


class AcceptanceActions(Protocol):
    channel: str
    account: str

    async def accept(self, order: AwaitedOrder) -> None: ...

    async def refuse(self, order: AwaitedOrder, reason: str) -> None: ...


class AcceptanceGate(Protocol):
    def expect(self, order: AwaitedOrder) -> None: ...
