"""Migration 0010: the notification outbox tables come from the migrations (no runtime DDL),
and a home whose code created them at runtime before 0010 existed migrates keeping its rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from trading_brain.adapters.duckdb import Store, migrations
from trading_brain.adapters.duckdb import notify_tables as nt

NOW = datetime(2026, 10, 1, tzinfo=UTC)
# what notify_tables.ensure_schema ran at first use before migration 0010
OLD_RUNTIME_DDL = [
    """CREATE TABLE IF NOT EXISTS notification_deliveries (
        notification_id VARCHAR NOT NULL, channel VARCHAR NOT NULL, status VARCHAR NOT NULL,
        attempts INTEGER NOT NULL, next_attempt_at TIMESTAMPTZ, sent_at TIMESTAMPTZ,
        digest BOOLEAN NOT NULL DEFAULT false, last_error VARCHAR,
        PRIMARY KEY (notification_id, channel))""",
    """CREATE TABLE IF NOT EXISTS notification_messages (
        channel VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, notifications INTEGER NOT NULL)""",
]


def test_a_fresh_warehouse_has_the_outbox(tmp_path: Path) -> None:
    store = Store(tmp_path / "w.duckdb")
    store.migrate()
    assert nt.deliveries(store) == []
    assert nt.messages_since(store, "telegram", NOW) == 0
    assert not hasattr(nt, "ensure_schema") and not hasattr(nt, "SCHEMA")


def test_runtime_created_tables_migrate_with_their_rows(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = migrations.available()
    assert [v for v, _, _ in shipped][-1] >= 10
    path = tmp_path / "w.duckdb"
    with monkeypatch.context() as m:  # the code before 0010
        m.setattr(migrations, "available", lambda: [x for x in shipped if x[0] < 10])
        Store(path).migrate()
    store = Store(path)
    for ddl in OLD_RUNTIME_DDL:
        store.execute(ddl)
    store.execute("INSERT INTO notification_messages VALUES ('telegram', ?, 3)", [NOW])
    assert store.migrate() == [v for v, _, _ in shipped if v >= 10]
    assert nt.messages_since(store, "telegram", datetime(2026, 9, 30, tzinfo=UTC)) == 1
    nt.mark_sent(store, "webhook", ["n1"], NOW)
    assert nt.deliveries(store) == [("n1", "webhook", "sent", 0, False, None)]
