"""WooCommerce's limits: core REST v3 has none, but a host or WAF may add one.

So the model is an optional client-side token bucket (off by default) plus whatever the
server says: 429 or 503 with ``Retry-After`` pauses every request of this channel.
"""

from __future__ import annotations

from connectors.framework.host_limits import HostLimits

BATCH_LIMIT = 100  # create + update + delete per batch request (woocommerce_rest_batch_items_limit)


class WooLimits(HostLimits):
    shop = "WooCommerce"

    def __init__(
        self, channel: str = "woocommerce", *, per_s: float | None = None, burst: float = 10.0
    ) -> None:
        super().__init__(channel, per_s=per_s, burst=burst)
