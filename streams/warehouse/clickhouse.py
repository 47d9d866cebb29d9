"""ClickHouse connections and the sink's view of ClickHouse errors."""

from __future__ import annotations

import re
import struct

from clickhouse_driver import Client
from clickhouse_driver import errors as ch_errors

from streams.kernel.settings import Settings

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Server error codes that say "not now" rather than "never": retry, do not dead-letter.
TRANSIENT_CODES = frozenset(
    {
        60,  # UNKNOWN_TABLE (dropped under us: migrations run again on restart)
        81,  # UNKNOWN_DATABASE
        159,  # TIMEOUT_EXCEEDED
        164,  # READONLY
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        203,  # NO_FREE_CONNECTION
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        252,  # TOO_MANY_PARTS
        319,  # UNKNOWN_STATUS_OF_INSERT
    }
)


def database_name(settings: Settings) -> str:
    """The configured database, checked: it is pasted into SQL, so it must be an identifier."""
    name = settings.clickhouse_database
    if not _IDENTIFIER.match(name):
        raise ValueError(
            f"STOCKFLOW_CLICKHOUSE_DATABASE={name!r}: use letters, digits and underscores only"
        )
    return name


def connect(settings: Settings) -> Client:
    """A client without a default database: SQL names ``db.table`` so the DB may not exist yet."""
    return Client(
        host=settings.clickhouse_host,
        port=settings.clickhouse_port,
        user=settings.clickhouse_user,
        password=settings.clickhouse_password.reveal(),
        connect_timeout=3,
        send_receive_timeout=30,
        client_name="stockflow-sink",
    )


def is_unavailable(exc: BaseException) -> bool:
    """True when ClickHouse could not take the insert now (down, overloaded): retry it.

    False only when ClickHouse refused the data itself (a non-transient server error), or the
    driver could not encode a value into its column: retrying those rows would fail forever,
    so they go to the dead-letter topic. Anything else, including errors we do not know,
    counts as unavailable: we would rather retry forever than drop a row.
    """
    if isinstance(exc, ch_errors.ServerException):
        return exc.code in TRANSIENT_CODES
    refused = (ch_errors.TypeMismatchError, TypeError, ValueError, OverflowError, struct.error)
    return not isinstance(exc, refused)
