"""Notifications: receipts, refund receipts and dunning emails to a merchant's customers (and SMS where
the merchant turns it on), plus alerts to the merchant itself.

Fed by the same domain events as the outbound webhooks: ``webhooks.services.event_record`` calls
``notifications.services.notifications_for_event`` (registered as its listener when the app is ready,
so the outbox never imports notifications) in the transaction that records the event, which
writes one ``Notification`` row per recipient and channel and enqueues its send once that commits.

Why our own outbox and not django-post-office. post-office is well kept and does queued mail with
templates and retries, but what this app must guarantee lives in the rows it would not own: a
notification belongs to a merchant and to a payment, refund or subscription (the API lists and filters
it by them), it is unique per event and recipient (a database constraint on our key, so a task run twice
or an event recorded twice sends once), SMS goes through the same queue and the same retry rules, and
the retry loop must tell a temporary SMTP answer (4xx, refused, timeout) from a permanent one (5xx),
which post-office folds into one "failed + retry" state. Its queue would be a second outbox next to the
webhook one, with its own cron and lock file. So this app reuses the webhook outbox's pattern (a row
written with the event, a conditional-update claim with a lease, backoff with a cap, a beat sweep for
what the broker lost) and sends with Django's own SMTP backend, configured by ``EMAIL_URL``.
"""
