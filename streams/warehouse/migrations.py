"""Create and migrate the ClickHouse schema: numbered, recorded, idempotent.

Each migration's statements are themselves idempotent (``IF NOT EXISTS``, backfills into
ReplacingMergeTree targets, an ``ADD COLUMN`` skipped when the column is there), so a crash
between applying a migration and recording it, or two sinks starting at once, only repeats
harmless work.
"""

from __future__ import annotations

import logging
import re
from typing import Protocol

from streams.warehouse.schema import MIGRATIONS, MIGRATIONS_TABLE, Migration

log = logging.getLogger("stockflow.sink.migrations")


class SqlClient(Protocol):
    def execute(self, query: str, params: object = None) -> object: ...


def applied_versions(client: SqlClient, db: str) -> set[int]:
    rows = client.execute(f"SELECT DISTINCT version FROM {db}.schema_migrations")  # noqa: S608
    assert isinstance(rows, list)
    return {int(version) for (version,) in rows}


_ADD_COLUMN = re.compile(r"ALTER TABLE (\w+)\.(\w+) ADD COLUMN (\w+) ")


def _column_added(client: SqlClient, statement: str) -> bool:
    """True when ``statement`` adds a column that its table has already (a migration that
    ran and was not recorded); the servers' oldest release has no ADD COLUMN IF NOT EXISTS."""
    found = _ADD_COLUMN.match(statement)
    if found is None:
        return False
    rows = client.execute(
        "SELECT count() FROM system.columns"
        " WHERE database = %(db)s AND table = %(table)s AND name = %(name)s",
        {"db": found[1], "table": found[2], "name": found[3]},
    )
    assert isinstance(rows, list)
    return bool(rows and rows[0][0])


def migrate(
    client: SqlClient, db: str, migrations: tuple[Migration, ...] = MIGRATIONS
) -> list[int]:
    """Apply the migrations ``db`` lacks, in order; return the versions applied now."""
    client.execute(f"CREATE DATABASE IF NOT EXISTS {db}")
    client.execute(MIGRATIONS_TABLE.format(db=db))
    done = applied_versions(client, db)
    applied: list[int] = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version in done:
            continue
        log.info("ClickHouse %s: applying migration %d (%s)", db, migration.version, migration.name)
        for statement in migration.statements:
            if not _column_added(client, statement.format(db=db)):
                client.execute(statement.format(db=db))
        client.execute(
            f"INSERT INTO {db}.schema_migrations (version, name, applied_at)"
            " SELECT %(version)s, %(name)s, now()",  # INSERT ... SELECT: never inline VALUES
            {"version": migration.version, "name": migration.name},
        )
        applied.append(migration.version)
    return applied
