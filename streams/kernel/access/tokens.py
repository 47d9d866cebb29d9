"""Bearer tokens of the HTTP APIs: scopes, the sources a token may write, the stored record.

A token is ``sft_`` + 43 URL-safe characters (32 random bytes). Only its SHA-256 is stored
(a random 256-bit secret needs no slow hash: nothing can be guessed from the digest); the
token itself is shown once, by ``stockflow token create``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field, replace
from typing import Any

from schemas.times import now_ms

STOCK_READ = "stock:read"
EVENTS_WRITE = "events:write"
HOLDS_WRITE = "holds:write"
ORDERS_WRITE = "orders:write"
ORDERS_READ = "orders:read"
ORDERS_APPROVE = "orders:approve"
METRICS_READ = "metrics:read"
REPLENISH = "replenish"  # the till's replenishment trigger (for the token's locations)
FULFILMENT_WRITE = "fulfilment:write"  # wave planning and pick confirmations
ADMIN = "admin"
SCOPES = (
    STOCK_READ,
    EVENTS_WRITE,
    HOLDS_WRITE,
    ORDERS_WRITE,
    ORDERS_READ,
    ORDERS_APPROVE,
    METRICS_READ,
    REPLENISH,
    FULFILMENT_WRITE,
    ADMIN,
)

PREFIX = "sft_"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_LOCATION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_SOURCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")
# Sources no API token may write: the connectors' (connector:{channel}) and the ledger's own
RESERVED_SOURCE_PREFIXES = ("connector:", "ledger")


class TokenError(ValueError):
    """A token name, scope or source that cannot be used; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made an HTTP request: the token's name, its scopes and the sources it may write.
    Set on the aiohttp request as ``request["stockflow.principal"]``."""

    name: str
    scopes: frozenset[str] = frozenset()
    sources: tuple[str, ...] = ()
    locations: tuple[str, ...] = ()  # empty: every location

    def may_act_for(self, location: str) -> bool:
        """True when the token is not restricted to locations, or lists ``location``."""
        return not self.locations or location in self.locations

    @property
    def default_source(self) -> str:
        return self.sources[0] if self.sources else f"api:{self.name}"


ANONYMOUS = Principal("anonymous")  # on the open routes: /health, signed webhooks


@dataclass(frozen=True, slots=True)
class TokenRecord:
    name: str
    sha256: str
    scopes: tuple[str, ...]
    sources: tuple[str, ...]
    created_at: int
    rate: float | None = None
    burst: int | None = None
    revoked_at: int | None = field(default=None)
    locations: tuple[str, ...] = ()  # empty: every location

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def principal(self) -> Principal:
        return Principal(self.name, frozenset(self.scopes), self.sources, self.locations)

    def revoke(self, at: int | None = None) -> TokenRecord:
        return replace(self, revoked_at=now_ms() if at is None else at)

    def to_avro(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sha256": self.sha256,
            "scopes": list(self.scopes),
            "sources": list(self.sources),
            "locations": list(self.locations),
            "rate": self.rate,
            "burst": self.burst,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }

    @classmethod
    def from_avro(cls, record: dict[str, Any]) -> TokenRecord:
        return cls(
            name=record["name"],
            sha256=record["sha256"],
            scopes=tuple(record["scopes"]),
            sources=tuple(record["sources"]),
            created_at=int(record["created_at"]),
            rate=record.get("rate"),
            burst=record.get("burst"),
            revoked_at=record.get("revoked_at"),
            locations=tuple(record.get("locations") or ()),
        )


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(
    name: str,
    scopes: list[str] | tuple[str, ...],
    sources: list[str] | tuple[str, ...] = (),
    *,
    rate: float | None = None,
    burst: int | None = None,
    locations: list[str] | tuple[str, ...] = (),
) -> tuple[str, TokenRecord]:
    """A fresh token and the record to store (its hash, never the token)."""
    check_name(name)
    chosen_scopes = tuple(dict.fromkeys(check_scopes(scopes)))
    chosen_sources = tuple(dict.fromkeys(check_sources(sources or (f"api:{name}",))))
    if rate is not None and rate <= 0:
        raise TokenError("--rate: a positive number of write requests per second")
    if burst is not None and burst < 1:
        raise TokenError("--burst: at least 1")
    chosen_locations = tuple(dict.fromkeys(check_locations(locations)))
    token = PREFIX + secrets.token_urlsafe(32)
    record = TokenRecord(
        name,
        digest(token),
        chosen_scopes,
        chosen_sources,
        now_ms(),
        rate=rate,
        burst=burst,
        locations=chosen_locations,
    )
    return token, record


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise TokenError(
            f"token name {name!r}: 1-64 of a-z 0-9 . _ -, starting with a letter or digit"
        )
    return name


def check_scopes(scopes: list[str] | tuple[str, ...]) -> list[str]:
    if not scopes:
        raise TokenError(f"--scopes: at least one of {', '.join(SCOPES)}")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise TokenError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    return list(scopes)


def check_sources(sources: list[str] | tuple[str, ...]) -> list[str]:
    for source in sources:
        if not _SOURCE.fullmatch(source):
            raise TokenError(
                f"source {source!r}: 1-128 of letters, digits and . _ : / -, "
                "starting with a letter or digit"
            )
        if source.startswith(RESERVED_SOURCE_PREFIXES):
            raise TokenError(
                f"source {source!r} is reserved: connector:* events come only from the "
                "connectors and ledger* events only from the ledger, never from the HTTP API"
            )
    return list(sources)


def check_locations(locations: list[str] | tuple[str, ...]) -> list[str]:
    for location in locations:
        if not _LOCATION.fullmatch(location):
            raise TokenError(
                f"location {location!r}: 1-128 of letters, digits and . _ : -, "
                "starting with a letter or digit"
            )
    return list(locations)
