"""Webhooks and the event broker: the event log delivered, at least once, to the organisation's signed
HTTP endpoints and, when configured, to a RabbitMQ topic exchange.

Owns `webhook_endpoints`, `webhook_deliveries`, `broker_publications` and `broker_publication_floor`;
`dispatch.dispatch_once` is the one call a scheduler makes to move them all forward. Consumes every event
of the event log (see `fanout.fan_out_pending`); emits `WebhookTest` (only for the endpoint that asked
for it). Records audit rows for endpoint changes, secret rotations and redeliveries.
"""
