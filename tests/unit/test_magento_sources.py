"""Magento MSI written per source: the split of the channel's figure across the mapped
sources, the engine handing the Magento pusher the units per location, the pusher writing
one source item per source (sync and async bulk) against the fake Magento over real HTTP,
and reading their sum back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.config import ConnectorConfigError, parse_connectors_config
from connectors.framework.engine import OutboundEngine, items_from_level
from connectors.framework.state import ConnectorState
from connectors.framework.types import Outcome, PushItem
from connectors.magento.client import MagentoClient
from connectors.magento.mapping import BulkOptions, MagentoMapping
from connectors.magento.outbound import MagentoPusher
from connectors.magento.sources import split
from connectors.testing.magento import FakeMagento

SOURCES = {"default": "main", "north": "north", "south": "south"}
SKUS = ("chair", "table")


def mapping(*, bulk: bool = False, write: str = "per_source") -> MagentoMapping:
    return MagentoMapping(
        store="shop.example",
        push_source="default",
        write=write,
        sources=SOURCES,
        skus=SKUS,
        bulk=BulkOptions(enabled=bulk, poll_s=0.05, wait_s=5),
    )


def item(sku: str, qty: int, locations: dict[str, int] | None, version: int = 1) -> PushItem:
    split_units = None if locations is None else tuple(sorted(locations.items()))
    return PushItem("magento", sku, qty, version, 0, locations=split_units)


@asynccontextmanager
async def magento(**options: Any) -> AsyncIterator[tuple[FakeMagento, MagentoClient]]:
    async with FakeMagento(sources=tuple(SOURCES), **options) as fake:
        for sku in SKUS:
            fake.add_product(sku, 0)
        async with aiohttp.ClientSession() as session:
            yield fake, MagentoClient(session, fake.url, fake.token)


def rows(fake: FakeMagento, sku: str) -> dict[str, tuple[int, int]]:
    return {
        source: (int(i["quantity"]), int(i["status"]))
        for (s, source), i in sorted(fake.source_items.items())
        if s == sku
    }


codes = st.sampled_from(["default", "north", "south", "east", "west", "x1"])


@given(
    figure=st.integers(min_value=0, max_value=10_000),
    units=st.dictionaries(codes, st.integers(min_value=0, max_value=5_000), max_size=6),
    push=codes,
)
def test_the_split_sums_to_the_figure_never_exceeds_a_location_and_is_deterministic(
    figure: int, units: dict[str, int], push: str
) -> None:
    """Given any figure and units per source, when split, then the shares sum exactly to the
    figure; when the figure fits in the units no share is above its source's units, else
    every source has its units and the push source the rest; the same units in another
    order give the same split."""
    shares = split(figure, units, push)
    assert sum(shares.values()) == figure
    assert all(q >= 0 for q in shares.values())
    if figure <= sum(units.values()):
        assert all(shares[code] <= units.get(code, 0) for code in shares)
    else:
        assert all(shares[c] == u for c, u in units.items() if c != push)
        assert shares[push] == units.get(push, 0) + figure - sum(units.values())
    assert split(figure, dict(reversed(list(units.items()))), push) == shares


def test_the_split_follows_the_units_and_gives_leftover_units_to_the_largest_remainders() -> None:
    """Given 10 units at default, 5 at north and 0 at south, when the figure 7 is split,
    then default gets 5, north 2 (7*10/15 = 4.67 and 7*5/15 = 2.33: the one unit left goes
    to the larger remainder) and south 0; the whole 15 gives each its units; on a tie the
    unit left goes to the push source; negative units count as none."""
    units = {"default": 10, "north": 5, "south": 0}
    assert split(7, units, "default") == {"default": 5, "north": 2, "south": 0}
    assert split(15, units, "default") == units
    assert split(4, {"default": 2, "north": 2}, "north") == {"default": 2, "north": 2}
    assert split(1, {"default": 2, "north": 2}, "north") == {"default": 0, "north": 1}
    assert split(3, {"default": -2, "north": 5}, "default") == {"default": 0, "north": 3}
    assert split(7, {"default": -2, "north": 5}, "default") == {"default": 2, "north": 5}


def test_a_magento_channel_written_per_source_gets_the_units_per_location_and_transfers() -> None:
    """Given a per-source Magento pusher and a Shopify one, when a level changes Shopify's
    figure only and then a transfer moves units between locations, then Magento gets both
    levels with the units per location (its split changes), Shopify only the first and
    without them; a single-source Magento pusher is not asked for units."""

    class Other:
        channel = "shopify"
        max_batch = 10

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            client = MagentoClient(session, "http://127.0.0.1:1", "t")
            per_source = MagentoPusher(client, mapping())
            engine = OutboundEngine([per_source, Other()])  # type: ignore[list-item]
            assert engine.by_location == frozenset({"magento"})
            single = OutboundEngine([MagentoPusher(client, mapping(write="single"))])
            assert single.by_location == frozenset()
            level = {
                "sku": "chair",
                "version": 4,
                "channels": {"magento": 5, "shopify": 6},
                "changed_channels": ["shopify"],
                "locations": {"main": 4, "north": 2},
                "occurred_at": 1,
            }
            first = engine.items(level)
            assert [(i.channel, i.quantity, i.locations) for i in first] == [
                ("magento", 5, (("main", 4), ("north", 2))),
                ("shopify", 6, None),
            ]
            moved = {**level, "changed_channels": [], "locations": {"main": 1, "north": 5}}
            assert [(i.channel, i.locations) for i in engine.items(moved)] == [
                ("magento", (("main", 1), ("north", 5)))
            ]
            assert items_from_level(moved, ["magento", "shopify"]) == []
            assert single.items(moved) == []

    asyncio.run(scenario())


def test_the_pusher_writes_one_source_item_per_source_and_reads_their_sum_back() -> None:
    """Given three mapped sources, an open Magento order of 2 chairs, and a level with 6
    units at main, 3 at north and none for south, when the figure 6 is pushed
    synchronously, then default is written 4 + 2 reserved = 6, north 2, south 0 out of
    stock, Magento sells 6 and read answers 6; with 20 source items a request, 6 SKUs go
    in one request. Table's figure 9 over 5 units at main: default gets all 9 (the units
    no source holds go to the push source); a level without units does the same."""

    async def scenario() -> None:
        async with magento() as (fake, client):
            fake.place_order([("chair", 2)])
            pusher = MagentoPusher(client, mapping(), max_batch=100)
            assert pusher.max_batch == 6
            results = await pusher.push(
                [item("chair", 6, {"main": 6, "north": 3}), item("table", 9, {"main": 5})]
            )
            assert [r.outcome for r in results] == [Outcome.OK, Outcome.OK]
            assert rows(fake, "chair") == {"default": (6, 1), "north": (2, 1), "south": (0, 0)}
            assert rows(fake, "table") == {"default": (9, 1), "north": (0, 0), "south": (0, 0)}
            assert (fake.salable("chair"), fake.salable("table")) == (6, 9)
            assert await pusher.read(["chair", "table"]) == {"chair": 6, "table": 9}
            await pusher.push([item("table", 3, None, version=2)])
            assert rows(fake, "table") == {"default": (3, 1), "north": (0, 0), "south": (0, 0)}

    asyncio.run(scenario())


def test_the_bulk_pusher_sends_one_operation_per_sku_with_all_its_source_items() -> None:
    """Given async bulk writes per source, when chair and table are pushed, then the bulk
    holds one operation per SKU carrying its three source items, and once complete every
    source holds its share (chair 3/1/2 of the figure 6 over units 3, 1, 2)."""

    async def scenario() -> None:
        async with magento(bulk_delay_s=0.1) as (fake, client):
            pusher = MagentoPusher(client, mapping(bulk=True), max_batch=100)
            units = {"main": 3, "north": 1, "south": 2}
            results = await pusher.push([item("chair", 6, units), item("table", 1, units)])
            assert [r.outcome for r in results] == [Outcome.OK, Outcome.OK]
            [bulk] = fake.bulks.values()
            bodies = [op["body"]["sourceItems"] for op in bulk["operations"]]
            assert [[(r["sku"], r["source_code"]) for r in b] for b in bodies] == [
                [("chair", "default"), ("chair", "north"), ("chair", "south")],
                [("table", "default"), ("table", "north"), ("table", "south")],
            ]
            assert rows(fake, "chair") == {"default": (3, 1), "north": (1, 1), "south": (2, 1)}
            assert sum(q for q, _ in rows(fake, "table").values()) == 1
            assert await pusher.read(["chair"]) == {"chair": 6}

    asyncio.run(scenario())


def test_reading_counts_only_the_mapped_sources_in_stock_as_magento_sells() -> None:
    """Given source items written per source, when someone puts north out of stock and
    fills a source the channel does not map, then read answers what Magento sells from the
    mapped sources: north no longer counts, the unmapped source never does."""

    async def scenario() -> None:
        async with magento() as (fake, client):
            fake.sources.add("outlet")
            fake.stock_sources.discard("outlet")
            pusher = MagentoPusher(client, mapping())
            await pusher.push([item("chair", 6, {"main": 4, "north": 2})])
            fake.source_items[("chair", "north")]["status"] = 0
            fake.add_product("chair", 50, source="outlet")
            assert await pusher.read(["chair"]) == {"chair": 4}
            assert fake.salable("chair") == 4

    asyncio.run(scenario())


def test_per_source_writing_is_configured_and_a_mapping_that_cannot_work_is_refused() -> None:
    """Given a Magento channel entry with write: per_source, when parsed, then the pusher
    writes per source; a push source outside sources, two sources on one location or an
    unknown write mode are refused naming the mapping; without write it stays single."""
    entry: dict[str, Any] = {
        "name": "magento",
        "kind": "magento",
        "base_url": "https://shop.example",
        "credentials": {"token": "t"},
        "mapping": {
            "store": "shop.example",
            "write": "per_source",
            "sources": {"default": "main", "north": "north"},
            "skus": ["chair"],
        },
    }
    m = parse_connectors_config({"channels": [entry]}).channels[0].mapping
    assert isinstance(m, MagentoMapping) and m.per_source
    for bad in (
        {"push_source": "south"},
        {"sources": {"default": "main", "north": "main"}},
        {"write": "everywhere"},
    ):
        broken = {**entry, "mapping": {**entry["mapping"], **bad}}
        with pytest.raises(ConnectorConfigError, match="mapping"):
            parse_connectors_config({"channels": [broken]})
    plain = {**entry, "mapping": {k: v for k, v in entry["mapping"].items() if k != "write"}}
    m = parse_connectors_config({"channels": [plain]}).channels[0].mapping
    assert isinstance(m, MagentoMapping) and not m.per_source


def test_the_units_per_location_survive_a_restart_in_the_state_folder(tmp_path: Path) -> None:
    """Given a dirty per-source item with its units and one without, when saved and loaded
    again, then the first keeps its units (healing it writes the same split) and the
    second has none."""
    state = ConnectorState(tmp_path)
    dirty = {"chair": item("chair", 6, {"main": 4, "north": 2}), "table": item("table", 1, None)}
    state.save_dirty("magento", dirty)
    _, loaded = state.load("magento")
    assert loaded == dirty


def test_a_return_goes_back_to_the_source_its_order_shipped_from() -> None:
    """Given an order shipped from north, when a credit memo returns one unit to stock,
    then north gets it back, not the default source."""

    async def scenario() -> None:
        async with magento() as (fake, _client):
            fake.add_product("chair", 4, source="north")
            order = fake.place_order([("chair", 2)])
            fake.ship(order["entity_id"], source="north")
            fake.refund(order["entity_id"], {"chair": 1})
            assert (fake.quantity("chair", "north"), fake.quantity("chair")) == (3, 0)

    asyncio.run(scenario())
