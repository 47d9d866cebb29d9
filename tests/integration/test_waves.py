"""Waves on the real stack: allocated orders from the worker's order book waved by the wave
service, picked through its API with a shortage, the missing units routed again by the
order book, stock corrected by the ledger, an alert raised, documents written.

Sizes: ``STOCKFLOW_WAVES_ORDERS`` orders (default 8) of one or two lines."""

from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from schemas.codec import single_object_codec
from streams.fulfilment.config import parse
from streams.kernel.access.command import create
from streams.kernel.access.store import publish
from streams.kernel.access.tokens import FULFILMENT_WRITE, ORDERS_READ, TokenRecord
from streams.kernel.settings import Settings
from streams.kernel.topics import (
    FULFILMENT_WAVES,
    STOCK_ALERTS,
    STOCK_DEADLETTER,
    STOCKFLOW_AUDIT,
)
from streams.picking.api import add_routes
from streams.picking.service import WaveService
from tests.support.kafka import produce_events, produce_raw, read_topic, stock_event, wait_for
from tests.support.orders import StateFollower, group_to_end, input_specs, order_record, send_orders
from tests.support.ports import free_port
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.integration]

RUN = uuid.uuid4().hex[:8]
CODEC = single_object_codec()
WH, STORE = f"wp-{RUN}", f"wl-{RUN}"
A, B = f"mug-{RUN}", f"bowl-{RUN}"
N = int(os.environ.get("STOCKFLOW_WAVES_ORDERS", "8"))
CREATED: list[TokenRecord] = []


def _orders() -> list[dict[str, Any]]:
    """N orders at the warehouse: even ones 1 mug + 1 bowl, odd ones 2 mugs."""
    out = []
    for i in range(N):
        lines = [("1", A, 1), ("2", B, 1)] if i % 2 == 0 else [("1", A, 2)]
        ship_to = {"country": "FR", "postal_code": "75011", "lat": None, "lon": None}
        out.append(order_record(f"web:w{RUN}-{i}", "web", lines, ship_to=ship_to))
    return out


@pytest.fixture(scope="module")
def allocated(
    local_stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[WorkerProcess, StateFollower]]:
    """A worker (ledger + order book) on two locations of this run, stock at the warehouse
    only, and the N orders allocated there."""
    app_id = f"waves-{RUN}"
    group_to_end(local_stack, app_id, input_specs())
    config = tmp_path_factory.mktemp("waves") / "config.yaml"
    config.write_text(f"default_location: {WH}\nlocations:\n  - name: {WH}\n  - name: {STORE}\n")
    worker = WorkerProcess(
        app_id, free_port(), local_stack.state_dir / "logs", STOCKFLOW_CONFIG=str(config)
    )
    worker.start()
    mugs = sum(sum(q for _, s, q in _lines(o) if s == A) for o in _orders())
    produce_events(
        local_stack,
        CODEC,
        [
            stock_event(f"{A}-count", "stock_count", A, mugs, location=WH),
            stock_event(f"{B}-count", "stock_count", B, N, location=WH),
        ],
    )
    wait_for(
        lambda: ((worker.stock(A) or {}).get("locations", {}).get(WH, {}).get("on_hand")) == mugs,
        timeout=60,
        what="mugs counted",
    )
    wait_for(lambda: worker.stock(B) is not None, timeout=60, what="bowls counted")
    follower = StateFollower(local_stack, CODEC, f"w{RUN}-")
    with follower:
        send_orders(local_stack, CODEC, _orders())
        ids = {o["order_id"] for o in _orders()}
        follower.wait(ids, frozenset({"allocated"}), timeout=90, what="orders allocated")
        yield worker, follower
    worker.stop()
    if CREATED:
        publish(local_stack, [r.revoke() for r in CREATED])


def _lines(order: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [(ln["line_id"], ln["sku"], ln["qty"]) for ln in order["lines"]]


def call(method: str, url: str, body: Any, token: str | None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            raw = answer.read()
            kind = answer.headers.get("Content-Type", "")
            return answer.status, json.loads(raw) if "json" in kind else raw
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_waves_are_planned_picked_and_a_short_pick_is_routed_again(
    local_stack: Settings,
    allocated: tuple[WorkerProcess, StateFollower],
    tmp_path: Path,
) -> None:
    """Given N orders allocated at the warehouse, a picker's token (fulfilment:write) and a
    reader's (orders:read)
    When the wave service plans the warehouse (max 3 orders a wave, bins configured), and
    the picker confirms every line in full but the first order's mugs, found 0 of 1
    Then every line is in exactly one wave and planning again makes none; the reader may
    not confirm (403), no token gets 401, a bad body 400, another quantity on a confirmed
    line 409; the first order keeps its bowl, its missing mug is a new line reserved at
    the store (counted meanwhile), the warehouse's mug on_hand and reserved both went down
    by 1, a short_pick alert names the order; the store's wave holds the new line; the
    documents are written and served as PDF; an unreadable record on the waves topic is
    dead-lettered and the service goes on; every write is in the access audit."""
    worker, follower = allocated
    picker, picker_rec = create(local_stack, f"picker-{RUN}", [FULFILMENT_WRITE])
    reader, reader_rec = create(local_stack, f"reader-{RUN}", [ORDERS_READ])
    CREATED.extend([picker_rec, reader_rec])
    config = parse(
        {"max_orders_per_wave": 3, "split_single_line": False,
         "bins": {WH: {A: "B-10-1", B: "A-2-3"}}}
    )  # fmt: skip
    first = f"web:w{RUN}-0"
    mugs = sum(sum(q for _, s, q in _lines(o) if s == A) for o in _orders())
    produce_raw(local_stack, [(b"poison", b"not a wave")], FULFILMENT_WAVES)
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    async def scenario() -> None:
        service = WaveService(local_stack, config, documents=tmp_path / "docs")
        await service.start()
        app = web.Application()
        add_routes(app, service)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()

        async def http(method: str, path: str, body: Any, token: str | None) -> Any:
            return await asyncio.to_thread(call, method, base + path, body, token)

        try:
            status, body = await http("POST", "/v1/waves/plan", {"location": WH}, picker)
            assert status == 200, body
            waves = body["waves"]
            assert len(waves) == -(-N // 3)
            waved = [(o["order_id"], ln["line_id"]) for w in waves for o in w["orders"]
                     for ln in o["lines"]]  # fmt: skip
            expected = [(o["order_id"], ln[0]) for o in _orders() for ln in _lines(o)]
            assert sorted(waved) == sorted(expected)
            again = await http("POST", "/v1/waves/plan", {"location": WH}, picker)
            assert again == (200, {"waves": []})
            wave = next(w for w in waves if first in [o["order_id"] for o in w["orders"]])
            path = f"/v1/waves/{wave['wave_id']}/picks"
            one = {"order_id": first, "line_id": "2", "picked": 1}
            assert (await http("POST", path, one, None))[0] == 401
            assert (await http("POST", path, one, reader))[0] == 403
            assert (await http("POST", path, {"picks": [{"order_id": first}]}, picker))[0] == 400
            # the store has mugs before the shortage is found: the missing one goes there
            store = stock_event(f"{A}-store", "stock_count", A, 3, location=STORE)
            produce_events(local_stack, CODEC, [store])
            wait_for(
                lambda: ((worker.stock(A) or {}).get("locations", {}).get(STORE, {})
                         .get("on_hand")) == 3,
                timeout=60,
                what="the store's mugs counted",
            )  # fmt: skip
            for w in waves:
                picks = [
                    {"order_id": o["order_id"], "line_id": ln["line_id"],
                     "picked": 0 if (o["order_id"], ln["line_id"]) == (first, "1") else ln["qty"]}
                    for o in w["orders"] for ln in o["lines"]
                ]  # fmt: skip
                status, body = await http("POST", f"/v1/waves/{w['wave_id']}/picks",
                                          {"picks": picks}, picker)  # fmt: skip
                assert status == 200, body
                assert body["wave"]["status"] == "picked"
                assert body["short"] == (1 if w is wave else 0)
            conflict = {"order_id": first, "line_id": "1", "picked": 1}
            assert (await http("POST", path, conflict, picker))[0] == 409
            status, pdf = await http("GET", f"/v1/waves/{wave['wave_id']}/pick-list.pdf", None,
                                     reader)  # fmt: skip
            assert status == 200 and pdf.startswith(b"%PDF-")
            folder = service.folder(service.waves[wave["wave_id"]])
            assert (folder / "pick-list.pdf").is_file() and (folder / "summary.pdf").is_file()
            assert len(list((folder / "delivery-notes").glob("*.pdf"))) == len(wave["orders"])

            wait_for(
                lambda: any(
                    ln["line_id"] == "1/r1" and ln["status"] == "reserved"
                    for ln in follower.snapshot().get(first, {}).get("lines", [])
                ),
                timeout=60,
                what="the missing mug reserved again",
            )
            state = follower.snapshot()[first]
            assert state["status"] == "allocated", state["status"]
            got = {
                ln["line_id"]: (ln["qty"], ln["location"], ln["status"]) for ln in state["lines"]
            }
            assert got == {"1": (0, WH, "released"), "2": (1, WH, "reserved"),
                           "1/r1": (1, STORE, "reserved")}  # fmt: skip
            mug = (worker.stock(A) or {})["locations"]
            assert (mug[WH]["on_hand"], mug[WH]["reserved"]) == (mugs - 1, mugs - 1)
            assert mug[STORE]["reserved"] == 1
            status, body = await http("POST", "/v1/waves/plan", {"location": STORE}, picker)
            assert status == 200, body
            assert [(o["order_id"], [ln["line_id"] for ln in o["lines"]])
                    for w in body["waves"] for o in w["orders"]] == [(first, ["1/r1"])]  # fmt: skip
        finally:
            await runner.cleanup()
            await service.stop()

    asyncio.run(scenario())
    alerts = read_topic(
        local_stack, CODEC, STOCK_ALERTS,
        lambda r: r.get("kind") == "short_pick" and r["sku"] == A,
        until=lambda found: bool(found), timeout=30,
    )  # fmt: skip
    assert len(alerts) == 1 and first in alerts[0]["message"] and alerts[0]["value"] == 1
    dead = read_topic(
        local_stack, CODEC, STOCK_DEADLETTER,
        lambda r: r.get("component") == "fulfilment" and r.get("original") == b"not a wave",
        until=lambda found: bool(found), timeout=30,
    )  # fmt: skip
    assert dead and dead[0]["topic"] == FULFILMENT_WAVES.name
    audits = read_topic(
        local_stack, CODEC, STOCKFLOW_AUDIT,
        lambda r: r.get("service") == "waves" and r["who"] == f"picker-{RUN}",
        until=lambda found: len(found) >= 3 + -(-N // 3) + 1, timeout=30,
    )  # fmt: skip
    picks = [(r["who"], r["status"]) for r in audits if r["action"] == "confirm picks"]
    assert sorted(set(picks)) == [(f"picker-{RUN}", s) for s in (200, 400, 409)]
    assert any(first in r["ids"] for r in audits if r["status"] == 200)
