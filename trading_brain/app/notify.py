"""Alerts and their delivery: the ``Alert`` value, the always-on ``LogNotifier`` channel and
``deliver``, which sends each alert once (idempotent by key through the ``notifications``
table, migration 0005). No Dagster import: the alert sensor (defs/alerts.py), the executor
sensor and ``trading-brain kill`` all deliver through here.

Contract:
- ``Alert.key`` is the dedup key (what is reported, once); ``notification_id`` is its hash.
- ``deliver(alerts, notifiers, store, now)`` records each alert's row first; an id stored before
  is not sent again. A busy warehouse (``TemporaryError``) still sends it (the log never
  misses an alert); only the row is skipped. Returns (sent, unrecorded).
- ``notifiers`` satisfy ``ports.Notifier`` (``notify(level, text)``; a channel never raises for
  a delivery problem). Telegram/webhook channels plug in there in a later issue.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from trading_brain.domain.alerts import Alert
from trading_brain.errors import TemporaryError
from trading_brain.ports import Notifier

__all__ = ["Alert", "LogNotifier", "deliver", "log", "record_notification"]

log = logging.getLogger("trading_brain.alerts")


class LogNotifier:
    """The always-on channel: the Python log (and the sensor's tick log when given)."""

    name = "log"

    def __init__(self, logger: logging.Logger | logging.LoggerAdapter | Any | None = None
                 ) -> None:
        self.logger = logger or log

    def notify(self, level: str, text: str) -> None:
        fn = {"ERROR": self.logger.error, "WARN": self.logger.warning}.get(level,
                                                                         self.logger.info)
        fn(f"ALERT {level}: {text}")


def record_notification(store: Any, alert: Alert, now: datetime, channels: str) -> bool:
    """Insert the alert's row; False when it was recorded before (already sent)."""
    rows = store.execute("""INSERT INTO notifications VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT DO NOTHING RETURNING notification_id""",
                         [alert.notification_id, now, alert.level, alert.kind, alert.subject,
                          alert.text, channels])
    return bool(rows)


def deliver(alerts: Sequence[Alert], notifiers: Sequence[Notifier], store: Any, now: datetime,
            ) -> tuple[int, int]:
    """Send the alerts not recorded before; returns (sent, unrecorded because the store is busy)."""
    sent = unrecorded = 0
    channels = ",".join(n.name for n in notifiers)
    for a in alerts:
        try:
            if not record_notification(store, a, now, channels):
                continue  # sent by an earlier tick whose cursor was lost
        except TemporaryError:
            unrecorded += 1
        for n in notifiers:
            n.notify(a.level, a.text)
        sent += 1
    return sent, unrecorded
