"""The connector framework: what every channel shares, and how the parts fit.

Inbound (channel → ``stock.events.v1``)::

    POST /webhooks/{channel}  (connectors.server.create_app)
        → <channel>.inbound.*Inbound.handle(headers, raw)   verify HMAC on raw bytes (two
                                                             secrets for rotation), normalise
        → framework.intake.Intake.accept(delivery)           drop duplicate deliveries, stale
                                                             payloads, already-published ids
        → publisher(events)                                  framework.kafka.KafkaPublisher
    framework.polling.Poller → *Inbound.changed_since(ms) → the same Intake

Event ids are made of the channel's own ids (``shopify/<shop>/order/<id>/line/<id>/placed``),
so a webhook retry, a duplicate and a poll of the same fact all carry one id: the intake
publishes it once, and the ledger's applied-id set is the final guard.

Outbound (``stock.levels.v1`` → channel)::

    framework.kafka.LevelsSource.levels() → framework.engine.OutboundEngine (newest per SKU)
        one Lane per channel: newest version per SKU only, coalescing window or every N s,
        batches of the channel's size, Retry-After / jittered backoff, dead-letter sink
        → <channel>.outbound.*Pusher.push(items)    (Shopify CAS + idempotency key; Woo batch)
        → <channel>.limits                          (the channel's bucket and throttle signals)
    framework.drift.DriftDetector: echoes of our writes ignored, drift alerted (an alert on
    ``stock.alerts.v1``) and corrected; ``reconcile(channel)`` compares every acknowledged
    SKU with the channel. A push that fails for good leaves its SKU dirty, pushed again once
    the channel answers; ``framework.state`` keeps checkpoints, dirty and acknowledged SKUs
    in the state folder. ``framework.redact`` keeps credentials out of errors and logs.

Order lifecycle and refusals::

    <channel>.inbound / shopify.fulfilment / shopify.returns   placed, shipped, cancelled,
                                                                returned (with disposition)
    framework.decisions.DecisionsSource (stock.decisions.v1)
        → framework.refusals.RefusalHandler   rejected lines of our orders, once each
        → <channel>.refusals.*Refusals         cancel / backorder / flag on the channel
        → framework.exceptions_view            ``GET /v1/exceptions`` (flagged lines)

Each channel folder has the same parts: ``mapping`` (ids ↔ SKU, location), ``inbound``
(verify, normalise, poll), ``client`` (HTTP under ``limits``), ``limits``, ``outbound``,
``refusals``.
Metrics (``framework.metrics``) are named ``stockflow_connector_*`` with a ``channel`` label.
``connectors.runtime`` runs all of it in one process (``stockflow connectors serve``), with
the channel instances of ``connectors.config``.
"""
