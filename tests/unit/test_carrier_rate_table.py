"""The routing's rate table from live carrier quotes (``stockflow carriers rate-table``)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from connectors.testing.carriers.fleet import FakeCarrierFleet
from streams.cli import main
from streams.orders.routing_config import parse_routing

PARIS = {
    "country": "FR",
    "postal_code": "75011",
    "city": "Paris",
    "lines": ["1 rue X"],
    "name": "Stockflow SAS",
}


@pytest.fixture
def fleet() -> Iterator[FakeCarrierFleet]:
    """The three fake carriers served from a loop of their own (the CLI runs its own)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    started = FakeCarrierFleet()
    asyncio.run_coroutine_threadsafe(started.__aenter__(), loop).result(10)
    try:
        yield started
    finally:
        asyncio.run_coroutine_threadsafe(started.__aexit__(None, None, None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_the_rate_table_command_prints_routing_rates_from_the_cheapest_live_quotes(
    fleet: FakeCarrierFleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given the three fake carriers configured with a ship-from per location, when
    `stockflow carriers rate-table` runs for two zones and two weight bands, then it prints
    one routing rate per location, zone and band, each the cheapest quote of the three
    carriers, and the routing configuration accepts the rows as they are."""
    config = tmp_path / "stockflow.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "carriers": fleet.config(
                    ship_from={"paris": PARIS, "lyon": {**PARIS, "postal_code": "69007"}}
                )
            }
        )
    )
    code = main(
        [
            "carriers",
            "rate-table",
            "--config",
            str(config),
            "--zone",
            "fr=FR:69002",
            "--zone",
            "north=FR:59000",
            "--weights",
            "1000,5000",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    rates = yaml.safe_load(out)["orders"]["routing"]["rates"]
    assert len(rates) == 2 * 2 * 2
    cheapest_1kg = min(
        fake.price(s, 1000) for fake in fleet.by_name.values() for s in fake.services
    )
    assert {r["cost"] for r in rates if r["up_to_g"] == 1000} == {cheapest_1kg}
    routing = parse_routing(
        {
            "locations": [{"name": "paris"}, {"name": "lyon"}],
            "zones": [{"name": "fr", "countries": ["FR"]}, {"name": "north", "countries": ["BE"]}],
            "rates": rates,
        }
    )
    assert routing.parcel_cost("lyon", "fr", 800) == cheapest_1kg


def test_a_carrier_outage_leaves_the_others_rates_and_no_rate_at_all_exits_1(
    fleet: FakeCarrierFleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given Chronopost (the cheapest) down, when the table is made, then the rows come from
    the next cheapest carrier; given every carrier down, the command exits 1 and names the
    missing rows on stderr."""
    config = tmp_path / "stockflow.yaml"
    config.write_text(yaml.safe_dump({"carriers": fleet.config(ship_from={"paris": PARIS})}))
    args = [
        "carriers",
        "rate-table",
        "--config",
        str(config),
        "--zone",
        "fr=FR:69002",
        "--weights",
        "1000",
    ]
    fleet.chronopost.down(60)
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "chronopost" not in out and "# ups 11" in out
    fleet.ups.down(60)
    fleet.dhl.down(60)
    assert main(args) == 1
    assert "no rate for paris→fr ≤1000 g" in capsys.readouterr().err
