"""``stockflow feeds watch`` and ``stockflow feeds import FILE``.

``watch`` takes the files dropped in ``--folder DIR`` (or ``--sftp sftp://user@host/path``)
until stopped (SIGTERM/SIGINT), or once with ``--once``. ``import`` publishes one file now
with a progress bar and a summary; its report goes beside it (``FILE.report.csv``) when a
row was bad. Both remember the files they processed (``--seen``, default
``$STOCKFLOW_STATE_DIR/feeds/seen.json``), so a file imported by hand is not taken again
by the watcher. Exit codes: 0 done (bad rows are reported, the good ones applied), 1 the
file is unreadable or missing, 2 Kafka or the source did not answer or a bad option.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from connectors.feeds.seen import SeenFiles
from connectors.feeds.sources import REPORT_SUFFIX, FolderSource, SftpFolder, SftpSource, Source
from connectors.feeds.watcher import FeedImporter, KafkaFeedPublisher, Outcome, Watcher
from connectors.framework.kafka import KafkaPublisher, PublishError
from schemas.codec import CodecError, codec_for
from streams.kernel.settings import Settings

BAR = 30  # characters of the progress bar


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    feeds = sub.add_parser("feeds", help="ERP/WMS files: stock counts, movements, EDIFACT")
    actions = feeds.add_subparsers(dest="action", required=True)
    watch = actions.add_parser("watch", help="take the files dropped in a folder or on SFTP")
    where = watch.add_mutually_exclusive_group(required=True)
    where.add_argument("--folder", type=Path, help="the folder files are dropped in")
    where.add_argument("--sftp", help="sftp://user@host[:port]/path[?key_file=...]")
    watch.add_argument("--settle", type=float, default=2.0, help="seconds unmodified (2)")
    watch.add_argument("--interval", type=float, default=2.0, help="seconds between scans (2)")
    watch.add_argument("--once", action="store_true", help="one scan (files settled now), exit")
    one = actions.add_parser("import", help="publish one file now, with a summary")
    one.add_argument("file", type=Path)
    one.add_argument("--again", action="store_true", help="even if its content was processed")
    for parser in (watch, one):
        parser.add_argument(
            "--location",
            action="append",
            default=[],
            metavar="CODE=NAME",
            help="an EDIFACT place (GLN) that is this stockflow location (repeatable)",
        )
        parser.add_argument("--seen", type=Path, help="the processed-files list (JSON)")


def locations(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        code, sep, name = pair.partition("=")
        if not sep or not code or not name:
            raise ValueError(f"--location {pair!r}: write CODE=NAME (e.g. 5400000000017=paris)")
        out[code] = name
    return out


def run(settings: Settings, args: argparse.Namespace) -> int:
    data = b""
    if args.action == "import":
        try:
            data = args.file.read_bytes()
        except OSError as exc:
            print(f"stockflow feeds import: {args.file}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    try:
        places = locations(args.location)
        seen = SeenFiles(args.seen or settings.state_dir / "feeds" / "seen.json")
        codec = codec_for(settings)
    except (ValueError, CodecError) as exc:
        print(f"stockflow feeds: {exc}", file=sys.stderr)
        return 2
    publisher = KafkaPublisher(settings, codec)
    importer = FeedImporter(KafkaFeedPublisher(publisher, codec), seen, locations=places)
    try:
        if args.action == "import":
            return asyncio.run(_import(importer, args.file, data, again=args.again))
        return asyncio.run(_watch(settings, importer, args))
    finally:
        publisher.close()


class _Bar:
    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, done: int, total: int) -> None:
        filled = BAR if total == 0 else BAR * done // total
        print(
            f"\r{self.name} [{'#' * filled}{'.' * (BAR - filled)}] {done}/{total} events",
            end="" if done < total else "\n",
            file=sys.stderr,
            flush=True,
        )


async def _import(importer: FeedImporter, file: Path, data: bytes, *, again: bool) -> int:
    try:
        outcome = await importer.take(file.name, data, again=again, progress=_Bar(file.name))
    except (PublishError, CodecError) as exc:
        print(f"stockflow feeds import: Kafka did not take the events: {exc}", file=sys.stderr)
        return 2
    _report(file, outcome)
    print(outcome.summary())
    return 1 if outcome.status == "failed" else 0


def _report(file: Path, outcome: Outcome) -> None:
    report = outcome.report()
    if report is None or outcome.status == "duplicate":
        return
    path = file.with_name(file.name + REPORT_SUFFIX)
    path.write_bytes(report)
    print(f"report: {path}", file=sys.stderr)


async def _watch(settings: Settings, importer: FeedImporter, args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    source: Source
    if args.sftp:
        try:
            source = SftpSource(SftpFolder.parse(args.sftp), settings)
        except ValueError as exc:
            print(f"stockflow feeds watch: {exc}", file=sys.stderr)
            return 2
    else:
        if not args.folder.is_dir():
            print(f"stockflow feeds watch: {args.folder} is not a folder", file=sys.stderr)
            return 2
        source = FolderSource(args.folder)
    watcher = Watcher(source, importer, settle_s=args.settle, interval_s=args.interval)
    try:
        if args.once:
            watcher.settle_s = 0.0
            await watcher.scan()  # notes every file's shape
            await watcher.scan()  # takes those unchanged since
            for outcome in watcher.outcomes:
                print(outcome.summary())
            return 0
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await watcher.run(stop)
        return 0
    except (OSError, PublishError, CodecError) as exc:
        print(f"stockflow feeds watch: {exc}", file=sys.stderr)
        return 2
    finally:
        await source.close()
