"""Magento's limits: none on request rate (hosts and WAFs add them), input limits on lists.

A client-side token bucket (off unless ``per_s`` is configured) plus what the server says:
429, or 503 with ``Retry-After``, pauses every request of this channel. Web API input limits
(2.4.3+, switchable by the merchant): 20 entities per synchronous list, 5,000 per
asynchronous bulk request, at most 300 per page.
"""

from __future__ import annotations

from connectors.framework.host_limits import HostLimits

SYNC_LIST_LIMIT = 20
ASYNC_LIST_LIMIT = 5000
MAX_PAGE_SIZE = 300


class MagentoLimits(HostLimits):
    shop = "Magento"

    def __init__(
        self, channel: str = "magento", *, per_s: float | None = None, burst: float = 10.0
    ) -> None:
        super().__init__(channel, per_s=per_s, burst=burst)
