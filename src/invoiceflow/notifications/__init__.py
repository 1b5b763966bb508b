"""Notifications: invoice emails (PDF attached), payment reminders, status-change notices, password-reset and
document-ready emails, and Slack messages for job and workflow failures.

Owns the `notification_deliveries` table: one row per notification, claimed before anything is sent and
keyed by (organisation, dedupe key), which is what makes a retried workflow step harmless (see service.py).
Templates are Jinja2 (HTML autoescaped, plain text alongside) under templates/; transport is SMTP or, in
embedded mode, .eml files in the outbox folder (core.mailer), and a Slack incoming webhook.

Emits `EmailSent` when an email was handed over. Consumes nothing itself: workflows and schedules call
its functions from their steps.
"""
