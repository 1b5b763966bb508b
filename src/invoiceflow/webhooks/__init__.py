"""Webhooks and the event broker: the event log delivered, at least once, to the organisation's signed
HTTP endpoints and, when configured, to a RabbitMQ topic exchange.

Owns `webhook_endpoints` and `webhook_deliveries`. Consumes every event of the event log (see
`service.fan_out_pending`); emits `WebhookTest` (only for the endpoint that asked for it). Records audit
rows for endpoint changes, secret rotations and redeliveries.
"""
