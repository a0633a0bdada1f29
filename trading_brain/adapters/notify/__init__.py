"""Notification channels: ``log`` (always on), ``telegram``, ``webhook``.

Every channel has a ``name`` and ``notify(level, text)`` (``ports.Notifier``: never raises).
Remote channels also have ``send(level, text)``, which raises ``TemporaryError`` /
``RateLimited`` / ``OperationalError`` so ``trading_brain.app.notify`` can retry, back off and
keep the message pending; routing, once-only, digest and rate limit live there, not here.
"""
