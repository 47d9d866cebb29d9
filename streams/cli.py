"""The `stockflow` command: one entry point for the stack, the worker and the tools."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date

from streams.kernel.settings import SettingsError, load


def _stack(args: argparse.Namespace) -> int:
    from deploy.local import stack
    from deploy.local.process import StackError

    settings = load()
    try:
        if args.action == "up":
            stack.up(
                settings, with_registry=args.with_registry, brokers=args.brokers, secure=args.secure
            )
            secure = stack.secure_access(settings)
            if args.topics:
                from streams.kernel.kafka_admin import ensure_topics

                created = ensure_topics(secure.client_settings("admin") if secure else settings)
                if created:
                    print(f"created topics: {', '.join(created)}", file=sys.stderr)
            stack.print_status(settings)
            if secure:
                print(f"secure stack: source {secure.folder}/<ledger|sink|connectors|admin>.env")
            return 0
        if args.action == "down":
            stack.down(settings)
            return 0
        return 0 if stack.print_status(settings) else 3
    except StackError as exc:
        print(f"stockflow stack {args.action}: {exc}", file=sys.stderr)
        return 2


def _worker(args: argparse.Namespace) -> int:
    from streams.worker.run import run_worker

    return run_worker(load(), loglevel=args.loglevel)


def _sink(_: argparse.Namespace) -> int:
    from streams.sink import run_sink

    return run_sink(load())


def _connectors(_: argparse.Namespace) -> int:
    from connectors.runtime import run_connectors

    return run_connectors(load())


def _report(args: argparse.Namespace) -> int:
    from streams.reports import run_report

    return run_report(load(), args.name, args.format, args)


def _deadletters(args: argparse.Namespace) -> int:
    from streams.deadletters import run_deadletters

    return run_deadletters(load(), args)


def _pos(args: argparse.Namespace) -> int:
    from pathlib import Path

    from streams.worker.pos_import import run_import

    return run_import(load(), Path(args.file), args.store, source=args.source)


def _bench(args: argparse.Namespace) -> int:
    from deploy.bench import run_bench

    only = [part.strip() for part in args.only.split(",") if part.strip()] if args.only else None
    if only is None:
        return run_bench(load(), quick=args.quick, as_json=args.json)
    return run_bench(load(), quick=args.quick, as_json=args.json, only=only)


def _token(args: argparse.Namespace) -> int:
    from streams.kernel.access.command import run_token

    return run_token(load(), args)


def _price(args: argparse.Namespace) -> int:
    from connectors.price_command import run_price

    return run_price(load(), args)


def _add_price(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`stockflow price set SKU AMOUNT`: a base price change for every channel."""
    from connectors.price_command import add_price_parser

    add_price_parser(sub)
    sub.choices["price"].set_defaults(func=_price)


def _replenish_run(args: argparse.Namespace) -> int:
    from streams.purchasing.run import run_command

    return run_command(load(), once=args.once)


def _demo(args: argparse.Namespace) -> int:
    from deploy.demo.run import run_demo

    return run_demo(load(), keep=args.keep)


def _replenish_plan(args: argparse.Namespace) -> int:
    from streams.purchasing.command import run_plan

    return run_plan(load(), location=args.location, fmt=args.format, today=args.today)


def _day(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a day (YYYY-MM-DD)") from None


def _replenish_backtest(args: argparse.Namespace) -> int:
    from streams.purchasing.backtesting import run_backtest

    return run_backtest(load(), weeks=args.weeks, location=args.location, fmt=args.format)


def _waves(args: argparse.Namespace) -> int:
    from streams.picking.run import run_command

    once = args.action == "plan"
    return run_command(load(), once=once, location=getattr(args, "location", None),
                       port=getattr(args, "port", None))  # fmt: skip


def _add_waves(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`stockflow waves ...`: waves of released orders, pick lists, pick confirmations."""
    waves = sub.add_parser("waves", help="plan waves of released orders; the pick API")
    actions = waves.add_subparsers(dest="action", required=True)
    plan = actions.add_parser("plan", help="plan the waves now, print them, write documents")
    plan.add_argument("--location", help="only this location (default: every location)")
    plan.set_defaults(func=_waves)
    run = actions.add_parser("run", help="the wave service: scheduled plans and the pick API")
    run.add_argument("--port", type=int, help="HTTP port (default STOCKFLOW_WAVES_PORT, 8096)")
    run.set_defaults(func=_waves)


def _ship(args: argparse.Namespace) -> int:
    from streams.shipping.run import run_command

    return run_command(load())


def _add_ship(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`stockflow ship run`: picked orders packed, labelled, shipped and tracked."""
    ship = sub.add_parser("ship", help="the shipping service: labels, shipments, tracking")
    actions = ship.add_subparsers(dest="action", required=True)
    run = actions.add_parser("run", help="ship picked orders, track them, serve the labels")
    run.set_defaults(func=_ship)


def _add_replenish(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`stockflow replenish ...`: demand forecasts and supplier order proposals."""
    replenish = sub.add_parser("replenish", help="demand forecasts and supplier order proposals")
    actions = replenish.add_subparsers(dest="action", required=True)
    plan = actions.add_parser("plan", help="print the supplier order proposals a plan makes now")
    plan.add_argument("--location", help="only proposals for this destination location")
    plan.add_argument("--format", default="table", choices=["table", "json", "csv"])
    plan.add_argument("--today", type=_day, help="plan as of this day (default: today, UTC)")
    plan.set_defaults(func=_replenish_plan)

    run = actions.add_parser(
        "run", help="the purchasing service: plan on a schedule, send, follow receipts"
    )
    run.add_argument("--once", action="store_true", help="plan and send once, exit")
    run.set_defaults(func=_replenish_run)

    backtest = actions.add_parser(
        "backtest", help="forecast accuracy (WAPE, bias) per method over the last weeks"
    )
    backtest.add_argument("--weeks", type=_positive, default=4, help="weeks scored (default 4)")
    backtest.add_argument("--location", help="only this location")
    backtest.add_argument("--format", default="table", choices=["table", "json"])
    backtest.set_defaults(func=_replenish_backtest)


def _notify(args: argparse.Namespace) -> int:
    from streams.notifications.config import NotificationsConfigError, load_notifications
    from streams.notifications.run import run_notify

    settings = load()
    if not settings.config_path:
        print(
            "stockflow notify: set STOCKFLOW_CONFIG to the file with `notifications:`",
            file=sys.stderr,
        )
        return 2
    try:
        config = load_notifications(settings.config_path)
    except NotificationsConfigError as exc:
        print(f"stockflow notify: {exc}", file=sys.stderr)
        return 2
    return run_notify(settings, config, group=args.group)


def _web(args: argparse.Namespace) -> int:
    if args.web_action == "user":
        from streams.web.command import user_command

        return user_command(load(), args)
    from streams.web.run import run_web

    return run_web(load())


def _feeds(args: argparse.Namespace) -> int:
    from connectors.feeds.command import run

    return run(load(), args)


def _add_feeds(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`stockflow feeds watch|import`: ERP/WMS files (CSV snapshots and deltas, EDIFACT)."""
    from connectors.feeds.command import add_parser

    add_parser(sub)
    sub.choices["feeds"].set_defaults(func=_feeds)


def _carriers(args: argparse.Namespace) -> int:
    from connectors.carriers.command import run

    return run(load().config_path, args)


def _add_carriers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`stockflow carriers rate-table`: the routing's rates from live carrier quotes."""
    from connectors.carriers.command import add_parser

    add_parser(sub)
    sub.choices["carriers"].set_defaults(func=_carriers)


def _add_web(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`stockflow web [user add|list|remove]`: the ordering page and its users."""
    web = sub.add_parser("web", help="serve the ordering page (or manage its users)")
    web_sub = web.add_subparsers(dest="web_action")
    user = web_sub.add_parser("user", help="add, list or remove a user of the ordering page")
    user.add_argument("user_action", choices=["add", "list", "remove"])
    user.add_argument("name", nargs="?", help="add, remove: the user's login")
    user.add_argument("--role", choices=["viewer", "buyer", "approver", "admin"], default="viewer")
    user.add_argument("--replace", action="store_true", help="add: replace an existing user")
    web.set_defaults(func=_web)


def _positive(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a positive whole number")
    return int(raw)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stockflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    stack = sub.add_parser(
        "stack", help="start, stop or show the local Kafka/ClickHouse/Prometheus"
    )
    stack.add_argument("action", choices=["up", "down", "status"])
    stack.add_argument(
        "--with-registry", action="store_true", help="also start the Apicurio schema registry"
    )
    stack.add_argument(
        "--secure",
        action="store_true",
        help="Kafka over SASL_SSL (SCRAM) with ACLs, ClickHouse over TLS (kept from then on)",
    )
    stack.add_argument(
        "--no-topics", dest="topics", action="store_false", help="do not declare the topics"
    )
    stack.add_argument(
        "--brokers",
        type=_positive,
        default=None,
        help="Kafka nodes of a local KRaft cluster (default 1; 3: replication 3, min ISR 2)",
    )
    stack.set_defaults(func=_stack)

    worker = sub.add_parser("worker", help="run a ledger worker (Faust) with its HTTP API")
    worker.add_argument("--loglevel", default="info", choices=["debug", "info", "warn", "error"])
    worker.set_defaults(func=_worker)

    sink = sub.add_parser("sink", help="write levels, movements, decisions, alerts to ClickHouse")
    sink.set_defaults(func=_sink)

    connectors = sub.add_parser("connectors", help="run the channel connectors")
    connectors.add_argument("action", choices=["serve"], help="serve: webhooks, polls, pushes")
    connectors.set_defaults(func=_connectors)

    report = sub.add_parser("report", help="print an analysis report from ClickHouse")
    report.add_argument(
        "name",
        help="turnover, days-of-cover, sales-trend, best-sellers, discrepancies, availability,"
        " audit, orders-fill, orders-split, orders-latency, orders-exceptions, orders-channels,"
        " purchasing, shipping-cost",
    )
    report.add_argument("--format", default="table", help="table (default), csv or json")
    report.add_argument("--since", help="start of the period (ISO date or time, UTC)")
    report.add_argument("--until", help="end of the period (ISO date or time, UTC)")
    report.add_argument("--sku", help="only this SKU")
    report.add_argument("--channel", help="only this channel")
    report.add_argument("--limit", type=int, help="at most this many rows")
    report.add_argument("--who", help="audit: only the writes of this principal")
    report.add_argument("--order", help="shipping-cost: the shipments of this order (channel:id)")
    report.set_defaults(func=_report)

    dead = sub.add_parser("deadletters", help="list or replay dead letters")
    dead.add_argument("action", choices=["list", "replay"])
    dead.add_argument("--component", help="only those of this component (ledger, sink, ...)")
    dead.add_argument("--reason", help="only those of this reason (undecodable, ...)")
    dead.add_argument("--since", help="only those since: ISO date or time (UTC), or 30m, 6h, 7d")
    dead.add_argument("--topic", help="only those read from this topic")
    dead.add_argument("--limit", type=int, help="list: show at most the newest N")
    dead.add_argument("--json", action="store_true", help="list: one JSON object per line")
    dead.add_argument("--dry-run", action="store_true", help="replay: only count what would go")
    dead.add_argument(
        "--again", action="store_true", help="replay: also those replayed by an earlier run"
    )
    dead.set_defaults(func=_deadletters)

    bench = sub.add_parser(
        "bench",
        help="measure Kafka, Faust, the ledger, latencies, the sink, recovery",
    )
    bench.add_argument("--quick", action="store_true", help="short smoke run (under a minute)")
    bench.add_argument("--json", action="store_true", help="print the results as JSON")
    bench.add_argument(
        "--only",
        help="comma-separated parts: raw, bare, ledger, workers, latency, sale, sink, recovery, "
        "state (default all)",
    )
    bench.set_defaults(func=_bench)

    token = sub.add_parser("token", help="create, list or revoke the HTTP APIs' bearer tokens")
    token.add_argument("action", choices=["create", "list", "revoke"])
    token.add_argument("name", nargs="?", help="create, revoke: the token's name")
    token.add_argument(
        "--scopes",
        nargs="+",
        help="create: stock:read, events:write, holds:write, orders:write, orders:read, "
        "orders:approve, metrics:read, replenish, fulfilment:write, admin",
    )
    token.add_argument(
        "--locations", nargs="+", help="create: the only locations it may act for (replenish)"
    )
    token.add_argument(
        "--sources", nargs="+", help="create: event sources it may write (default api:NAME)"
    )
    token.add_argument("--rate", type=float, help="create: write requests/s (default API_RATE)")
    token.add_argument("--burst", type=int, help="create: write burst (default API_BURST)")
    token.add_argument("--output", help="create: write the token to this file (mode 0600)")
    token.add_argument("--replace", action="store_true", help="create: replace a live token")
    token.set_defaults(func=_token)

    pos = sub.add_parser("pos", help="tills: import an end-of-day CSV of till sales")
    pos.add_argument("action", choices=["import"])
    pos.add_argument("file", help="CSV: id;sku;qty;occurred_at[;type;receipt;...] with a header")
    pos.add_argument("--store", required=True, help="the till's stockflow location")
    pos.add_argument("--source", help="the events' source (default pos:STORE)")
    pos.set_defaults(func=_pos)

    notify = sub.add_parser("notify", help="send alerts to people (email, webhooks, the page)")
    notify.add_argument("action", choices=["run"])
    notify.add_argument("--group", default="stockflow-notifier", help="Kafka consumer group")
    notify.set_defaults(func=_notify)

    demo = sub.add_parser("demo", help="play a scripted day through the whole pipeline")
    demo.add_argument("--keep", action="store_true", help="leave the local stack running")
    demo.set_defaults(func=_demo)

    _add_replenish(sub)
    _add_waves(sub)
    _add_ship(sub)
    _add_web(sub)
    _add_feeds(sub)
    _add_carriers(sub)
    _add_price(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except SettingsError as exc:
        print(f"stockflow: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
