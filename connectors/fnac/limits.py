"""Fnac Darty's limits: none published (channel-contracts §5.2), so an optional client-side
token bucket (``limits: {per_s, burst}``, off by default) plus what the server says: 429, or
503 with ``Retry-After``, pauses every request of the channel."""

from __future__ import annotations

from connectors.framework.host_limits import HostLimits


class FnacLimits(HostLimits):
    shop = "Fnac Darty"

    def __init__(
        self, channel: str = "fnac", *, per_s: float | None = None, burst: float = 10.0
    ) -> None:
        super().__init__(channel, per_s=per_s, burst=burst)
