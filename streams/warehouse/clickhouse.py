"""ClickHouse connections and the sink's view of ClickHouse errors."""

from __future__ import annotations

import re
import struct
from typing import Any

from clickhouse_driver import Client
from clickhouse_driver import errors as ch_errors

from streams.kernel.settings import Settings

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Server error codes that say "not now" rather than "never": retry, do not dead-letter.
# Each maps to the cause the sink reports (metric label, log line). Codes checked on 18.16:
# readonly=1 gives 164, a wrong password 193, an unknown user 192, a dropped table 60.
TRANSIENT_CODES: dict[int, str] = {
    60: "restarting",  # UNKNOWN_TABLE (dropped under us: migrations run again on restart)
    81: "restarting",  # UNKNOWN_DATABASE
    159: "overloaded",  # TIMEOUT_EXCEEDED
    164: "read_only",  # READONLY (readonly=1 profile or setting)
    192: "auth",  # UNKNOWN_USER
    193: "auth",  # WRONG_PASSWORD
    194: "auth",  # REQUIRED_PASSWORD
    195: "auth",  # IP_ADDRESS_NOT_ALLOWED
    201: "overloaded",  # QUOTA_EXPIRED
    202: "overloaded",  # TOO_MANY_SIMULTANEOUS_QUERIES
    203: "overloaded",  # NO_FREE_CONNECTION
    209: "unreachable",  # SOCKET_TIMEOUT
    210: "unreachable",  # NETWORK_ERROR
    236: "restarting",  # ABORTED
    241: "overloaded",  # MEMORY_LIMIT_EXCEEDED
    242: "read_only",  # TABLE_IS_READ_ONLY
    243: "disk_full",  # NOT_ENOUGH_SPACE
    252: "overloaded",  # TOO_MANY_PARTS
    319: "unreachable",  # UNKNOWN_STATUS_OF_INSERT
    394: "restarting",  # QUERY_WAS_CANCELLED (server shutting down)
    425: "disk_full",  # SYSTEM_ERROR (errno from the filesystem: ENOSPC, EROFS, EIO)
    473: "restarting",  # DEADLOCK_AVOIDED (table locked by an ALTER/DROP)
    497: "auth",  # ACCESS_DENIED
    516: "auth",  # AUTHENTICATION_FAILED (current releases)
}


class ServerConditionError(RuntimeError):
    """ClickHouse refused a row, but refuses an empty insert into the same table too: the
    server is unwell (an error code we do not know), not the row. Retried, not dead-lettered."""

    cause = "server_error"


def first_line(exc: BaseException) -> str:
    """The error without the server stack trace ClickHouse appends to every message."""
    text = str(exc).split("Stack trace:")[0]
    return " ".join(part.strip() for part in text.splitlines() if part.strip())[:300]


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
        **tls_options(settings),
    )


def tls_options(settings: Settings) -> dict[str, Any]:
    """clickhouse-driver's TLS options: with ``STOCKFLOW_CLICKHOUSE_SECURE=1`` the native
    protocol runs over TLS (the server's ``tcp_port_secure``) and the server's certificate is
    checked against the CA file (the system's CAs when none is given)."""
    if not settings.clickhouse_secure:
        return {}
    options: dict[str, Any] = {"secure": True, "verify": True}
    if settings.clickhouse_ca_file:
        options["ca_certs"] = settings.clickhouse_ca_file
    return options


def outage_cause(exc: BaseException) -> str | None:
    """Why ClickHouse could not take the insert *now* (a cause to retry after), or None when
    it refused the data itself.

    None only for a non-transient server error, or a value the driver could not encode into
    its column: retrying those rows would fail forever, so they go to the dead-letter topic.
    Anything else, including errors we do not know, is an outage: we would rather retry
    forever than drop a row.
    """
    if isinstance(exc, ServerConditionError):
        return exc.cause
    if isinstance(exc, ch_errors.ServerException):
        return TRANSIENT_CODES.get(exc.code)
    refused = (ch_errors.TypeMismatchError, TypeError, ValueError, OverflowError, struct.error)
    if isinstance(exc, refused):
        return None
    return "unreachable"


def is_unavailable(exc: BaseException) -> bool:
    """True when ClickHouse could not take the insert now (down, read-only, full, refusing
    credentials, restarting, overloaded): retry it. See :func:`outage_cause`."""
    return outage_cause(exc) is not None
