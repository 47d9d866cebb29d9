"""Replay dead letters: the original bytes, with the original key, to the original topic.

Each dead letter is replayed at most once per state folder: the coordinates of every dead
letter Kafka acknowledged the replay of are appended to ``deadletters/replayed.txt`` there,
and a later run skips them (``--again`` replays them anyway). Within one run, two dead
letters of the same original record (a record dead-lettered twice) are replayed once.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from confluent_kafka import KafkaError, Message, Producer

from streams.deadletters.reader import DeadLetter
from streams.kernel.kafka_config import producer_config
from streams.kernel.produce import DeliveryCallback, produce
from streams.kernel.settings import Settings
from streams.kernel.topics import ALL_TOPICS, STOCK_DEADLETTER

REPLAYABLE = frozenset(t.name for t in ALL_TOPICS if t is not STOCK_DEADLETTER)
PROGRESS_EVERY = 5.0  # seconds between progress lines


def replayed_path(settings: Settings) -> Path:
    return settings.state_dir / "deadletters" / "replayed.txt"


def load_replayed(path: Path) -> set[tuple[int, int]]:
    """Coordinates (partition, offset) in the dead-letter topic already replayed."""
    if not path.exists():
        return set()
    done: set[tuple[int, int]] = set()
    for line in path.read_text().splitlines():
        p, _, o = line.partition(":")
        if p.strip().isdigit() and o.strip().isdigit():
            done.add((int(p), int(o)))
    return done


def replay(settings: Settings, letters: list[DeadLetter], *, dry_run: bool, again: bool) -> int:
    """Replay ``letters``; prints found, replayed, skipped (and why). 0, or 1 if Kafka did not
    acknowledge every replay (those are not recorded, so the next run tries them again)."""
    path = replayed_path(settings)
    done = set() if again else load_replayed(path)
    skipped: dict[str, int] = {}
    todo: list[DeadLetter] = []
    origins: set[tuple[str | None, int | None, int | None]] = set()
    for letter in letters:
        topic = letter.record.get("topic")
        why = None
        if (letter.partition, letter.offset) in done:
            why = "replayed before"
        elif topic is None:
            why = "no original topic"
        elif topic not in REPLAYABLE:
            why = "topic not replayable"
        elif letter.origin in origins and letter.record.get("offset") is not None:
            why = "same record twice"
        if why is not None:
            skipped[why] = skipped.get(why, 0) + 1
            continue
        origins.add(letter.origin)
        todo.append(letter)
    verb = "would replay" if dry_run else "replaying"
    print(f"{len(letters)} dead letters found; {verb} {len(todo)}", file=sys.stderr)
    failed = 0 if dry_run else _produce(settings, todo, path)
    why = ", ".join(f"{n} {w}" for w, n in sorted(skipped.items()))
    replayed = 0 if dry_run else len(todo) - failed
    print(
        f"found {len(letters)}, replayed {replayed}"
        f"{f' (dry run: {len(todo)} would be)' if dry_run else ''}, skipped"
        f" {sum(skipped.values())}{f' ({why})' if why else ''}"
        f"{f', failed {failed} (not acknowledged by Kafka; run again)' if failed else ''}"
    )
    return 1 if failed else 0


def _produce(settings: Settings, letters: list[DeadLetter], path: Path) -> int:
    producer = Producer(producer_config(settings, **{"client.id": "stockflow-deadletters"}))
    acked: list[DeadLetter] = []
    failed: list[DeadLetter] = []

    def callback(letter: DeadLetter) -> DeliveryCallback:
        def delivered(err: KafkaError | None, _msg: Message) -> None:
            (failed if err is not None else acked).append(letter)

        return delivered

    started = last = time.monotonic()
    for n, letter in enumerate(letters, 1):
        r = letter.record
        produce(producer, r["topic"], r.get("key"), r["original"], on_delivery=callback(letter))
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY:
            last = now
            producer.poll(0)
            print(
                f"  {n}/{len(letters)} sent, {len(acked)} acknowledged"
                f" ({n / (now - started):.0f}/s)",
                file=sys.stderr,
            )
    remaining = producer.flush(60)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        for letter in acked:
            out.write(f"{letter.partition}:{letter.offset}\n")
    return len(failed) + remaining
