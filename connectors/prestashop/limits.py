"""PrestaShop's limits: the webservice has none, a host or WAF may add one.

An optional client-side token bucket (off by default) plus what the server says: 429, or
503 with ``Retry-After`` (maintenance mode, a host's throttle), pauses every request of the
channel.
"""

from __future__ import annotations

from connectors.framework.host_limits import HostLimits


class PrestaLimits(HostLimits):
    shop = "PrestaShop"

    def __init__(
        self, channel: str = "prestashop", *, per_s: float | None = None, burst: float = 10.0
    ) -> None:
        super().__init__(channel, per_s=per_s, burst=burst)
