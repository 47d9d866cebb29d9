"""Feed files on the real stack: files dropped in a folder → the watcher → Kafka → a real
ledger worker, whose stock is then what the files say; ``stockflow feeds import`` for one."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.feeds.seen import SeenFiles
from connectors.feeds.sources import FolderSource
from connectors.feeds.watcher import FeedImporter, KafkaFeedPublisher, Watcher
from connectors.framework.kafka import KafkaPublisher
from schemas.codec import codec_for
from streams.cli import main
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_DEADLETTER
from tests.support.kafka import read_topic, wait_for
from tests.support.ports import free_port
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration

CONFIG = {"locations": [{"name": "paris"}, {"name": "lyon"}]}
GLN_PARIS = "5400000000017"


@pytest.fixture(scope="module")
def worker(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    path = tmp_path_factory.mktemp("feeds") / "ledger.yaml"
    path.write_text(json.dumps(CONFIG), encoding="utf-8")  # JSON is YAML
    process = WorkerProcess(
        f"feeds-{uuid.uuid4().hex[:8]}",
        free_port(),
        local_stack.state_dir / "logs",
        STOCKFLOW_CONFIG=str(path),
    )
    process.start()
    yield process
    process.stop()


def _edifact(kind: str, doc: str, at: datetime, lines: list[tuple[str, str, int]]) -> str:
    """An EANCOM message as the partner writes it, one segment per line."""
    qualifier = {"DESADV": "12", "RECADV": "194"}[kind]
    items = "".join(
        f"LIN+{n}++{gtin}:SRV'\nPIA+1+{sku}:IN'\nQTY+{qualifier}:{qty}'\n"
        for n, (sku, gtin, qty) in enumerate(lines, 1)
    )
    body = (
        f"UNH+1+{kind}:D:96A:UN:EAN005'\nBGM+351+{doc}+9'\nDTM+137:{at:%Y%m%d%H%M}:203'\n"
        f"RFF+ON:PO-{doc}'\nNAD+DP+{GLN_PARIS}::9'\n{items}UNT+{6 + 3 * len(lines)}+1'\n"
    )
    unb = f"UNB+UNOC:3+5412345000013:14+5498765000012:14+{at:%y%m%d:%H%M}+{doc}'"
    return f"UNA:+.? '\n{unb}\n{body}UNZ+1+{doc}'\n"


def _invrpt(doc: str, at: datetime, sku: str) -> str:
    """An INVRPT counting ``sku``: 7 at lyon, 1 at the paris GLN."""
    body = (
        f"UNH+1+INVRPT:D:96A:UN:EAN008'\nBGM+35+{doc}+9'\nDTM+366:{at:%Y%m%d%H%M}:203'\n"
        f"LIN+1++4000000000031:SRV'\nPIA+1+{sku}:IN'\nLOC+18+lyon'\nQTY+145:7'\n"
        f"LOC+18+{GLN_PARIS}::9'\nQTY+145:1'\nUNT+9+1'\n"
    )
    unb = f"UNB+UNOC:3+5412345000013:14+5498765000012:14+{at:%y%m%d:%H%M}+{doc}'"
    return f"{unb}\n{body}UNZ+1+{doc}'\n"


def _drop(folder: Path, name: str, text: str, at: float) -> None:
    (folder / name).write_text(text, encoding="utf-8")
    os.utime(folder / name, (at, at))


def test_files_dropped_in_the_folder_make_the_ledgers_stock(
    local_stack: Settings,
    worker: WorkerProcess,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Given a real worker and a watcher on a folder publishing to Kafka,
    When a nightly snapshot (chair 10 and desk 5 at paris, as of two hours ago), a delta
    file (chair -2, then a bad row), a DESADV of 6 chairs to the paris GLN, a RECADV of 4
    of them, and the snapshot again under another name are dropped, and one more RECADV is
    imported with ``stockflow feeds import`` (desk 3), a junk file too, and an INVRPT
    (lamp: 7 at lyon, 1 at the paris GLN) is taken by ``stockflow feeds watch --once``,
    Then the worker's stock is chair on_hand 10-2+4=12 with 6-4=2 incoming, desk 5+3=8,
    lamp 7 at lyon and 1 at paris;
    the delta's bad row is in its report and a dead letter on stock.deadletter.v1; the
    duplicate applied nothing; the junk import exits 1 with its report beside it."""
    run = uuid.uuid4().hex[:8]
    chair, desk, lamp = f"chair-{run}", f"desk-{run}", f"lamp-{run}"
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    as_of = (now - timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    moved = (now - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    old = time.time() - 60
    snapshot = (
        f"sku;location;on_hand;as_of;seq\n{chair};paris;10;{as_of};1\n{desk};paris;5;{as_of};1\n"
    )
    _drop(inbox, "1-snapshot.csv", snapshot, old)
    _drop(
        inbox,
        "2-deltas.csv",
        "movement_id;sku;location;delta;reason;occurred_at\n"
        f"{run}-1;{chair};paris;-2;damage;{moved}\n{run}-2;{chair};paris;;damage;{moved}\n",
        old + 1,
    )
    _drop(
        inbox,
        "3-desadv.edi",
        _edifact("DESADV", f"D{run}", now, [(chair, "4000000000017", 6)]),
        old + 2,
    )
    _drop(
        inbox,
        "4-recadv.edi",
        _edifact("RECADV", f"R{run}", now, [(chair, "4000000000017", 4)]),
        old + 3,
    )
    _drop(inbox, "5-snapshot-again.csv", snapshot, old + 4)

    seen = SeenFiles(tmp_path / "seen.json")

    async def watch() -> list[Any]:
        codec = codec_for(local_stack)
        publisher = KafkaPublisher(local_stack, codec)
        importer = FeedImporter(
            KafkaFeedPublisher(publisher, codec), seen, locations={GLN_PARIS: "paris"}
        )
        watcher = Watcher(FolderSource(inbox), importer)
        try:
            await watcher.scan()
            return await watcher.scan()
        finally:
            publisher.close()

    outcomes = asyncio.run(watch())
    assert [o.status for o in outcomes] == ["done"] * 4 + ["duplicate"], outcomes
    print(f"\n[feeds] {'; '.join(o.summary() for o in outcomes)}")

    extra = tmp_path / "extra-recadv.edi"
    extra.write_text(_edifact("RECADV", f"X{run}", now, [(desk, "4000000000024", 3)]))
    junk = tmp_path / "junk.csv"
    junk.write_text("article;qty\nchair;1\n")
    cli = ["feeds", "import", "--seen", str(tmp_path / "seen.json")]
    assert main([*cli, "--location", f"{GLN_PARIS}=paris", str(extra)]) == 0
    out, err = capsys.readouterr()
    assert "1 events published, 0 bad rows" in out and "1/1 events" in err
    assert main([*cli, str(junk)]) == 1 and "unreadable" in capsys.readouterr().out
    nightly = tmp_path / "nightly"
    nightly.mkdir()
    _drop(nightly, "invrpt.edi", _invrpt(f"I{run}", now, lamp), old)
    watch = [
        "feeds",
        "watch",
        "--folder",
        str(nightly),
        "--once",
        "--seen",
        cli[3],
        "--location",
        f"{GLN_PARIS}=paris",
    ]
    assert main(watch) == 0 and (nightly / "done" / "invrpt.edi").exists()
    assert (tmp_path / "junk.csv.report.csv").exists()

    last: list[Any] = []

    def stock_is_right() -> bool:
        got = worker.stock(chair), worker.stock(desk), worker.stock(lamp)
        last[:] = got
        if None in got:
            return False
        c, d = got[0]["locations"].get("paris", {}), got[1]["locations"].get("paris", {})
        lamp_at = {k: v["on_hand"] for k, v in got[2]["locations"].items()}
        return (c.get("on_hand"), c.get("incoming"), d.get("on_hand"), lamp_at) == (
            12,
            2,
            8,
            {"lyon": 7, "paris": 1},
        )

    try:
        wait_for(stock_is_right, timeout=60, what=f"{chair} 12 + 2 incoming, {desk} 8, {lamp}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the worker has {last}") from None
    report = (inbox / "done" / "2-deltas.csv.report.csv").read_text()
    assert "3;bad_delta" in report
    dead = read_topic(
        local_stack,
        codec_for(local_stack),
        STOCK_DEADLETTER,
        lambda r: r.get("component") == "feeds" and f"{run}-2" in r["original"].decode(),
        until=lambda found: len(found) >= 1,
        timeout=30,
    )
    assert dead and dead[0]["reason"] == "bad_row" and "2-deltas.csv line 3" in dead[0]["error"]
