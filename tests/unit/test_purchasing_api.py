"""The till's replenishment trigger without Kafka: the route on a real aiohttp server on
loopback, its token store filled the way the follower fills it, and a stand-in service
that records the plans it was asked for. Tokens restricted to locations, too."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from schemas.codec import single_object_codec
from streams.kernel.access.guard import Limits
from streams.kernel.access.store import TokenStore
from streams.kernel.access.tokens import (
    ADMIN,
    REPLENISH,
    STOCK_READ,
    TokenError,
    TokenRecord,
    new_token,
)
from streams.kernel.topics import API_TOKENS
from streams.purchasing.api import TRIGGER, add_routes
from streams.purchasing.service import PurchasingService


class PlanRecorder:
    """What the route needs of the service: ``settings`` and ``plan``."""

    def __init__(self) -> None:
        self.settings = None
        self.calls: list[tuple[str | None, str]] = []

    async def plan(self, location: str | None = None, by: str = "planner") -> list[dict[str, Any]]:
        self.calls.append((location, by))
        if location == "down":
            raise ConnectionError("ClickHouse at 127.0.0.1:9000 refused")
        return [{"proposal_id": f"PO-{location}-1", "location": location, "status": "proposed"}]


def test_a_token_restricted_to_locations_keeps_them_through_the_token_topic() -> None:
    """Given a till token for lyon, when its record is encoded and decoded, then it still
    names lyon, may act for lyon and not for paris; a token without locations may act for
    any; a location with spaces is refused."""
    _, record = new_token("till-lyon", [REPLENISH], locations=["lyon"])
    codec = single_object_codec()
    back = TokenRecord.from_avro(
        codec.decode_as(
            API_TOKENS.value_schema, codec.encode(API_TOKENS.value_schema, record.to_avro())
        )
    )
    assert back == record and back.locations == ("lyon",)
    assert back.principal().may_act_for("lyon") and not back.principal().may_act_for("paris")
    _, anywhere = new_token("planner", [REPLENISH])
    assert anywhere.principal().may_act_for("paris")
    with pytest.raises(TokenError, match="location"):
        new_token("till", [REPLENISH], locations=["main street"])


def _tokens(store: TokenStore, **scoped: tuple[list[str], list[str]]) -> dict[str, str]:
    out = {}
    for name, (scopes, locations) in scoped.items():
        token, record = new_token(name, scopes, locations=locations)
        store.apply(record)
        out[name] = token
    return out


def test_the_trigger_plans_the_tokens_store_and_refuses_the_rest_with_clear_answers() -> None:
    """Given tokens till-lyon (replenish, lyon), reader (stock:read) and root (admin), when
    the till posts {"store": "lyon"}, then 200 with lyon's proposals, planned by
    till:till-lyon; for paris 403 naming lyon; without a token 401; with the reader 403;
    with a body that is not {"store": "<text>"} 400 saying what to send; the admin may
    plan any store; a plan that fails (ClickHouse away) answers 503 in JSON without the
    failure's details. Only the accepted requests planned anything."""
    store = TokenStore()
    tokens = _tokens(
        store,
        **{
            "till-lyon": ([REPLENISH], ["lyon"]),
            "reader": ([STOCK_READ], []),
            "root": ([ADMIN], []),
        },
    )
    service = PlanRecorder()

    async def scenario() -> None:
        app = web.Application()
        add_routes(app, cast(PurchasingService, service), store, Limits(100.0, 100, 60.0))
        store.mark_fresh(time.monotonic() + 3600)
        async with TestClient(TestServer(app)) as client:

            async def post(
                body: Any, token: str | None, raw: bytes | None = None
            ) -> tuple[int, Any]:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                if raw is not None:
                    answer = await client.post(TRIGGER, data=raw, headers=headers)
                else:
                    answer = await client.post(TRIGGER, json=body, headers=headers)
                return answer.status, await answer.json()

            lyon = tokens["till-lyon"]
            status, body = await post({"store": "lyon"}, lyon)
            assert status == 200, body
            assert body["store"] == "lyon" and body["proposals"][0]["proposal_id"] == "PO-lyon-1"
            status, body = await post({"store": "paris"}, lyon)
            assert status == 403 and "only for lyon, not 'paris'" in body["error"]
            assert (await post({"store": "lyon"}, None))[0] == 401
            assert (await post({"store": "lyon"}, "sft_unknown"))[0] == 401
            status, body = await post({"store": "lyon"}, tokens["reader"])
            assert status == 403 and "replenish" in body["error"]
            for bad, says in (
                ({}, "store: required"),
                ({"store": ""}, "store: required"),
                ({"store": 7}, "store: required"),
                ({"store": "lyon", "qty": 3}, "unknown field(s) qty"),
                ([], "JSON object"),
            ):
                status, body = await post(bad, lyon)
                assert (status, says in body["error"]) == (400, True), (bad, body)
            status, body = await post(None, lyon, raw=b"{not json")
            assert status == 400 and "must be JSON" in body["error"]
            assert (await post({"store": "paris"}, tokens["root"]))[0] == 200
            status, body = await post({"store": "down"}, tokens["root"])
            assert status == 503 and "planning 'down' failed" in body["error"]
            assert "127.0.0.1" not in body["error"]

    asyncio.run(scenario())
    assert service.calls == [
        ("lyon", "till:till-lyon"),
        ("paris", "till:root"),
        ("down", "till:root"),
    ]
