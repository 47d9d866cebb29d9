"""The order book's part of the demo's day: a multi-line order, a click-and-collect pickup
and an order that waits for an operator's approval; then the order book's summary (orders
by status, one routed order with its route reason).

Orders go in through the worker's ``POST /v1/orders`` and the approval through
``POST /v1/orders/{id}/approve``; the store's events (ready for pickup, picked up) go to
``orders.v1`` as a till's connector would send them. States are read back from
``orders.state.v1``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiohttp
from confluent_kafka import Producer

from deploy.demo.tail import TopicTail
from deploy.local.credentials import operator_token
from schemas.codec import codec_for
from streams.kernel.kafka_config import producer_config
from streams.kernel.produce import produce
from streams.kernel.settings import Settings
from streams.kernel.topics import ORDERS, ORDERS_STATE

STORE = "paris-store"  # a shop with a click-and-collect counter
B2B = "b2b-portal"  # the channel whose big orders wait for a person
B2B_PRICE = 49_900  # minor units a chair on the B2B portal
APPROVAL_ABOVE = 100_000  # order total (minor units) above which a B2B order waits
WAIT_S = 60.0  # longest wait for one transition


def orders_config() -> dict[str, Any]:
    """The ``orders:`` section of the demo's ledger configuration."""
    return {
        "approvals": {"channels": [{"name": B2B, "total_above": APPROVAL_ABOVE}]},
        "routing": {
            "currency": "EUR",
            "default_weight_g": 4000,
            "locations": [
                {"name": "paris-wh", "lat": 48.93, "lon": 2.36, "country": "FR"},
                {
                    "name": "paris-store",
                    "lat": 48.86,
                    "lon": 2.35,
                    "country": "FR",
                    "kind": "store",
                    "ship_from_store": False,
                    "pickup": True,
                },
            ],
            "zones": [{"name": "fr", "countries": ["FR"]}],
            "rates": [{"location": "*", "zone": "fr", "up_to_g": 30000, "cost": 690}],
        },
    }


def order_record(
    order_id: str, kind: str, lines: list[tuple[str, str, int, int]], **fields: Any
) -> Any:
    """An Order record: ``lines`` as (line_id, sku, qty, unit price in cents)."""
    now = int(time.time() * 1000)
    record: dict[str, Any] = {
        "event_id": f"{order_id}:{kind}",
        "type": kind,
        "order_id": order_id,
        "channel": order_id.split(":")[0],
        "lines": [
            {"line_id": lid, "sku": sku, "qty": qty, "unit_price": price, "currency": "EUR"}
            for lid, sku, qty, price in lines
        ],
        "ship_to": None,
        "delivery": "ship",
        "pickup_location": None,
        "customer_ref": None,
        "customer_type": "b2c",
        "risk": None,
        "location": None,
        "note": None,
        "by": "demo",
        "source": "demo",
        "placed_at": now,
        "occurred_at": now,
        "ingested_at": now,
    }
    record.update(fields)
    return record


class OrderStates(TopicTail):
    """The last state of each order of this run (ids containing ``marker``), followed from
    the end of orders.state.v1 as it is when created."""

    def __init__(self, settings: Settings, marker: str) -> None:
        self.marker = marker
        self.last: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        super().__init__(settings, (ORDERS_STATE,), "orders")

    def take(self, name: str, state: dict[str, Any]) -> None:
        if self.marker not in state.get("order_id", ""):
            return
        with self._lock:
            had = self.last.get(state["order_id"])
            if had is None or had["version"] < state["version"]:
                self.last[state["order_id"]] = state

    def get(self, order_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self.last.get(order_id)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self.last)


class OrderDay:
    """Plays the orders of the day against the worker and keeps what the summary shows."""

    def __init__(self, settings: Settings, worker_url: str, chair: str, run: str) -> None:
        self.settings = settings
        self.worker_url = worker_url
        self.chair = chair
        self.desk = f"desk-{run}"
        self.run = run
        self.states = OrderStates(settings, run)
        self.codec = codec_for(settings)
        self.producer = Producer(producer_config(settings))
        self.paths: Counter[str] = Counter()  # how orders and actions went in
        self.headers: dict[str, str] = {}  # the operator's: placing and approving orders
        self.multi = f"api:demo-{run}-multi"
        self.pickup = f"store:demo-{run}-pickup"
        self.approval = f"{B2B}:demo-{run}-big"

    def _send(self, record: dict[str, Any]) -> None:
        value = self.codec.encode(ORDERS.value_schema, record)
        produce(self.producer, ORDERS.name, record["order_id"].encode(), value)
        if self.producer.flush(30) != 0:
            raise RuntimeError(f"orders.v1 did not acknowledge {record['event_id']}")

    async def place(self, http: aiohttp.ClientSession, record: dict[str, Any]) -> None:
        body = {
            k: record[k]
            for k in ("channel", "ship_to", "delivery", "pickup_location", "customer_ref")
            if record[k] is not None
        }
        # the API takes the channel's own id and names the order channel:id itself
        body["order_id"] = record["order_id"].removeprefix(record["channel"] + ":")
        body["lines"] = record["lines"]
        body["customer_type"] = record["customer_type"]
        url = f"{self.worker_url}/v1/orders"
        async with http.post(url, json=body, headers=self.headers) as answer:
            if answer.status == 202:
                self.paths["POST /v1/orders"] += 1
                return
            if answer.status not in (404, 405):
                raise RuntimeError(f"POST /v1/orders refused: {await answer.text()}")
        await asyncio.to_thread(self._send, record)
        self.paths["orders.v1"] += 1

    async def _approve(self, http: aiohttp.ClientSession, order_id: str) -> None:
        url = f"{self.worker_url}/v1/orders/{order_id}/approve"
        deadline = time.monotonic() + WAIT_S
        while True:
            async with http.post(
                url, json={"note": "credit checked"}, headers=self.headers
            ) as answer:
                status = answer.status
                body = await answer.json(content_type=None)
            # 503: a rebalance is moving the order's partition; the API says to retry
            if status != 503 or time.monotonic() > deadline:
                break
            await asyncio.sleep(float(answer.headers.get("Retry-After", "1")))
        if status in (200, 202):
            self.paths["POST /v1/orders/{id}/approve"] += 1
            return
        if status not in (403, 404, 405):
            raise RuntimeError(f"approve refused: {body}")
        if status != 405 and body != {"error": "Not Found"}:  # served, but refused
            error = body.get("error") if isinstance(body, dict) else body
            print(f"[demo] the API did not take the approval ({error}); sent on orders.v1")
        record = order_record(order_id, "approved", [], note="credit checked", by="operator")
        await asyncio.to_thread(self._send, record)
        self.paths["orders.v1 (approved)"] += 1

    async def until(self, order_id: str, done: Callable[[str], bool], what: str) -> str:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            state = self.states.get(order_id)
            if state is not None and done(state["status"]):
                return str(state["status"])
            await asyncio.sleep(0.3)
        state = self.states.get(order_id)
        raise RuntimeError(
            f"timed out after {WAIT_S:.0f} s waiting for {order_id} {what} (now "
            f"{state['status'] if state else 'no state'}); see the worker's log"
        )

    async def play(self, http: aiohttp.ClientSession, post_events: Any) -> list[str]:
        """The orders of the day; returns one line per step for the board."""
        token = await asyncio.to_thread(operator_token, self.settings)
        self.headers = {"Authorization": f"Bearer {token}"}
        said = []
        await post_events(
            [
                {
                    "event_id": f"demo-{self.run}-desk-{loc}",
                    "type": "stock_count",
                    "sku": self.desk,
                    "qty": qty,
                    "location": loc,
                }
                for loc, qty in (("paris-wh", 8), (STORE, 4))
            ]
        )
        await asyncio.sleep(2)  # the order agent sees the desks in the stock levels
        lyon = {"country": "FR", "postal_code": "69002", "lat": 45.75, "lon": 4.83}
        lines = [("1", self.chair, 2, 12_900), ("2", self.desk, 1, 34_900)]
        await self.place(http, order_record(self.multi, "placed", lines, ship_to=lyon))
        status = await self.until(self.multi, lambda s: s not in ("received", "routed"), "routed")
        said.append(f"multi-line order {self.multi}: {status}")

        pickup = order_record(
            self.pickup,
            "placed",
            [("1", self.desk, 1, 34_900)],
            delivery="pickup",
            pickup_location=STORE,
        )
        await self.place(http, pickup)
        await self.until(self.pickup, lambda s: s == "allocated", "allocated")
        for kind in ("ready_for_pickup", "picked_up"):
            await asyncio.to_thread(self._send, order_record(self.pickup, kind, [], by=STORE))
            await self.until(self.pickup, kind.__eq__, kind)
        said.append(f"pickup {self.pickup} at {STORE}: picked_up")

        big = order_record(
            self.approval,
            "placed",
            [("1", self.chair, 3, B2B_PRICE)],
            ship_to=lyon,
            customer_ref=f"acme-{self.run}",
            customer_type="b2b",
        )
        await self.place(http, big)
        status = await self.until(
            self.approval, lambda s: s not in ("received", "routed"), "decided"
        )
        if status == "pending_approval":
            await self._approve(http, self.approval)
            status = await self.until(self.approval, lambda s: s == "released", "approved")
            said.append(f"B2B order {self.approval}: waited for approval, approved -> {status}")
        else:
            said.append(f"B2B order {self.approval}: {status} (no approval rule in this build)")
        return said

    def summary(self) -> list[str]:
        """The order book at the end of the day: this run's orders by status, one routed
        order with its route reason."""
        states = self.states.snapshot()
        counts = Counter(s["status"] for s in states.values())
        out = [
            f"order book: {len(states)} orders, by status "
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            + f" (in through {', '.join(f'{k} x{v}' for k, v in sorted(self.paths.items()))})"
        ]
        routed = states.get(self.multi) or next(
            (s for s in states.values() if s.get("route_reason")), None
        )
        if routed is not None:
            where = ", ".join(
                f"{ln['sku']} x{ln['qty']} from {ln['location']}" for ln in routed["lines"]
            )
            out.append(f"  routed order {routed['order_id']}: {routed['status']}; {where}")
            out.append(f"  route reason: {routed.get('route_reason') or '-'}")
        return out

    def close(self) -> None:
        self.states.stop()
        self.producer.flush(10)
