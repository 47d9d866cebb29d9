"""The access audit end to end: writes through the worker's and the connectors' HTTP APIs
reach ``stockflow.audit.v1``, the ClickHouse ``audit`` table (through the sink) and
``stockflow report audit``, each with the status it was answered, refused ones included."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from deploy.local.credentials import operator_token, token_name
from schemas.codec import codec_for
from streams.kernel.settings import Settings
from streams.kernel.topics import SINK_TOPICS, STOCKFLOW_AUDIT
from streams.reports import run_report
from streams.worker.hold_ids import hold_id_for
from tests.fakes.e2e import Stack, e2e_stack
from tests.integration.sink_support import (
    drop_database,
    end_offsets,
    running_sink,
    set_group_offsets,
    sink_settings,
    wait_rows,
)
from tests.support.kafka import read_topic
from tests.support.ports import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with e2e_stack(
        local_stack,
        tmp_path_factory.mktemp("audit"),
        worker_port=free_port(),
        connectors_port=free_port(),
        n_skus=2,
    ) as stack:
        yield stack


def call(
    url: str, method: str, body: Any = None, raw: bytes | None = None, token: str | None = None
) -> int:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_writes_through_both_apis_reach_the_audit_topic_table_and_report_with_their_status(
    stack: Stack, local_stack: Settings, unique_name: str
) -> None:
    """Given a worker, the connectors with both fake shops and a sink into its own database,
    when the operator's token posts a valid event (202), a batch with a bad item (400), a
    hold beyond stock (409), a body that is not JSON (400), releases a hold (202), a caller
    without a token posts an event (401), and the fake Shopify delivers a signed order (200)
    and a forged one (401), then the audit topic holds one record per write with who (the
    token's name; anonymous without a token and for webhooks, which carry none), route,
    action, SKUs and ids and that status, no record holds a body; the audit table holds
    them (one row each, deduped by id); and `stockflow report audit --who <operator>`
    lists the operator's, `--who` of another name none."""
    settings = sink_settings(local_stack, unique_name)
    group = f"sink-{unique_name}"
    set_group_offsets(settings, group, end_offsets(settings, SINK_TOPICS))
    # records stamped from now on were written after the sink's starting point (the stack's
    # own start-up writes, a moment before, are not this test's and the sink skips them)
    started = datetime.now(tz=UTC)
    codec = codec_for(settings)
    sku, other = f"aud-{uuid.uuid4().hex[:8]}", f"aud-{uuid.uuid4().hex[:8]}"
    worker = stack.worker.url
    operator = operator_token(local_stack)
    operator_name = token_name(local_stack, "operator")
    try:
        receipt = {"event_id": f"{sku}-r", "type": "receipt", "sku": sku, "qty": 2}
        bad = {"event_id": f"{other}-x", "type": "sale", "sku": other, "qty": -1}
        hold = {"sku": sku, "qty": 9, "channel": "web", "ttl_seconds": 60}
        statuses = [
            call(worker + "/v1/events", "POST", receipt, token=operator),
            call(
                worker + "/v1/events",
                "POST",
                [receipt | {"event_id": f"{sku}-r2"}, bad],
                token=operator,
            ),
            call(worker + "/v1/holds?wait=1", "POST", hold, token=operator),
            call(worker + "/v1/holds", "POST", raw=b"{not json", token=operator),
        ]
        hold_id = hold_id_for(sku, "release-me")
        statuses.append(call(worker + f"/v1/holds/{hold_id}", "DELETE", token=operator))
        unsigned = {"event_id": f"{sku}-anon", "type": "receipt", "sku": sku, "qty": 1}
        assert call(worker + "/v1/events", "POST", unsigned) == 401
        fakes, shop_sku = stack.fakes, stack.skus[0]
        order = fakes.call(lambda: fakes.shopify.place_order([(stack.variant(shop_sku), 1)]))
        signed = fakes.run(fakes.shopify.deliver("orders/create", order))
        forged = fakes.run(
            fakes.shopify.deliver("orders/create", order, secret="attacker", retry=False)
        )
        statuses += [*signed.statuses, *forged.statuses]
        assert statuses[:3] == [202, 400, 409] and statuses[3] == 400
        assert statuses[5:] == [200, 401], statuses

        def ours(record: dict[str, Any]) -> bool:
            return (
                bool({sku, other, shop_sku} & set(record["skus"]))
                or (record["route"] in ("/v1/holds", "/webhooks/shopify") and not record["skus"])
                or (record["status"] == 401 and record["who"] == "anonymous")
            )

        expected = {
            ("worker", "/v1/events", "events.post", 202),
            ("worker", "/v1/events", "events.post", 400),
            ("worker", "/v1/holds", "hold.place", 409),
            ("worker", "/v1/holds", "hold.place", 400),
            ("worker", "/v1/holds/{hold_id}", "hold.release", 202),
            ("worker", "/v1/events", "events.post", 401),
            ("connectors", "/webhooks/shopify", "webhook.shopify", 200),
            ("connectors", "/webhooks/shopify", "webhook.shopify", 401),
        }

        def key(r: dict[str, Any]) -> tuple[str, str, str, int]:
            return (r["service"], r["route"], r["action"], r["status"])

        records = read_topic(
            settings,
            codec,
            STOCKFLOW_AUDIT,
            lambda r: r["at"] >= started.timestamp() * 1000 and ours(r),
            until=lambda found: expected <= {key(r) for r in found},
        )
        # records naming our SKUs win over others of the same key (refusals name none)
        seen = {key(r): r for r in sorted(records, key=lambda r: bool(r["skus"]))}
        assert set(seen) >= expected, sorted(seen)
        who = {key(r): r["who"] for r in records if key(r) in expected}  # not other tests'

        assert {k: w for k, w in who.items() if w != operator_name} == {
            ("worker", "/v1/events", "events.post", 401): "anonymous",
            ("connectors", "/webhooks/shopify", "webhook.shopify", 200): "anonymous",
            ("connectors", "/webhooks/shopify", "webhook.shopify", 401): "anonymous",
        }
        batch = seen[("worker", "/v1/events", "events.post", 400)]
        assert (sorted(batch["skus"]), batch["items"]) == (sorted([sku, other]), 2)
        assert seen[("worker", "/v1/holds/{hold_id}", "hold.release", 202)]["ids"] == [hold_id]
        webhook = seen[("connectors", "/webhooks/shopify", "webhook.shopify", 200)]
        assert webhook["skus"] == [shop_sku] and webhook["items"] == 1
        assert "attacker" not in repr(records) and "not json" not in repr(records)

        ids = [r["audit_id"] for r in records]
        with running_sink(settings, codec, group):
            wait_rows(settings, "audit", "audit_id IN %(ids)s", {"ids": tuple(ids)}, len(ids))
        out = io.StringIO()
        since = started.isoformat()
        options = {"who": operator_name, "since": since, "limit": 1000}
        assert run_report(settings, "audit", "json", options, out=out) == 0
        listed = [
            r for r in json.loads(out.getvalue()) if {sku, other, shop_sku} & set(r["skus"].split())
        ]
        assert sorted((r["route"], r["status"]) for r in listed) == sorted(
            (r["route"], r["status"]) for r in records if r["skus"] and r["who"] == operator_name
        )
        none = io.StringIO()
        options = {"who": "someone-else", "since": since, "limit": 1000}
        assert run_report(settings, "audit", "json", options, out=none) == 0
        assert json.loads(none.getvalue()) == []
    finally:
        drop_database(settings)
