"""``stockflow carriers rate-table``: the routing's rate table from live carrier quotes.

Reads the ``carriers:`` section of the configuration file (``STOCKFLOW_CONFIG``), asks the
carriers for each ship-from location, ``--zone`` and ``--weights`` band, and prints the
``orders.routing.rates`` rows as YAML (the carrier and service behind each row as a comment).
Exit codes: 0 every row quoted, 1 some rows had no rate (listed on stderr), 2 bad options or
configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import aiohttp
import yaml

from connectors.carriers.config import (
    CarrierConfigError,
    build_carriers,
    parse_carriers_config,
)
from connectors.carriers.model import Address
from connectors.carriers.rate_table import rate_table
from connectors.carriers.shopping import LEVELS, ServiceLevel


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    carriers = sub.add_parser("carriers", help="carrier tools (live rate table for routing)")
    actions = carriers.add_subparsers(dest="action", required=True)
    table = actions.add_parser("rate-table", help="routing rates from live carrier quotes")
    table.add_argument(
        "--zone",
        action="append",
        default=[],
        metavar="ZONE=CC:POSTAL",
        help="a routing zone and a sample ship-to in it, e.g. fr=FR:69002",
    )
    table.add_argument(
        "--weights",
        default="500,1000,2000,5000,10000",
        help="weight bands in grams, comma-separated",
    )
    table.add_argument(
        "--level", choices=LEVELS, help="service level (default: the configuration's default)"
    )
    table.add_argument("--config", type=Path, help="configuration file (STOCKFLOW_CONFIG)")


def _zones(pairs: list[str]) -> dict[str, Address]:
    zones = {}
    for pair in pairs:
        zone, _, where = pair.partition("=")
        country, _, postal = where.partition(":")
        if not zone or len(country) != 2 or not postal:
            raise CarrierConfigError(
                "--zone", f"expected ZONE=CC:POSTAL (fr=FR:69002), got {pair!r}"
            )
        zones[zone] = Address(country.upper(), postal)
    if not zones:
        raise CarrierConfigError("--zone", "give at least one zone")
    return zones


def run(config_path: str, args: argparse.Namespace) -> int:
    path = args.config or (Path(config_path) if config_path else None)
    try:
        if path is None:
            raise CarrierConfigError("--config", "no configuration file (set STOCKFLOW_CONFIG)")
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        config = parse_carriers_config(raw.get("carriers") if isinstance(raw, dict) else None)
        if not config.accounts or not config.ship_from:
            raise CarrierConfigError("carriers", "needs accounts and ship_from locations")
        zones = _zones(args.zone)
        weights = [int(w) for w in str(args.weights).split(",") if w.strip()]
        if not weights or min(weights) <= 0:
            raise CarrierConfigError("--weights", "expected positive grams, e.g. 500,1000")
    except (OSError, ValueError, yaml.YAMLError) as exc:
        print(f"stockflow carriers: {exc}", file=sys.stderr)
        return 2
    level = ServiceLevel(args.level) if args.level else None

    async def main() -> int:
        async with aiohttp.ClientSession() as session:
            table = await rate_table(build_carriers(config, session), config, zones, weights, level)
        lines = ["orders:", "  routing:", "    rates:"]
        for row in table.rows:
            flow = yaml.safe_dump(row.as_config(), default_flow_style=True, sort_keys=False)
            lines.append(
                f"      - {flow.strip()}  # {row.rate.carrier} {row.rate.service}, "
                f"{row.rate.days} d"
            )
        print("\n".join(lines))
        for name, why in table.missing.items():
            print(f"no rate for {name}: {why}", file=sys.stderr)
        return 1 if table.missing else 0

    return asyncio.run(main())
