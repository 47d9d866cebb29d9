"""The local stack's own API tokens: the operator token of the demo, the bench and the tests,
and Prometheus's scrape token, each kept in ``$STOCKFLOW_STATE_DIR/tokens/NAME.token``
(mode 0600) and stored hashed in the token topic like any other.

A token file is reused while the store holds it unrevoked; otherwise a new token replaces
it. Names carry a digest of the state folder, so two stacks on one Kafka (a test's own
Prometheus, say) never replace each other's tokens.
"""

from __future__ import annotations

import fcntl
import hashlib
from pathlib import Path

from streams.kernel.access.command import write_private
from streams.kernel.access.store import publish, read_all
from streams.kernel.access.tokens import (
    EVENTS_WRITE,
    METRICS_READ,
    ORDERS_WRITE,
    SCOPES,
    STOCK_READ,
    digest,
    new_token,
)
from streams.kernel.settings import Settings

OPERATOR_SCOPES = SCOPES  # everything: the demo, the bench and the tests drive every route
OPERATOR_SOURCES = ("api",)  # what the API's events carried before tokens existed
UNLIMITED = 1_000_000  # requests/s and burst: a load generator is not a client to throttle
PROMETHEUS_SCOPES = (METRICS_READ,)
DEMO_SCOPES = (EVENTS_WRITE, ORDERS_WRITE, STOCK_READ)

_known: dict[Path, str] = {}


def token_path(settings: Settings, purpose: str) -> Path:
    return settings.state_dir / "tokens" / f"{purpose}.token"


def token_name(settings: Settings, purpose: str) -> str:
    folder = hashlib.blake2b(str(settings.state_dir).encode(), digest_size=4).hexdigest()
    return f"local-{purpose}-{folder}"


def operator_token(settings: Settings) -> str:
    """The token the demo, the bench and the tests call the APIs with (every scope)."""
    return ensure_token(
        settings, "operator", OPERATOR_SCOPES, OPERATOR_SOURCES, rate=UNLIMITED, burst=UNLIMITED
    )


def demo_token(settings: Settings) -> str:
    """The demo's shop system: counts, receipts, returns and till orders, as source
    ``store``."""
    return ensure_token(settings, "demo-store", DEMO_SCOPES, ("store",))


def prometheus_token_file(settings: Settings) -> Path:
    """The file Prometheus reads its bearer token from (``credentials_file``)."""
    ensure_token(settings, "prometheus", PROMETHEUS_SCOPES)
    return token_path(settings, "prometheus")


def ensure_token(
    settings: Settings,
    purpose: str,
    scopes: tuple[str, ...],
    sources: tuple[str, ...] = (),
    *,
    rate: float | None = None,
    burst: int | None = None,
    locations: tuple[str, ...] = (),
) -> str:
    """The token of ``purpose`` in this state folder: the saved one while the store holds it
    unrevoked with these scopes and locations, else a new one (saved, its hash published)."""
    path = token_path(settings, purpose)
    if path in _known:
        return _known[path]
    path.parent.mkdir(parents=True, exist_ok=True)
    name = token_name(settings, purpose)
    with path.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        saved = path.read_text().strip() if path.exists() else ""
        record = read_all(settings).get(name)
        if (
            saved
            and record is not None
            and not record.revoked
            and record.sha256 == digest(saved)
            and set(record.scopes) == set(scopes)
            and set(record.locations) == set(locations)
        ):
            token = saved
        else:
            token, fresh = new_token(
                name, scopes, sources, rate=rate, burst=burst, locations=locations
            )
            publish(settings, [fresh])
            write_private(path, token)
    _known[path] = token
    return token
