"""Authorize.Net's notifications to EasyPay (inbound webhooks), kept next to the gateway they speak
for: ``services`` (receive, process, replay, purge), ``tasks``, the API views (``api``, ``urls``) and
the back office (``admin``). The rows are ``webhooks.InboundEvent``; the outbox (``webhooks``) never
imports this package."""
