"""``stockflow deadletters``: list the dead-letter topic and replay dead letters.

A dead letter keeps the original bytes, key and coordinates of a record a component gave up
on. Once the cause is fixed (a server back, a bug fixed, a mapping added), ``replay``
re-publishes the original bytes with the original key to the original topic, so the record
goes through the pipeline again. The ledger dedupes by event id, the sink by record id, so a
record replayed twice is applied once; a replayed dead letter is also recorded in the state
folder, so the same dead letter is not replayed again by a later run (``--again`` overrides).
"""

from __future__ import annotations

import argparse
import sys

from streams.kernel.settings import Settings


def run_deadletters(settings: Settings, args: argparse.Namespace) -> int:
    """The CLI: 0 done, 1 some replays not acknowledged by Kafka, 2 bad input."""
    from streams.deadletters.reader import FilterError, Filters, read_dead_letters
    from streams.deadletters.replay import replay

    try:
        filters = Filters.parse(
            component=args.component, reason=args.reason, since=args.since, topic=args.topic
        )
    except FilterError as exc:
        print(f"stockflow deadletters: {exc}", file=sys.stderr)
        return 2
    letters = read_dead_letters(settings, filters)
    if args.action == "list":
        from streams.deadletters.reader import print_letters

        print_letters(letters, limit=args.limit, as_json=args.json)
        return 0
    return replay(settings, letters, dry_run=args.dry_run, again=args.again)
