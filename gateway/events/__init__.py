"""Events: subscriptions, the outbox, and signed, retried webhook delivery (Celery on Redis).

Producers call :func:`gateway.events.service.publish` inside their own transaction.
"""
