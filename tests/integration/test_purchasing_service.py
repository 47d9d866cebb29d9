"""The purchasing service on the real stack: proposals on their compacted topic, purchase
orders raising ``incoming`` at a real ledger worker, receipts from the ERP lowering it,
a late order's alert, restarts (state from the topic, an order caught between its send and
its record sent again), the till's trigger with tokens of the real token topic, and the
ordering page's SKU view from a real sink's ClickHouse tables.

The planner and the sender are this file's own functions (fixed proposals; an outbox that
records what it sent and can fail or hang): Kafka, the worker and ClickHouse are real.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Collection, Iterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from schemas.codec import single_object_codec
from streams.kernel.access.command import create
from streams.kernel.access.store import publish
from streams.kernel.access.tokens import REPLENISH, TokenRecord
from streams.kernel.settings import Settings
from streams.kernel.topics import REPLENISHMENT_PROPOSALS, STOCK_ALERTS, STOCK_EVENTS
from streams.purchasing import lifecycle
from streams.purchasing.api import TRIGGER, add_routes
from streams.purchasing.run import SERVICE_KEY, attach
from streams.purchasing.sending import SendError, SendReceipt
from streams.purchasing.service import PurchasingService
from streams.replenishment.model import AutoSend, ReplenishmentConfig, SendVia, Supplier
from tests.support.kafka import produce_events, read_topic, stock_event
from tests.support.ports import free_port
from tests.support.processes import track
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:8]
CODEC = single_object_codec()
TODAY = datetime.now(UTC).date()


def supplier(name: str, auto: bool) -> Supplier:
    return Supplier(
        id=f"{name}-{RUN}",
        name=name.title(),
        send_via=SendVia.EMAIL,
        lead_time_days=3,
        auto_send=AutoSend(max_total=100_000 if auto else 0, max_change_percent=50),
    )


CONFIG = ReplenishmentConfig(
    suppliers={s.id: s for s in (supplier("acme", True), supplier("bolt", False))},
    plan_every_seconds=3600,
)


def proposal(
    name: str, supplier_name: str, location: str, lines: Mapping[str, int], *, auto: bool
) -> dict[str, Any]:
    """A Proposal-shaped dict as a planner returns it (status proposed, version 1)."""
    return {
        "proposal_id": f"PO-{name}-{RUN}",
        "version": 1,
        "status": "proposed",
        "supplier": f"{supplier_name}-{RUN}",
        "location": location,
        "currency": "EUR",
        "total": 0,
        "lines": [
            {
                "sku": sku,
                "supplier_sku": f"S-{sku}",
                "qty": qty,
                "proposed_qty": qty,
                "pack_size": 1,
                "moq": 0,
                "unit_cost": 500,
                "policy": "min_max",
                "reason": "available 0 <= min 2: up to max",
            }
            for sku, qty in lines.items()
        ],
        "auto": auto,
        "review_reason": None if auto else "supplier needs review",
        "send_via": None,
        "send_ref": None,
        "expected_on": lifecycle.day_number(TODAY + timedelta(days=3)),
        "by": "planner",
        "note": None,
        "created_at": 0,
        "updated_at": 0,
    }


class Planner:
    """Returns the next prepared plan at each call (filtered to the asked locations)."""

    def __init__(self, *plans: list[dict[str, Any]]) -> None:
        self.plans = list(plans)

    async def __call__(
        self,
        settings: Settings,
        config: ReplenishmentConfig,
        *,
        today: date,
        locations: Collection[str] | None = None,
    ) -> list[dict[str, Any]]:
        plan = self.plans.pop(0) if self.plans else []
        return [p for p in plan if locations is None or p["location"] in locations]


class BlockingPlanner:
    """A plain function like the ClickHouse planner (run in a thread by the service), told
    the ids in use."""

    def __init__(self, plan: list[dict[str, Any]]) -> None:
        self.plan = plan
        self.taken: set[str] | None = None

    def __call__(
        self,
        settings: Settings,
        config: ReplenishmentConfig,
        *,
        today: date,
        locations: Collection[str] | None = None,
        taken_ids: Collection[str] | None = None,
    ) -> list[dict[str, Any]]:
        self.taken = set(taken_ids or ())
        return [p for p in self.plan if locations is None or p["location"] in locations]


class Outbox:
    """A supplier's inbox: records each purchase order it was sent; ``fail_next`` makes the
    next sends fail, ``hang`` makes them wait forever (a process dying mid-send)."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.attempts = 0
        self.failures: list[SendError] = []
        self.hang = False
        self.reached = asyncio.Event()

    def fail_next(self, n: int, *, retryable: bool) -> None:
        self.failures = [
            SendError(
                f"SMTP 451 try later ({i})" if retryable else "SMTP 550 no such mailbox",
                retryable=retryable,
            )
            for i in range(n)
        ]

    async def __call__(
        self, proposal: Mapping[str, Any], supplier: Supplier, settings: Settings
    ) -> SendReceipt:
        self.attempts += 1
        self.reached.set()
        if self.hang:
            await asyncio.Event().wait()
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(proposal["proposal_id"])
        return SendReceipt("email", f"<{proposal['proposal_id']}@stockflow>")


@asynccontextmanager
async def running(
    settings: Settings, planner: Planner, outbox: Outbox, **options: Any
) -> AsyncIterator[PurchasingService]:
    options.setdefault("receipts_group", f"test-purchasing-{RUN}-{uuid.uuid4().hex[:6]}")
    service = PurchasingService(
        settings,
        CONFIG,
        planner=planner,
        sender=outbox,
        receipts_reset="latest",
        send_backoff_s=0.05,
        late_every_s=3600,
        **options,
    )
    await service.start()
    await asyncio.wait_for(service.receipts_ready.wait(), 60)
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture(scope="module")
def worker(local_stack: Settings) -> Iterator[WorkerProcess]:
    process = WorkerProcess(f"po-{RUN}", free_port(), local_stack.state_dir / "logs")
    process.start()
    yield process
    process.stop()


async def figure(worker: WorkerProcess, sku: str, location: str, name: str, want: int) -> None:
    """Wait until the worker's ``name`` of ``sku`` at ``location`` is ``want``."""
    deadline = time.monotonic() + 30
    seen = None
    while time.monotonic() < deadline:
        stock = await asyncio.to_thread(worker.stock, sku)
        seen = (stock or {}).get("locations", {}).get(location, {}).get(name)
        if seen == want:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{sku} at {location}: {name} is {seen}, expected {want}")


async def until(check: Any, what: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def versions_on_topic(settings: Settings, proposal_id: str, count: int) -> list[dict[str, Any]]:
    return read_topic(
        settings,
        CODEC,
        REPLENISHMENT_PROPOSALS,
        lambda r: r.get("proposal_id") == proposal_id,
        until=lambda found: len(found) >= count,
        timeout=30,
    )


def test_a_plan_sends_the_automatic_order_and_receipts_and_cancellation_bring_incoming_down(
    local_stack: Settings, worker: WorkerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """Given a worker and a plan of a small order for acme (auto) and a large one for bolt
    (review), and acme's mail server refusing once with a retryable error, when the service
    plans the store, then acme's order is sent after one retry (versions 1 proposed,
    2 approved, 3 sent on the topic) and incoming rose by its 12 units at the worker, bolt's
    waits as proposed. When a new plan comes, bolt's old proposal is superseded and the new
    one, approved while bolt's mailbox refuses for good, is send_failed with the reason;
    approved again, it is sent and incoming rises by 24. When its expected day has passed,
    one po_late alert is raised for each open order, once, with a purchase_late event per
    open line to the ledger (and the purchase_ordered events carried the expected day).
    When the ERP receives 5 then 9
    chairs against acme's order, it is partially received then received with the 2 extra
    units noted, and incoming is back to 0; when the rest of bolt's order is cancelled,
    its incoming is back to 0 too."""
    loc = f"lyon-{RUN}"
    chair, desk = f"chair-{RUN}", f"desk-{RUN}"
    small = proposal("acme-1", "acme", loc, {chair: 12}, auto=True)
    large = proposal("bolt-1", "bolt", loc, {desk: 24}, auto=False)
    planner = Planner([small, large], [dict(large, lines=[dict(large["lines"][0])])])
    outbox = Outbox()

    async def scenario() -> None:
        async with running(local_stack, planner, outbox) as service:
            outbox.fail_next(1, retryable=True)
            made = {p["proposal_id"]: p for p in await service.plan(location=loc)}
            a, b = small["proposal_id"], large["proposal_id"]
            assert made[a]["status"] == "sent" and made[a]["send_ref"] == f"<{a}@stockflow>"
            assert made[b]["status"] == "proposed"
            assert (outbox.sent, outbox.attempts) == ([a], 2)
            await figure(worker, chair, loc, "incoming", 12)

            again = await service.plan(location=loc)
            b2 = again[0]["proposal_id"]
            assert b2 == f"{b}-2" and service.get(b)["status"] == "superseded"  # type: ignore[index]
            outbox.fail_next(1, retryable=False)
            failed = await service.approve(b2, by="ann")
            assert failed["status"] == "send_failed" and "550" in failed["note"]
            done = await service.approve(b2, by="ann")
            assert done["status"] == "sent" and done["by"] == "ann"
            await figure(worker, desk, loc, "incoming", 24)

            service.today = lambda: TODAY + timedelta(days=5)
            first = await service.check_lateness()
            mine = {a, b2}  # the topic holds earlier runs' orders too
            assert {x["event_id"] for x in first} & {a, b2} == mine
            assert await service.check_lateness() == []

            produce_events(
                local_stack,
                CODEC,
                [
                    stock_event(
                        f"rcv1-{RUN}", "receipt", chair, 5, location=loc, source="erp", source_ref=a
                    )
                ],
            )
            await until(
                lambda: service.get(a)["status"] == "partially_received", "a partial receipt"
            )  # type: ignore[index]
            await figure(worker, chair, loc, "incoming", 7)
            produce_events(
                local_stack,
                CODEC,
                [
                    stock_event(
                        f"rcv2-{RUN}", "receipt", chair, 9, location=loc, source="erp", source_ref=a
                    )
                ],
            )
            await until(lambda: service.get(a)["status"] == "received", "the full receipt")  # type: ignore[index]
            received = service.get(a)
            assert received is not None and received["lines"][0]["received_qty"] == 14
            assert "over-receipt: 2 units" in received["note"]
            await figure(worker, chair, loc, "incoming", 0)
            assert (await figure(worker, chair, loc, "on_hand", 14)) is None

            cancelled = await service.cancel_rest(b2, by="ann")
            assert (
                cancelled["status"] == "cancelled" and cancelled["lines"][0]["cancelled_qty"] == 24
            )
            await figure(worker, desk, loc, "incoming", 0)

    asyncio.run(scenario())
    # its own records, read back while it followed the topic, were the versions it kept
    assert not [r for r in caplog.records if "written differently" in r.getMessage()]
    a = small["proposal_id"]
    history = versions_on_topic(local_stack, a, 5)
    assert [(r["version"], r["status"]) for r in history] == [
        (1, "proposed"),
        (2, "approved"),
        (3, "sent"),
        (4, "partially_received"),
        (5, "received"),
    ]
    alerts = read_topic(
        local_stack,
        CODEC,
        STOCK_ALERTS,
        lambda r: r["alert_id"] in (f"po_late|{a}", f"po_late|{large['proposal_id']}-2"),
        until=lambda found: len(found) >= 2,
        timeout=30,
    )
    assert sorted(x["kind"] for x in alerts) == ["po_late", "po_late"]
    # the ledger is told of each late line (for the pre-orders waiting on it), and each
    # purchase_ordered carried its order's expected day (the pre-orders' promised day)
    b2 = f"{large['proposal_id']}-2"
    wanted = {f"po|{a}|chair-{RUN}|late", f"po|{b2}|desk-{RUN}|late", f"po|{a}|chair-{RUN}"}
    events = read_topic(
        local_stack,
        CODEC,
        STOCK_EVENTS,
        lambda r: r.get("event_id") in wanted,
        until=lambda found: len({r["event_id"] for r in found}) >= 3,
        timeout=30,
    )
    told = {(r["event_id"], r["type"], r["qty"], r["expected_on"]) for r in events}
    expected = lifecycle.day_number(TODAY + timedelta(days=3))
    assert told == {
        (f"po|{a}|chair-{RUN}", "purchase_ordered", 12, expected),
        (f"po|{a}|chair-{RUN}|late", "purchase_late", 12, None),
        (f"po|{b2}|desk-{RUN}|late", "purchase_late", 24, None),
    }


def test_a_restarted_service_restores_its_orders_counts_receipts_and_resends_one_caught_mid_send(
    local_stack: Settings, worker: WorkerProcess
) -> None:
    """Given a proposal edited by a buyer, another approved and sent, and a third whose
    approval was under way when the process died (the mail server never answered), and
    the ERP receiving the sent order while the service was down, when the service starts
    again, then every proposal is at the version it had, the receipt is counted (the sent
    order is received), and the one left approved is sent again: it is sent, and incoming
    rose once at the worker."""
    loc = f"nice-{RUN}"
    lamp, rug, mat = f"lamp-{RUN}", f"rug-{RUN}", f"mat-{RUN}"
    kept = proposal("bolt-k", "bolt", loc, {lamp: 6}, auto=False)
    hung = proposal("acme-h", "acme", loc, {rug: 4}, auto=False)
    done = proposal("acme-d", "acme", loc, {mat: 3}, auto=True)
    group = f"test-purchasing-restart-{RUN}"
    outbox = Outbox()

    async def scenario() -> None:
        async with running(
            local_stack, Planner([kept, hung, done]), outbox, receipts_group=group
        ) as first:
            await first.plan(location=loc)
            edited = await first.edit_line(kept["proposal_id"], lamp, 8, by="bob")
            outbox.hang = True
            outbox.reached.clear()
            sending = asyncio.create_task(first.approve(hung["proposal_id"], by="ann"))
            await asyncio.wait_for(outbox.reached.wait(), 10)
            sending.cancel()  # the process dies while the supplier's server has it
            before = {p["proposal_id"]: p for p in first.proposals(location=loc)}
        assert before[hung["proposal_id"]]["status"] == "approved"
        assert before[done["proposal_id"]]["status"] == "sent"
        await figure(worker, mat, loc, "incoming", 3)
        receipt = stock_event(
            f"rcv-mat-{RUN}",
            "receipt",
            mat,
            3,
            location=loc,
            source="erp",
            source_ref=done["proposal_id"],
        )
        produce_events(local_stack, CODEC, [receipt])
        await figure(worker, mat, loc, "incoming", 0)  # the ledger has it, the service is down
        outbox.hang = False
        async with running(local_stack, Planner(), outbox, receipts_group=group) as second:
            assert second.get(kept["proposal_id"]) == edited
            after = second.get(hung["proposal_id"])
            assert after is not None and after["status"] == "sent"
            assert after["version"] == before[hung["proposal_id"]]["version"] + 1
            assert outbox.sent == [done["proposal_id"], hung["proposal_id"]]
            await figure(worker, rug, loc, "incoming", 4)
            await until(
                lambda: second.get(done["proposal_id"])["status"] == "received",
                "the receipt made while down",
            )  # type: ignore[index]
            assert (
                second.get(done["proposal_id"])["version"]
                == before[done["proposal_id"]]["version"] + 1
            )  # type: ignore[index]

    asyncio.run(scenario())


CREATED: list[TokenRecord] = []


@pytest.fixture(scope="module", autouse=True)
def revoke_at_the_end(local_stack: Settings) -> Iterator[None]:
    yield
    if CREATED:
        publish(local_stack, [r.revoke() for r in CREATED])


def call(url: str, body: Any, token: str | None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_till_of_a_store_triggers_a_plan_for_its_own_store_only(
    local_stack: Settings,
) -> None:
    """Given a token made with `stockflow token create` for the scope replenish and the
    location of the Lyon store (in the real token topic), when Lyon's till posts
    {"store": lyon} to the service hosted in a web application, then it gets 200 and the
    plan's proposal for Lyon; for Paris, 403; without a token, 401; the application's
    cleanup stops the service."""
    lyon, paris = f"lyon-till-{RUN}", f"paris-till-{RUN}"
    secret, record = create(local_stack, f"till-{RUN}", [REPLENISH], locations=[lyon])
    CREATED.append(record)
    planned = proposal("bolt-till", "bolt", lyon, {f"mug-{RUN}": 6}, auto=False)
    port = free_port()

    async def scenario() -> None:
        planner = BlockingPlanner([planned])
        service = PurchasingService(local_stack, CONFIG, planner=planner, sender=Outbox())
        app = web.Application()
        attach(app, service, plan=False)  # as `stockflow web` hosts it
        add_routes(app, service)
        runner = web.AppRunner(app)
        await runner.setup()  # starts the service and the token follower
        await web.TCPSite(runner, "127.0.0.1", port).start()
        assert app[SERVICE_KEY] is service and service.ready.is_set()
        try:
            url = f"http://127.0.0.1:{port}{TRIGGER}"
            status, body = await asyncio.to_thread(call, url, {"store": lyon}, secret)
            assert status == 200, body
            assert [p["proposal_id"] for p in body["proposals"]] == [planned["proposal_id"]]
            assert body["proposals"][0]["by"] == f"till:till-{RUN}"
            assert planner.taken == {p["proposal_id"] for p in service.proposals()} - {
                planned["proposal_id"]
            }
            status, body = await asyncio.to_thread(call, url, {"store": paris}, secret)
            assert status == 403, body
            assert (await asyncio.to_thread(call, url, {"store": lyon}, None))[0] == 401
        finally:
            await runner.cleanup()
        assert not service.ready.is_set()

    asyncio.run(scenario())


def test_the_sku_view_shows_position_and_movements_from_clickhouse(
    local_stack: Settings, worker: WorkerProcess
) -> None:
    """Given a real sink writing to its own database from now on, when the ERP receives 10
    vases at a store and 4 more are on order, then the SKU view has on hand 10, incoming
    4 and both movements, newest first."""
    from tests.integration.sink_support import (
        end_offsets,
        running_sink,
        set_group_offsets,
        sink_settings,
        wait_rows,
    )

    settings = sink_settings(local_stack, f"po_{RUN}")
    group = f"test-po-sink-{RUN}"
    set_group_offsets(settings, group, end_offsets(settings))
    loc, vase = f"metz-{RUN}", f"vase-{RUN}"
    with running_sink(settings, CODEC, group):
        produce_events(
            local_stack,
            CODEC,
            [
                stock_event(f"v1-{RUN}", "receipt", vase, 10, location=loc, source="erp"),
                stock_event(
                    f"v2-{RUN}",
                    "purchase_ordered",
                    vase,
                    4,
                    location=loc,
                    source="erp",
                    source_ref="PO-x",
                ),
            ],
        )
        wait_rows(settings, "stock_movements", "sku = %(sku)s", {"sku": vase}, 2)

    async def scenario() -> dict[str, Any]:
        service = PurchasingService(settings, CONFIG, planner=Planner(), sender=Outbox())
        return await service.sku_view(vase, loc)

    view = asyncio.run(scenario())
    assert view["position"] == {
        "on_hand": 10,
        "reserved": 0,
        "unsellable": 0,
        "incoming": 4,
        "available": 10,
    }
    assert [m["type"] for m in view["movements"]] == ["purchase_ordered", "receipt"]
    assert len(view["daily_sales"]) == 28 and view["purchase_orders"] == []


def test_replenish_run_plans_at_start_and_stops_cleanly_on_sigterm(
    local_stack: Settings, tmp_path: Path
) -> None:
    """Given `stockflow replenish run` started as an operator would (no configuration: no
    supplier), when it has read the proposals and made its first plan, and SIGTERM comes,
    then it logs that it stopped and exits 0 within 30 s."""
    log_path = tmp_path / "replenish-run.log"
    env = {**os.environ, "STOCKFLOW_CONFIG": ""}
    with log_path.open("wb") as out:
        proc = track(
            subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "replenish", "run"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        )
    deadline = time.monotonic() + 60
    while "plan made 0 proposal(s)" not in log_path.read_text():
        assert proc.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.2)
    assert "proposal(s) read from replenishment.proposals.v1" in log_path.read_text()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, log_path.read_text()
    assert "purchasing: stopped" in log_path.read_text()
