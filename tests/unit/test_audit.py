"""The access audit of the HTTP APIs: one record per write, never a body or a token."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web_exceptions import NotAppKeyWarning

from streams.kernel.audit import PRINCIPAL, audit_middleware, note
from streams.kernel.json_errors import json_errors
from streams.sink.rows import AUDIT, AUDIT_TABLE, RowError, to_rows
from tests.unit.schema_samples import SAMPLES


class Principal:
    """What the authentication layer puts on a request: an object with ``.name``."""

    def __init__(self, name: str) -> None:
        self.name = name


KEYED = web.RequestKey("stockflow.principal", Principal)


def _app(sent: list[dict[str, Any]]) -> web.Application:
    async def send(record: dict[str, Any]) -> None:
        sent.append(record)

    @web.middleware
    async def authenticate(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("Authorization") == "Bearer s3cret-token":
            with warnings.catch_warnings():  # the key the authentication layer uses
                warnings.simplefilter("ignore", NotAppKeyWarning)
                request[PRINCIPAL] = Principal("erp")
        elif request.headers.get("Authorization") == "Bearer other-token":
            request[KEYED] = Principal("wms")
        return await handler(request)  # type: ignore[no-any-return]

    async def place(request: web.Request) -> web.Response:
        body = await request.json()
        note(request).add([body["sku"]], ["hold-1"])
        note(request).items = 1
        if body["qty"] > 5:
            return web.json_response({"error": "too many"}, status=409)
        return web.json_response({"ok": True}, status=201)

    async def release(request: web.Request) -> web.Response:
        raise RuntimeError("a handler bug")

    async def read(request: web.Request) -> web.Response:
        return web.json_response({})

    actions = {("POST", "/v1/holds"): "hold.place"}
    app = web.Application(
        middlewares=[json_errors, authenticate, audit_middleware("worker", send, actions)]
    )
    app.router.add_post("/v1/holds", place)
    app.router.add_delete("/v1/holds/{hold_id}", release)
    app.router.add_get("/v1/stock/{sku}", read)
    return app


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _calls(sent: list[dict[str, Any]]) -> list[tuple[int, Any]]:
    answers = []
    async with TestClient(TestServer(_app(sent))) as client:
        for method, path, body, headers in [
            ("POST", "/v1/holds", {"sku": "chair", "qty": 2, "name": "Jane Doe"}, {}),
            (
                "POST",
                "/v1/holds",
                {"sku": "chair", "qty": 9},
                {"Authorization": "Bearer s3cret-token"},
            ),
            ("DELETE", "/v1/holds/h-9", None, {"Authorization": "Bearer other-token"}),
            ("GET", "/v1/stock/chair", None, {}),
            ("PUT", "/v1/holds", {}, {}),
            ("POST", "/nowhere/jane.doe@example.com", {}, {}),
        ]:
            async with client.request(method, path, json=body, headers=headers) as answer:
                answers.append((answer.status, await answer.json()))
    return answers


def test_every_write_is_audited_with_who_what_and_its_status_and_reads_are_not() -> None:
    """Given an API with the audit behind an authentication layer, when an anonymous hold
    (201), a hold by principal erp (409), a release by wms whose handler fails (500), a read, a
    PUT on a POST-only route (405) and a POST to no route (404) are made, then five
    records say who, route, action, SKUs, ids and status, the read has none, and no
    record holds the body's other fields, the token or the unmatched path."""
    sent: list[dict[str, Any]] = []
    answers = _run(_calls(sent))
    assert [status for status, _ in answers] == [201, 409, 500, 200, 405, 404]
    assert all("error" in body for status, body in answers if status >= 400)
    assert [(r["who"], r["method"], r["route"], r["action"], r["status"]) for r in sent] == [
        ("anonymous", "POST", "/v1/holds", "hold.place", 201),
        ("erp", "POST", "/v1/holds", "hold.place", 409),
        ("wms", "DELETE", "/v1/holds/{hold_id}", "delete /v1/holds/{hold_id}", 500),
        ("anonymous", "PUT", "(no route)", "put (no route)", 405),
        ("anonymous", "POST", "(no route)", "post (no route)", 404),
    ]
    assert (sent[0]["skus"], sent[0]["ids"], sent[0]["items"]) == (["chair"], ["hold-1"], 1)
    text = repr(sent)
    for secret in ("Jane", "s3cret", "other-token", "jane.doe", "example.com"):
        assert secret not in text


def test_an_audit_send_that_fails_does_not_fail_the_request() -> None:
    """Given an audit whose topic cannot be written, when a write is made, then it is
    answered as usual (the failure is logged)."""

    async def broken(record: dict[str, Any]) -> None:
        raise RuntimeError("broker down")

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({}, status=202)

    async def call() -> int:
        app = web.Application(middlewares=[audit_middleware("connectors", broken, {})])
        app.router.add_post("/webhooks/shopify", ok)
        async with TestClient(TestServer(app)) as client:
            answer = await client.post("/webhooks/shopify", data=b"{}")
            return answer.status

    assert _run(call()) == 202


def test_an_audit_record_lists_at_most_20_skus_and_ids_each_cut_to_100_characters() -> None:
    """Given a request naming 50 SKUs (one of 500 characters, some twice), when audited,
    then the record keeps the first 20 distinct ones, each at most 100 characters."""
    from streams.kernel.audit import AuditNote, audit_record

    noted = AuditNote(skus=["x" * 500, "a", "a", *[f"s{i}" for i in range(47)]], items=50)
    record = audit_record(
        service="worker",
        who="erp",
        method="POST",
        route="/v1/events",
        action="events.post",
        status=202,
        at=0,
        noted=noted,
    )
    assert len(record["skus"]) == 20 and record["skus"][:2] == ["x" * 100, "a"]
    assert record["items"] == 50


def test_an_audit_record_becomes_one_row_of_the_audit_table() -> None:
    """Given the sample AuditRecord, when mapped by the sink, then it is one row of table
    audit with its time in seconds and ms, lists as arrays and forwarded as 0/1; a record
    with a status that is no HTTP status is refused with a reason."""
    table, rows = to_rows(AUDIT, SAMPLES[AUDIT], 3, 77)
    assert table is AUDIT_TABLE
    row = dict(zip(table.columns, rows[0], strict=True))
    sample = SAMPLES[AUDIT]
    assert row["at"] == sample["at"] // 1000 and row["at_ms"] == sample["at"]
    assert (row["who"], row["status"], row["skus"], row["forwarded"]) == ("erp", 409, ["chair"], 0)
    assert (row["kafka_partition"], row["kafka_offset"]) == (3, 77)
    with pytest.raises(RowError, match="status"):
        to_rows(AUDIT, {**sample, "status": -1}, 0, 0)


def test_the_audit_schema_is_under_the_compatibility_check_like_the_others() -> None:
    """Given the AuditRecord schema, when a next version adds a field with a default it
    passes both ways; when it adds one without a default or removes ``who`` (which has
    none), the compatibility checker refuses it, as for every schema of the contract."""
    import copy

    from schemas.compat import IncompatibleSchemaError, check_pair
    from schemas.loader import current_schemas

    current = current_schemas()["stockflow.v1.AuditRecord"].raw
    added = copy.deepcopy(current)
    added["fields"].append({"name": "region", "type": ["null", "string"], "default": None})
    check_pair(current, added)
    check_pair(added, current)
    for change in ("no default", "who removed"):
        broken = copy.deepcopy(current)
        if change == "no default":
            broken["fields"].append({"name": "region", "type": "string"})
        else:
            broken["fields"] = [f for f in broken["fields"] if f["name"] != "who"]
        with pytest.raises(IncompatibleSchemaError):
            check_pair(current, broken)
            check_pair(broken, current)
