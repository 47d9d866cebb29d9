"""An in-memory stand-in of the purchasing service for the page's unit tests: the same
methods, the same refusals (pack size and MOQ as ValueError, moves a status forbids), no
Kafka. The browser test runs the real service."""

from __future__ import annotations

import copy
from typing import Any

T0 = 1_790_000_000_000  # ms


def line(sku: str, qty: int, *, pack: int = 6, moq: int = 12, cost: int = 2000) -> dict[str, Any]:
    return {
        "sku": sku,
        "supplier_sku": f"S-{sku}",
        "qty": qty,
        "proposed_qty": qty,
        "pack_size": pack,
        "moq": moq,
        "unit_cost": cost,
        "policy": "reorder_point",
        "available": 3,
        "incoming": 0,
        "projected_available": -4,
        "forecast_lead_time": 7.2,
        "safety_stock": 4,
        "forecast_method": "ets_weekly",
        "reason": "projected 3 - 7.2 over 5 days below reorder point 11",
        "last_order_qty": None,
        "received_qty": 0,
        "cancelled_qty": 0,
    }


def proposal(
    proposal_id: str, *lines: dict[str, Any], supplier: str = "acme", location: str = "paris"
) -> dict[str, Any]:
    return {
        "proposal_id": proposal_id,
        "version": 1,
        "status": "proposed",
        "supplier": supplier,
        "location": location,
        "currency": "EUR",
        "total": sum(x["qty"] * x["unit_cost"] for x in lines),
        "lines": list(lines),
        "auto": False,
        "review_reason": "total above 1,000.00 EUR",
        "send_via": "email",
        "send_ref": None,
        "expected_on": 20427,
        "by": "planner",
        "note": None,
        "created_at": T0,
        "updated_at": T0,
    }


class FakePurchasing:
    def __init__(self, *proposals: dict[str, Any]) -> None:
        self.state = {p["proposal_id"]: copy.deepcopy(p) for p in proposals}
        self.calls: list[tuple[str, ...]] = []
        self.fail_sending = False

    def proposals(
        self, status: str | None = None, supplier: str | None = None, location: str | None = None
    ) -> list[dict[str, Any]]:
        return [
            p
            for p in self.state.values()
            if status in (None, p["status"])
            and supplier in (None, p["supplier"])
            and location in (None, p["location"])
        ]

    def get(self, proposal_id: str) -> dict[str, Any] | None:
        return self.state.get(proposal_id)

    def _next(self, proposal_id: str, by: str, allowed: set[str], action: str) -> dict[str, Any]:
        p = self.state[proposal_id]
        if p["status"] not in allowed:
            raise ValueError(f"{proposal_id} is {p['status']}: {action} is not allowed")
        p["version"] += 1
        p["by"] = by
        p["updated_at"] += 1000
        return p

    async def edit_line(self, proposal_id: str, sku: str, qty: int, by: str) -> dict[str, Any]:
        self.calls.append(("edit_line", proposal_id, sku, str(qty), by))
        found = next(x for x in self.state[proposal_id]["lines"] if x["sku"] == sku)
        if qty and (qty % found["pack_size"] or qty < found["moq"]):
            raise ValueError(
                f"{sku}: {qty} is not a multiple of the pack size {found['pack_size']} "
                f"at or above the minimum order quantity {found['moq']}"
            )
        p = self._next(proposal_id, by, {"proposed"}, "editing")
        found["qty"] = qty
        p["total"] = sum(x["qty"] * x["unit_cost"] for x in p["lines"])
        return p

    async def approve(self, proposal_id: str, by: str) -> dict[str, Any]:
        self.calls.append(("approve", proposal_id, by))
        p = self._next(proposal_id, by, {"proposed", "send_failed"}, "approving")
        p["status"] = "send_failed" if self.fail_sending else "sent"
        p["note"] = "SMTP refused the message" if self.fail_sending else None
        return p

    async def reject(self, proposal_id: str, by: str, note: str | None = None) -> dict[str, Any]:
        self.calls.append(("reject", proposal_id, by, note or ""))
        p = self._next(proposal_id, by, {"proposed", "send_failed"}, "rejecting")
        p["status"], p["note"] = "rejected", note
        return p

    async def cancel_rest(self, proposal_id: str, by: str) -> dict[str, Any]:
        self.calls.append(("cancel_rest", proposal_id, by))
        p = self._next(proposal_id, by, {"sent", "partially_received"}, "cancelling")
        p["status"] = "cancelled"
        return p

    async def sku_view(self, sku: str, location: str) -> dict[str, Any]:
        return {
            "sku": sku,
            "location": location,
            "position": {
                "on_hand": 5,
                "reserved": 1,
                "unsellable": 0,
                "incoming": 24,
                "available": 4,
            },
            "daily_sales": [{"day": f"2026-11-{d:02d}", "units": d % 4} for d in range(1, 29)],
            "movements": [
                {
                    "type": "receipt",
                    "event_id": "e1",
                    "delta_on_hand": 5,
                    "delta_reserved": 0,
                    "delta_incoming": 0,
                    "on_hand_after": 5,
                    "occurred_at": "2026-11-28T10:00:00Z",
                    "source_ref": None,
                    "channel": None,
                }
            ],
            "forecast": {"method": "ets_weekly", "daily": [2.0] * 14, "sigma_daily": 1.0},
            "purchase_orders": [],
        }
