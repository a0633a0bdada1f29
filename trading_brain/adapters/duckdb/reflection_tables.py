"""Warehouse tables of migration 0009: the strategy document and advisor-written analyses.

Both are append-only (a new version is a new row; an old one is never changed):

- ``save_document(store, content, week=, cycle_id=, author=, now=)``: the next version, once
  per ISO ``week`` (a second call for the same week returns the stored version, unchanged);
  ``documents(store)`` every version, oldest first; ``document(store, version=None)`` one
  version (the newest when None) or None;
- ``save_analysis(store, row)``: insert-if-absent on ``(analysis_id, version)``; True when new;
  ``analysis_versions(store, analysis_id=None)`` the stored versions, oldest first;
- ``condense_observations(store, keep, summary, older)``: the ``older`` observations replaced
  by one ``summary`` row in one transaction (the weekly reflection's condensing).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

import duckdb

from trading_brain.adapters.duckdb.connection import frame, run, transaction


class Connects(Protocol):
    def connect(self, *, read_only: bool = False
                ) -> AbstractContextManager[duckdb.DuckDBPyConnection]: ...


def save_document(store: Connects, content: str, *, week: str, cycle_id: str | None,
                  author: str, now: datetime) -> int:
    """The version number of ``week``'s document (written now unless it exists)."""
    with store.connect() as con:
        got = run(con, "SELECT version FROM strategy_documents WHERE week = ?", [week])
        if got:
            return int(got[0][0])
        version = int(run(con, "SELECT coalesce(max(version), 0) + 1 "
                               "FROM strategy_documents")[0][0])
        run(con, "INSERT INTO strategy_documents (version, week, cycle_id, author, content, "
                 "created_at) VALUES (?, ?, ?, ?, ?, ?)",
            [version, week, cycle_id, author, content, now])
        return version


def documents(store: Connects) -> list[dict[str, Any]]:
    with store.connect(read_only=True) as con:
        return frame(con, "SELECT * FROM strategy_documents ORDER BY version").to_dicts()


def document(store: Connects, version: int | None = None) -> dict[str, Any] | None:
    rows = documents(store)
    if version is None:
        return rows[-1] if rows else None
    return next((r for r in rows if r["version"] == version), None)


def save_analysis(store: Connects, row: Mapping[str, Any]) -> bool:
    cols = list(row)
    with store.connect() as con:
        got = run(con, f"INSERT INTO analysis_versions ({', '.join(cols)}) VALUES "
                       f"({', '.join('?' for _ in cols)}) ON CONFLICT DO NOTHING RETURNING 1",
                  [row[c] for c in cols])
    return bool(got)


def analysis_versions(store: Connects, analysis_id: str | None = None) -> list[dict[str, Any]]:
    where, params = ("WHERE analysis_id = ?", [analysis_id]) if analysis_id else ("", [])
    with store.connect(read_only=True) as con:
        return frame(con, f"SELECT * FROM analysis_versions {where} "
                          "ORDER BY analysis_id, version", params).to_dicts()


def condense_observations(store: Connects, keep: int, summary: Mapping[str, Any],
                          older: list[str]) -> int:
    """Replace the observations ``older`` (ids) by the one ``summary`` row, atomically;
    returns how many were folded in (0 when there is nothing to do)."""
    if not older:
        return 0
    cols = list(summary)
    with store.connect() as con, transaction(con):
        run(con, f"INSERT INTO observations ({', '.join(cols)}) VALUES "
                 f"({', '.join('?' for _ in cols)}) ON CONFLICT DO NOTHING",
            [summary[c] for c in cols])
        run(con, f"DELETE FROM observations WHERE observation_id IN "
                 f"({', '.join('?' for _ in older)})", older)
    return len(older)
