"""Plain data shared by every connector: push items and results, observations, protocols."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

StockEventDict = dict[str, Any]
"""A ``stockflow.v1.StockEvent`` record as a dict: every schema field, times in epoch ms."""

Publisher = Callable[[Sequence[StockEventDict]], Awaitable[None]]
"""Publishes normalised events (to Kafka in production, to a list in tests); raises on failure."""

OrderPublisher = Callable[[Sequence[dict[str, Any]]], Awaitable[None]]
"""Publishes Order records (to ``orders.v1`` in production, to a list in tests)."""


class Outcome(StrEnum):
    """What became of one quantity push."""

    OK = "ok"  # the channel acknowledged the quantity
    RETRY = "retry"  # transient (throttle, 5xx, CAS lost twice): push again after a delay
    REFUSED = "refused"  # the channel refuses this item (bad id, bundle parent): drift, no retry
    FAILED = "failed"  # permanent for this request (bad input): dead-letter now


@dataclass(frozen=True, slots=True)
class PushItem:
    """The quantity one channel should show for one SKU, as of one level version."""

    channel: str
    sku: str
    quantity: int
    version: int
    occurred_at: int  # source time of the level's cause event, epoch ms (sync lag start)
    attempt: int = 0
    # units the channel may pre-sell against incoming stock (StockLevel.preorders); None:
    # the SKU has no pre-order allowance there, the channel's setting is left alone
    preorder: int | None = None
    # available units per location (StockLevel.locations), sorted by location, for a pusher
    # that writes per location (``by_location``); None for every other channel
    locations: tuple[tuple[str, int], ...] | None = None


@dataclass(frozen=True, slots=True)
class PushResult:
    item: PushItem
    outcome: Outcome
    error: str = ""
    retry_after: float | None = None  # seconds the channel asked us to wait, when it said
    # FAILED because the channel refused this item's own data (an invalid or unknown offer),
    # not the request: the same version cannot pass, so it is dead-lettered and not probed
    # again; the SKU's next change, or reconciliation's drift, pushes it again
    permanent: bool = False


@dataclass(frozen=True, slots=True)
class StockObservation:
    """A channel told us its own quantity for a SKU (echo of our write, or drift)."""

    channel: str
    sku: str
    quantity: int
    observed_at: int  # epoch ms


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one inbound webhook delivery or polled order amounts to, after verification.

    ``delivery_keys`` identify the delivery itself (a retry carries the same key);
    ``order_key``/``order_version`` let the intake drop a payload older than one already seen.
    """

    channel: str
    topic: str
    events: list[StockEventDict] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)  # stockflow.v1.Order records
    observations: list[StockObservation] = field(default_factory=list)
    delivery_keys: tuple[str, ...] = ()
    order_key: str | None = None
    order_version: int | None = None
    ping: bool = False


class ChannelPusher(Protocol):
    """A channel's outbound side: pushes absolute quantities and reads them back."""

    channel: str
    max_batch: int

    async def push(self, items: Sequence[PushItem]) -> list[PushResult]:
        """Push each item once; one result per item, never raises for channel errors."""
        ...

    async def read(self, skus: Sequence[str]) -> dict[str, int]:
        """The channel's current quantities for these SKUs (missing = unknown to the channel)."""
        ...

    def observed(self, sku: str, quantity: int) -> None:
        """The channel was seen holding ``quantity`` (drift): forget what we believed."""
        ...


DeadLetterSink = Callable[[PushItem, str], Awaitable[None]]
"""Called once for a push that finally failed, with the last error."""

RefusalSink = Callable[[PushItem, str], Awaitable[None]]
"""Called when a channel refuses a quantity: a drift alert, retried on the next change."""


class SignatureError(ValueError):
    """The webhook's signature header is missing or matches none of the configured secrets.

    Check the channel's webhook secret in the connector configuration; during a rotation
    configure both the old and the new secret.
    """


class ThrottledError(Exception):
    """The channel asked us to slow down (429, ``Retry-After``, ``THROTTLED`` in the body)."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnavailableError(Exception):
    """A 5xx, timeout or connection failure: the request may or may not have been applied."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RejectedError(Exception):
    """The channel refused the request as a whole (401, 403, 4xx): retrying will not help
    until the configuration (credentials, scopes, ids) is fixed."""


class InvalidPayloadError(ValueError):
    """A correctly signed delivery whose body we cannot read (not JSON, fields missing)."""
