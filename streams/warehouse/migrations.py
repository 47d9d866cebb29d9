"""Create and migrate the ClickHouse schema: numbered, recorded, idempotent.

Each migration's statements are themselves idempotent (``IF NOT EXISTS``, backfills into
ReplacingMergeTree targets), so a crash between applying a migration and recording it, or
two sinks starting at once, only repeats harmless work.
"""

from __future__ import annotations

import logging
from typing import Protocol

from streams.warehouse.schema import MIGRATIONS, MIGRATIONS_TABLE, Migration

log = logging.getLogger("stockflow.sink.migrations")


class SqlClient(Protocol):
    def execute(self, query: str, params: object = None) -> object: ...


def applied_versions(client: SqlClient, db: str) -> set[int]:
    rows = client.execute(f"SELECT DISTINCT version FROM {db}.schema_migrations")  # noqa: S608
    assert isinstance(rows, list)
    return {int(version) for (version,) in rows}


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
            client.execute(statement.format(db=db))
        client.execute(
            f"INSERT INTO {db}.schema_migrations (version, name, applied_at)"
            " SELECT %(version)s, %(name)s, now()",  # INSERT ... SELECT: never inline VALUES
            {"version": migration.version, "name": migration.name},
        )
        applied.append(migration.version)
    return applied
