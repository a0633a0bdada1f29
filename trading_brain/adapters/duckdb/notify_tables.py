"""Warehouse functions for notifications: the once-only record and the per-channel outbox.

Contract:
- ``notifications`` (migration 0005) holds each alert once, keyed by ``Alert.notification_id``;
  ``record_notification`` returns False when the id was stored before (already reported).
- ``notification_deliveries`` is the outbox of the remote channels: a row per (notification,
  channel) once a delivery tried it; ``status`` pending -> sent | failed (given up after
  ``max_attempts``). A notification without a row for a channel is pending on it.
  ``notification_messages`` holds one row per message a channel accepted (rate limit window).
  Both tables come from migration 0010 (``0010_notify_outbox.sql``, ``IF NOT EXISTS``: homes
  that created them at runtime before it keep their rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

import duckdb

from trading_brain.adapters.duckdb.connection import run, transaction
from trading_brain.domain.alerts import Alert


class _Warehouse(Protocol):
    path: Path

    def connect(self, *, read_only: bool = False
                ) -> AbstractContextManager[duckdb.DuckDBPyConnection]: ...


@dataclass(frozen=True, slots=True)
class Pending:
    notification_id: str
    ts: datetime
    level: str
    kind: str
    subject: str
    text: str
    attempts: int


def record_notification(store: _Warehouse, alert: Alert, now: datetime, channels: str) -> bool:
    """Insert the alert's row; False when it was recorded before (already sent)."""
    with store.connect() as con:
        rows = run(con, """INSERT INTO notifications VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT DO NOTHING RETURNING notification_id""",
                   [alert.notification_id, now, alert.level, alert.kind, alert.subject,
                    alert.text, channels])
    return bool(rows)


def pending(store: _Warehouse, channel: str, kinds: Sequence[str], since: datetime,
            now: datetime, limit: int = 200) -> list[Pending]:
    """Notifications of ``kinds`` since ``since`` not yet sent (nor given up) on ``channel``
    whose retry time has come, oldest first (then in the order they were recorded)."""
    if not kinds:
        return []
    with store.connect() as con:
        rows = run(con, """SELECT n.notification_id, n.ts, n.level, n.kind, n.subject, n.text,
                   coalesce(d.attempts, 0)
            FROM notifications n LEFT JOIN notification_deliveries d
              ON d.notification_id = n.notification_id AND d.channel = ?
            WHERE n.ts >= ? AND list_contains(?, n.kind)
              AND (d.status IS NULL OR (d.status = 'pending'
                   AND coalesce(d.next_attempt_at, n.ts) <= ?))
            ORDER BY n.ts, n.rowid LIMIT ?""",
                   [channel, since, list(kinds), now, limit])
    return [Pending(*r) for r in rows]


def mark_sent(store: _Warehouse, channel: str, ids: Sequence[str], now: datetime,
              digest: bool = False) -> None:
    """The channel accepted one message carrying ``ids``."""
    with store.connect() as con, transaction(con):
        for nid in ids:
            _upsert(con, nid, channel, "sent", None, now, digest, None)
        run(con, "INSERT INTO notification_messages VALUES (?, ?, ?)", [channel, now, len(ids)])


def mark_retry(store: _Warehouse, channel: str, rows: Sequence[Pending], now: datetime,
               error: str, retry_after: timedelta, max_attempts: int) -> int:
    """Count a failed send; pending again after ``retry_after``, failed after ``max_attempts``.
    Returns how many were given up."""
    gave_up = 0
    with store.connect() as con, transaction(con):
        for p in rows:
            attempts = p.attempts + 1
            status = "failed" if attempts >= max_attempts else "pending"
            gave_up += status == "failed"
            _upsert(con, p.notification_id, channel, status, attempts, now + retry_after,
                    False, error[:300])
    return gave_up


def messages_since(store: _Warehouse, channel: str, since: datetime) -> int:
    """Messages ``channel`` accepted since ``since`` (the rate-limit window)."""
    with store.connect() as con:
        return run(con, "SELECT count(*) FROM notification_messages WHERE channel = ? AND ts > ?",
                   [channel, since])[0][0]


def deliveries(store: _Warehouse) -> list[tuple]:
    """(notification_id, channel, status, attempts, digest, last_error) of every delivery."""
    with store.connect() as con:
        return run(con, """SELECT notification_id, channel, status, attempts, digest,
            last_error FROM notification_deliveries ORDER BY channel, notification_id""")


def _upsert(con: duckdb.DuckDBPyConnection, nid: str, channel: str, status: str,
            attempts: int | None, when: datetime, digest: bool, error: str | None) -> None:
    if status == "sent":
        run(con, """INSERT INTO notification_deliveries VALUES (?, ?, 'sent', 0, NULL, ?, ?, NULL)
            ON CONFLICT DO UPDATE SET status = 'sent', sent_at = excluded.sent_at,
              digest = excluded.digest""", [nid, channel, when, digest])
        return
    run(con, """INSERT INTO notification_deliveries VALUES (?, ?, ?, ?, ?, NULL, false, ?)
        ON CONFLICT DO UPDATE SET status = excluded.status, attempts = excluded.attempts,
          next_attempt_at = excluded.next_attempt_at, last_error = excluded.last_error""",
        [nid, channel, status, attempts, when, error])


def alert_counts_since(store: _Warehouse, since: datetime) -> list[tuple[str, int]]:
    """(level, count) of the notifications recorded after ``since``."""
    with store.connect() as con:
        return [(lv, n) for lv, n in run(con, """SELECT level, count(*) FROM notifications
            WHERE ts > ? GROUP BY level ORDER BY level""", [since])]
