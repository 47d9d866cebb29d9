"""``stockflow price set SKU AMOUNT --currency EUR``: publish a base price change.

The record is built by ``schemas.prices`` and produced to ``prices.events.v1`` keyed by SKU
(acknowledged before the command returns); the connectors apply each channel's rules and
push it. Exit codes: 0 published, 2 bad input (the message says which and how to fix it),
1 Kafka did not acknowledge.
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal, InvalidOperation

from confluent_kafka import KafkaError, Message, Producer

from connectors.framework.prices import minor_digits
from schemas.codec import codec_for
from schemas.prices import InvalidPrice, price_change
from schemas.times import iso_to_ms, ms_to_iso, now_ms
from streams.kernel import topics
from streams.kernel.kafka_config import producer_config
from streams.kernel.produce import produce
from streams.kernel.settings import Settings


def add_price_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    price = sub.add_parser("price", help="publish a base price change to every channel")
    actions = price.add_subparsers(dest="price_action", required=True)
    put = actions.add_parser("set", help="set SKU's base price (each channel's rules apply)")
    put.add_argument("sku")
    put.add_argument("amount", help="base price in major units, e.g. 19.99")
    put.add_argument("--currency", default="EUR", help="ISO 4217 code (default EUR)")
    put.add_argument("--cost", help="unit cost, same currency: the channels' floors use it")
    put.add_argument("--valid-from", help="ISO time the price takes effect (default: now)")
    put.add_argument(
        "--version", type=int, help="the change's version (default: now in epoch ms, growing)"
    )
    put.add_argument("--source", default="cli", help="who decided it (default cli)")


def _minor(raw: str | None, currency: str, what: str) -> int | None:
    """``"19.99"`` → ``1999`` for EUR; refuses what the currency cannot show (19.999 EUR)."""
    if raw is None:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise InvalidPrice(f"bad_{what}", f"{what} {raw!r} is not a number (write 19.99)") from None
    if not value.is_finite() or value < 0:
        raise InvalidPrice(f"bad_{what}", f"{what} {raw!r} must be a number >= 0")
    minor = value.scaleb(minor_digits(currency))
    if minor != minor.to_integral_value():
        raise InvalidPrice(
            f"bad_{what}",
            f"{what} {raw!r} has more decimals than {currency} has "
            f"({minor_digits(currency)}); round it",
        )
    return int(minor)


def run_price(settings: Settings, args: argparse.Namespace) -> int:
    currency = str(args.currency).upper()
    at = now_ms()
    try:
        amount = _minor(args.amount, currency, "amount")
        assert amount is not None
        record = price_change(
            args.sku,
            amount,
            currency,
            version=at if args.version is None else args.version,
            source=args.source,
            valid_from=None if args.valid_from is None else iso_to_ms(args.valid_from),
            cost_minor=_minor(args.cost, currency, "cost"),
            at=at,
        )
    except (InvalidPrice, ValueError) as exc:
        print(f"stockflow price: {exc}", file=sys.stderr)
        return 2
    value = codec_for(settings).encode(topics.PRICE_EVENTS.value_schema, record)
    errors: list[str] = []

    def delivered(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(str(err))

    producer = Producer(producer_config(settings, **{"client.id": "stockflow-price"}))
    produce(producer, topics.PRICE_EVENTS.name, args.sku.encode(), value, on_delivery=delivered)
    left = producer.flush(15)
    if left or errors:
        print(
            f"stockflow price: {topics.PRICE_EVENTS.name} did not acknowledge ({left} left, "
            f"{errors[:1]}); is Kafka up (stockflow stack up)?",
            file=sys.stderr,
        )
        return 1
    print(
        f"{args.sku}: {args.amount} {currency} from {ms_to_iso(record['valid_from'])} "
        f"(version {record['version']}, change {record['change_id']}) published to "
        f"{topics.PRICE_EVENTS.name}"
    )
    return 0
