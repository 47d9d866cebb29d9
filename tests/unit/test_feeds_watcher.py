"""The feed watcher on a real folder and a real SFTP server (asyncssh): each settled file
once, moved to done/ or failed/, bad rows reported beside it and dead-lettered, half-written
and duplicate files, Kafka away. The publisher is a list (Kafka is in the integration test)."""

from __future__ import annotations

import asyncio
import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from connectors.feeds.seen import SeenFiles
from connectors.feeds.sources import FolderSource, SftpFolder, SftpSource
from connectors.feeds.watcher import FeedImporter, Watcher
from connectors.framework.kafka import PublishError
from schemas.times import parse_time_ms
from streams.kernel.settings import Secret, load
from tests.unit.test_po_sending import SFTP_PASSWORD, sftp_server

AS_OF = "2026-11-30T02:00:00Z"
SNAPSHOT = f"sku;location;on_hand;as_of;seq\nchair;paris;12;{AS_OF};7\ndesk;paris;3;{AS_OF};7\n"
DELTA = (
    "movement_id;sku;location;delta;reason;occurred_at\n"
    f"M-1;chair;paris;-2;damage;{AS_OF}\n"
    f"M-2;chair;paris;x;damage;{AS_OF}\n"
    f"M-3;desk;paris;1;found;{AS_OF}\n"
)


class ListPublisher:
    """What would go to Kafka, in lists; ``fail_next(n)`` makes the next n publishes fail."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.dead: list[dict[str, Any]] = []
        self._fail = 0

    def fail_next(self, n: int) -> None:
        self._fail = n

    async def events(self, events: Sequence[dict[str, Any]]) -> None:
        if self._fail:
            self._fail -= 1
            raise PublishError("stock.events.v1: 1 unacknowledged")
        self.sent.extend(events)

    async def dead_letters(self, records: Sequence[dict[str, Any]]) -> None:
        self.dead.extend(records)


class Clock:
    def __init__(self) -> None:
        self.now = 2_000_000_000.0

    def __call__(self) -> float:
        return self.now


def setup(tmp_path: Path) -> tuple[Path, ListPublisher, Clock, Watcher]:
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    publisher = ListPublisher()
    clock = Clock()
    importer = FeedImporter(publisher, SeenFiles(tmp_path / "seen.json"))
    return inbox, publisher, clock, Watcher(FolderSource(inbox), importer, clock=clock)


def drop(folder: Path, name: str, text: str, *, at: float) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    os.utime(path, (at, at))
    return path


def published(publisher: ListPublisher) -> list[str]:
    return [e["event_id"] for e in publisher.sent]


def scan(watcher: Watcher) -> list[Any]:
    return asyncio.run(watcher.scan())


def test_a_settled_file_is_published_once_and_moved_to_done(tmp_path: Path) -> None:
    """Given a snapshot dropped in the inbox and left unmodified,
    When the watcher scans three times (clock past the settle time),
    Then the first scan only notes it, the second publishes its two counts and moves it to
    done/ without a report, the third finds nothing; its hash is recorded."""
    inbox, publisher, clock, watcher = setup(tmp_path)
    drop(inbox, "stock.csv", SNAPSHOT, at=clock.now - 10)
    assert scan(watcher) == [] and published(publisher) == []
    (outcome,) = scan(watcher)
    assert outcome.status == "done" and outcome.applied == 2
    as_of = parse_time_ms(AS_OF, "as_of")
    assert published(publisher) == [
        f"feeds/count/paris/chair/7/{as_of}",
        f"feeds/count/paris/desk/7/{as_of}",
    ]
    assert sorted(p.name for p in (inbox / "done").iterdir()) == ["stock.csv"]
    assert not (inbox / "stock.csv").exists() and scan(watcher) == []
    assert len(SeenFiles(tmp_path / "seen.json")) == 1


def test_bad_rows_are_reported_beside_the_file_and_dead_lettered_and_good_rows_applied(
    tmp_path: Path,
) -> None:
    """Given a delta file with a bad delta on line 3 between two good rows,
    When the watcher takes it,
    Then the two good movements are published, the file is in done/ with
    ``deltas.csv.report.csv`` beside it naming line 3 and its reason, and one dead letter
    (component feeds, reason bad_row) carries the row's text and the file and line."""
    inbox, publisher, clock, watcher = setup(tmp_path)
    drop(inbox, "deltas.csv", DELTA, at=clock.now - 10)
    scan(watcher)
    (outcome,) = scan(watcher)
    assert published(publisher) == ["feeds/movement/M-1", "feeds/movement/M-3"]
    report = (inbox / "done" / "deltas.csv.report.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(report), delimiter=";"))
    assert [(r["line"], r["reason"]) for r in rows] == [("3", "bad_delta")]
    assert rows[0]["text"] == f"M-2;chair;paris;x;damage;{AS_OF}"
    (dead,) = publisher.dead
    assert (dead["component"], dead["reason"]) == ("feeds", "bad_row")
    assert dead["original"] == rows[0]["text"].encode() and "deltas.csv line 3" in dead["error"]
    assert outcome.summary().endswith("2 events published, 1 bad rows")


def test_a_half_written_file_is_taken_only_once_it_settled_and_whole(tmp_path: Path) -> None:
    """Given a snapshot whose first half is written, an upload still named ``.part``,
    When the watcher scans, the writer appends the rest (a new mtime), the watcher scans
    again, then once more after the settle time, and the upload is renamed,
    Then nothing is taken while the file changes or is younger than the settle time; the
    settled file is taken whole (both rows), and the renamed upload is taken after it."""
    inbox, publisher, clock, watcher = setup(tmp_path)
    half = SNAPSHOT[: SNAPSHOT.index("desk")]
    path = drop(inbox, "stock.csv", half, at=clock.now - 1)
    drop(inbox, "more.csv.part", SNAPSHOT.replace(";7\n", ";8\n"), at=clock.now - 10)
    assert scan(watcher) == []
    path.write_text(SNAPSHOT, encoding="utf-8")
    os.utime(path, (clock.now, clock.now))
    assert scan(watcher) == []  # changed since the last scan
    assert scan(watcher) == []  # unchanged, but younger than the settle time
    clock.now += 5
    (outcome,) = scan(watcher)
    assert outcome.applied == 2 and len(published(publisher)) == 2
    (inbox / "more.csv.part").rename(inbox / "more.csv")
    scan(watcher)
    (later,) = scan(watcher)
    assert later.name == "more.csv" and len(published(publisher)) == 4


def test_a_file_written_while_being_read_is_left_for_a_later_scan(tmp_path: Path) -> None:
    """Given a settled snapshot whose writer appends a row while the watcher reads it,
    When the watcher scans,
    Then it publishes nothing from that read (the file changed under it), and takes the
    whole file (three rows) once it settled again."""
    inbox, publisher, clock, watcher = setup(tmp_path)
    path = drop(inbox, "stock.csv", SNAPSHOT, at=clock.now - 10)
    source = watcher.source
    assert isinstance(source, FolderSource)
    reads = 0

    class WrittenDuringRead(FolderSource):
        async def read(self, name: str) -> bytes:
            nonlocal reads
            reads += 1
            data = await super().read(name)
            if reads == 1:
                path.write_text(SNAPSHOT + f"lamp;paris;1;{AS_OF};7\n", encoding="utf-8")
                os.utime(path, (clock.now - 5, clock.now - 5))
            return data

    watcher.source = WrittenDuringRead(inbox)
    scan(watcher)
    assert scan(watcher) == [] and published(publisher) == []
    assert scan(watcher) == []  # its new shape noted
    (outcome,) = scan(watcher)
    assert outcome.applied == 3 and reads == 2


def test_a_duplicate_file_applies_nothing_even_after_a_restart(tmp_path: Path) -> None:
    """Given a snapshot already processed,
    When the same content arrives under another name, and again after a restart (a new
    watcher reading the same processed-files list),
    Then nothing more is published; both copies go to done/ with a report naming the first."""
    inbox, publisher, clock, watcher = setup(tmp_path)
    drop(inbox, "stock.csv", SNAPSHOT, at=clock.now - 10)
    scan(watcher)
    scan(watcher)
    drop(inbox, "stock-again.csv", SNAPSHOT, at=clock.now - 10)
    scan(watcher)
    (dup,) = scan(watcher)
    assert dup.status == "duplicate" and dup.first == "stock.csv"
    _, restarted_pub, _, restarted = setup(tmp_path)
    restarted.clock = clock
    drop(inbox, "stock.csv", SNAPSHOT, at=clock.now - 10)
    scan(restarted)
    (again,) = scan(restarted)
    assert again.status == "duplicate" and published(restarted_pub) == []
    assert len(published(publisher)) == 2
    done = sorted(p.name for p in (inbox / "done").iterdir())
    assert len([n for n in done if not n.endswith(".report.csv")]) == 3
    report = (inbox / "done" / "stock-again.csv.report.csv").read_text()
    assert "duplicate_file" in report and "stock.csv" in report


def test_an_unreadable_file_goes_to_failed_with_its_reason_and_one_dead_letter(
    tmp_path: Path,
) -> None:
    """Given a file with an unknown header and a good snapshot after it,
    When the watcher takes both,
    Then the unknown one is in failed/ with a report giving the reason, one dead letter
    ``unreadable_file`` holds its bytes, and the good one is published and in done/."""
    inbox, publisher, clock, watcher = setup(tmp_path)
    drop(inbox, "a-junk.csv", "article;qty\nchair;1\n", at=clock.now - 20)
    drop(inbox, "b-stock.csv", SNAPSHOT, at=clock.now - 10)
    scan(watcher)
    assert [o.status for o in scan(watcher)] == ["failed", "done"]
    assert (inbox / "failed" / "a-junk.csv").exists()
    assert "neither a snapshot" in (inbox / "failed" / "a-junk.csv.report.csv").read_text()
    (dead,) = publisher.dead
    assert dead["reason"] == "unreadable_file" and dead["original"] == b"article;qty\nchair;1\n"
    assert len(published(publisher)) == 2


def test_kafka_not_answering_leaves_the_file_to_be_taken_again(tmp_path: Path) -> None:
    """Given a settled snapshot and a publisher failing once,
    When the watcher runs (scans until stopped),
    Then the failing scan leaves the file in the inbox unrecorded, and a later scan
    publishes it and moves it to done/."""
    inbox, publisher, clock, watcher = setup(tmp_path)
    drop(inbox, "stock.csv", SNAPSHOT, at=clock.now - 10)
    publisher.fail_next(1)
    watcher.interval_s = 0.01

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(watcher.run(stop))
        for _ in range(500):
            await asyncio.sleep(0.01)
            if watcher.outcomes:
                break
        stop.set()
        await task

    asyncio.run(run())
    assert [o.status for o in watcher.outcomes] == ["done"]
    assert len(published(publisher)) == 2 and (inbox / "done" / "stock.csv").exists()


def test_the_watcher_takes_files_from_an_sftp_folder(tmp_path: Path) -> None:
    """Given a local SFTP server (password login, host key in known_hosts) whose feed
    folder holds a delta file with a bad row and an upload still named ``.part``,
    When the watcher scans it twice over SFTP,
    Then the delta's good rows are published, the file is moved to done/ on the server
    with its report beside it, and the ``.part`` upload is left where it is."""
    root, known = tmp_path / "sftp", tmp_path / "known_hosts"
    (root / "feeds").mkdir(parents=True)
    drop(root / "feeds", "deltas.csv", DELTA, at=1_700_000_000)
    drop(root / "feeds", "next.csv.part", SNAPSHOT, at=1_700_000_000)
    publisher = ListPublisher()

    async def run() -> list[Any]:
        async with sftp_server(root, known) as port:
            settings = load()
            object.__setattr__(settings, "sftp_password", Secret(SFTP_PASSWORD))
            object.__setattr__(settings, "sftp_known_hosts", str(known))
            source = SftpSource(SftpFolder.parse(f"sftp://acme@127.0.0.1:{port}/feeds"), settings)
            importer = FeedImporter(publisher, SeenFiles(tmp_path / "seen.json"))
            watcher = Watcher(source, importer)
            try:
                await watcher.scan()
                return await watcher.scan()
            finally:
                await source.close()

    (outcome,) = asyncio.run(run())
    assert outcome.applied == 2 and published(publisher) == [
        "feeds/movement/M-1",
        "feeds/movement/M-3",
    ]
    assert sorted(p.name for p in (root / "feeds" / "done").iterdir()) == [
        "deltas.csv",
        "deltas.csv.report.csv",
    ]
    assert (root / "feeds" / "next.csv.part").exists()


def test_an_sftp_url_with_a_password_is_refused_without_repeating_it() -> None:
    """Given an sftp:// URL carrying a password, When parsed, Then ValueError names
    STOCKFLOW_SFTP_PASSWORD and does not contain the password."""
    with pytest.raises(ValueError, match="STOCKFLOW_SFTP_PASSWORD") as bad:
        SftpFolder.parse("sftp://acme:hunter2@erp.example:2222/out")
    assert "hunter2" not in str(bad.value)
    assert str(SftpFolder.parse("sftp://acme@erp.example/out/")) == "sftp://acme@erp.example:22/out"


def test_feeds_import_of_a_missing_file_exits_1_and_a_bad_option_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given no Kafka needed, When ``stockflow feeds import`` is given a file that does not
    exist, Then it exits 1 naming it; given ``--location`` without ``=``, it exits 2 with
    the form to write."""
    from streams.cli import main

    assert main(["feeds", "import", str(tmp_path / "nowhere.csv")]) == 1
    assert "nowhere.csv: No such file" in capsys.readouterr().err
    (tmp_path / "f.csv").write_text(SNAPSHOT)
    seen = ["--seen", str(tmp_path / "seen.json")]
    assert main(["feeds", "import", str(tmp_path / "f.csv"), "--location", "paris", *seen]) == 2
    assert "CODE=NAME" in capsys.readouterr().err
