"""Cdiscount's limits: Octopia publishes no request rate, so a client-side token bucket is
configurable (``limits: {per_s, burst}``, off by default) and the gateway's 429 (with its
``Retry-After`` when given) pauses every request of the channel. The token endpoint is
rate-limited on its own (about 500 issuances an hour reported): the client reuses a token
until shortly before it expires and never asks for one per request."""

from __future__ import annotations

from connectors.framework.host_limits import HostLimits


class CdiscountLimits(HostLimits):
    shop = "Octopia"

    def __init__(
        self, channel: str = "cdiscount", *, per_s: float | None = None, burst: float = 10.0
    ) -> None:
        super().__init__(channel, per_s=per_s, burst=burst)
