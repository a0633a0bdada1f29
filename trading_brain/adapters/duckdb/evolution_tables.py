"""Warehouse tables of the nightly evolution loop (migration 0008): small functions over a
connection, and ``EvolutionTablesMixin`` delegating to them for ``Store``.

Write rules (a cycle killed at any step and re-run writes no second row and loses none):
- ``evolution_cycles``: ``start_cycle`` inserts once per ``cycle_id`` (``cycle_id_for(night,
  home)``) and returns whether the row is new; ``finish_cycle`` updates it;
- ``truth_benchmarks``: ``save_benchmarks`` replaces every row of that ``as_of`` at once;
- ``analysis_reports``, ``promotion_reviews``: upserts on their key (a re-run overwrites);
- ``ai_thoughts``, ``observations``, ``predictions``, ``paper_tests``, ``variant_trials``,
  ``token_usage``: insert-if-absent on their key (the first write wins), return whether new;
- ``grade_prediction`` only changes an ``open`` prediction; ``finish_paper_test`` only a
  ``running`` test; ``set_version_status`` accepts ``VERSION_STATUSES`` only (DataError).
JSON columns are written with ``json.dumps`` and read back decoded.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import duckdb

from trading_brain.adapters.duckdb.batch import TS, TXT, columns
from trading_brain.adapters.duckdb.connection import frame, run, transaction
from trading_brain.engine.evolution.benchmarks import BenchmarkRow
from trading_brain.errors import DataError

Con = duckdb.DuckDBPyConnection
Row = Mapping[str, Any]
VERSION_STATUSES = ("registered", "active", "candidate", "retired", "cancelled", "rolled_back",
                    "rejected")
PREDICTION_GRADES = ("confirmed", "refuted", "partial", "inconclusive")
PAPER_RESULTS = ("passed", "failed", "inconclusive", "cancelled")
_JSON = {"decision", "report", "metrics", "details", "params"}


def cycle_id_for(night: date, home: str) -> str:
    """``cycle-YYYY-MM-DD-<8 hex of sha256(home)>``: the same night and home, the same id."""
    return f"cycle-{night.isoformat()}-{hashlib.sha256(home.encode()).hexdigest()[:8]}"


def _insert(con: Con, table: str, row: Row, conflict: str = "DO NOTHING",
            key: Sequence[str] = ()) -> bool:
    """Insert ``row``; ``conflict`` decides what a duplicate key does. True when a row was new."""
    cols = list(row)
    vals = [json.dumps(row[c], default=str) if c in _JSON and row[c] is not None else row[c]
            for c in cols]
    target = f"({', '.join(key)}) " if key else ""
    if conflict == "DO UPDATE":
        sets = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in key)
        conflict = f"DO UPDATE SET {sets}"
    got = run(con, f"INSERT INTO {table} ({', '.join(cols)}) VALUES "
                   f"({', '.join('?' for _ in cols)}) ON CONFLICT {target}{conflict} "
                   "RETURNING 1", vals)
    return bool(got)


def _select(con: Con, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    rows = frame(con, sql, list(params)).to_dicts()
    for r in rows:
        for c in _JSON & set(r):
            r[c] = json.loads(r[c]) if r[c] is not None else None
    return rows


# -- cycles -------------------------------------------------------------------------------------
def start_cycle(con: Con, cycle_id: str, night: date, home: str, advisor: str,
                started_at: datetime) -> bool:
    return _insert(con, "evolution_cycles", {
        "cycle_id": cycle_id, "night": night, "home": home, "started_at": started_at,
        "status": "running", "advisor": advisor})


def finish_cycle(con: Con, cycle_id: str, *, status: str, finished_at: datetime,
                 decision: Mapping[str, Any] | None = None, error: str | None = None,
                 tokens: int = 0, cost_usd: float = 0.0) -> None:
    run(con, """UPDATE evolution_cycles SET status = ?, finished_at = ?, decision = ?, error = ?,
        tokens = ?, cost_usd = ? WHERE cycle_id = ?""",
        [status, finished_at, json.dumps(decision) if decision is not None else None, error,
         tokens, cost_usd, cycle_id])


def cycles(con: Con, cycle_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Cycles newest first (one when ``cycle_id`` is given)."""
    where, params = ("WHERE cycle_id = ?", [cycle_id]) if cycle_id else ("", [])
    return _select(con, f"SELECT * FROM evolution_cycles {where} ORDER BY started_at DESC "
                        f"LIMIT {int(limit)}", params)


# -- truth benchmarks ---------------------------------------------------------------------------
def save_benchmarks(con: Con, as_of: datetime, rows: Sequence[BenchmarkRow], *,
                    computed_at: datetime, since: datetime | None = None,
                    cycle_id: str | None = None) -> int:
    """Replace the benchmarks of ``as_of`` by ``rows``; return rows written."""
    with transaction(con):
        run(con, "DELETE FROM truth_benchmarks WHERE as_of = ?", [as_of])
        if rows:
            names = ("slot", "scope", "subject", "metric", "value", "text", "as_of", "since",
                     "cycle_id", "computed_at")
            sel, params = columns(names, (TXT, TXT, TXT, TXT, "DOUBLE", TXT, TS, TS, TXT, TS),
                                  [[*r, as_of, since, cycle_id, computed_at] for r in rows])
            run(con, f"INSERT INTO truth_benchmarks ({', '.join(names)}) SELECT {sel}", params)
    return len(rows)


def benchmarks(con: Con, *, as_of: datetime | None = None, slot: str | None = None,
               scope: str | None = None, subject: str | None = None,
               metric: str | None = None) -> list[dict[str, Any]]:
    """Stored benchmark rows matching every given filter, oldest ``as_of`` first."""
    filters = {"as_of": as_of, "slot": slot, "scope": scope, "subject": subject, "metric": metric}
    used = {k: v for k, v in filters.items() if v is not None}
    where = " AND ".join(f"{k} = ?" for k in used)
    return _select(con, "SELECT as_of, slot, scope, subject, metric, value, text, since, cycle_id "
                        f"FROM truth_benchmarks {'WHERE ' + where if where else ''} "
                        "ORDER BY as_of, slot, scope, subject, metric", list(used.values()))


# -- generic keyed tables -----------------------------------------------------------------------
_KEYS = {"analysis_reports": ("analysis_id", "version", "as_of"),
         "promotion_reviews": ("promotion_id",), "ai_thoughts": ("cycle_id", "step", "seq"),
         "observations": ("observation_id",), "predictions": ("prediction_id",),
         "paper_tests": ("test_id",), "variant_trials": ("family", "variant_hash"),
         "token_usage": ("call_id",)}
_UPSERT = {"analysis_reports", "promotion_reviews"}
_ORDER = re.compile(r"^[a-z_]+( (ASC|DESC))?(, [a-z_]+( (ASC|DESC))?)*$")


def save(con: Con, table: str, row: Row) -> bool:
    """Write ``row`` into ``table`` by its rule (module docstring); True when it was new."""
    if table not in _KEYS:
        raise DataError(f"{table} is not an evolution table with a write rule")
    if table == "predictions":
        row = {"status": "open", **row}
    if table in _UPSERT:
        existed = bool(run(con, f"SELECT 1 FROM {table} WHERE " + " AND ".join(
            f"{k} = ?" for k in _KEYS[table]), [row[k] for k in _KEYS[table]]))
        _insert(con, table, row, "DO UPDATE", _KEYS[table])
        return not existed
    return _insert(con, table, row)


def rows(con: Con, table: str, where: Mapping[str, Any] | None = None,
         order: str = "") -> list[dict[str, Any]]:
    """Rows of an evolution table matching ``where`` (equality), in ``order`` or key order."""
    if table not in _KEYS:
        raise DataError(f"{table} is not an evolution table")
    if order and not _ORDER.match(order):
        raise DataError(f"bad order clause {order!r}")
    used = dict(where or {})
    cond = " AND ".join(f"{k} = ?" for k in used)
    return _select(con, f"SELECT * FROM {table} {'WHERE ' + cond if cond else ''} "
                        f"ORDER BY {order or ', '.join(_KEYS[table])}", list(used.values()))


def grade_prediction(con: Con, prediction_id: str, status: str, graded_at: datetime,
                     value: float | None, reason: str) -> bool:
    """Close an open prediction with its grade; False when it was not open."""
    if status not in PREDICTION_GRADES:
        raise DataError(f"prediction grade must be one of {PREDICTION_GRADES}, got {status!r}")
    return bool(run(con, """UPDATE predictions SET status = ?, graded_at = ?, graded_value = ?,
        grade_reason = ? WHERE prediction_id = ? AND status = 'open' RETURNING 1""",
        [status, graded_at, value, reason, prediction_id]))


def finish_paper_test(con: Con, test_id: str, status: str, at: datetime, reason: str,
                      metrics: Mapping[str, Any] | None = None) -> bool:
    """End a running paper test; False when it was not running."""
    if status not in PAPER_RESULTS:
        raise DataError(f"paper test result must be one of {PAPER_RESULTS}, got {status!r}")
    return bool(run(con, """UPDATE paper_tests SET status = ?, finished_at = ?, reason = ?,
        metrics = ?, updated_at = ? WHERE test_id = ? AND status = 'running' RETURNING 1""",
        [status, at, reason, json.dumps(metrics) if metrics is not None else None, at, test_id]))


def variant_count(con: Con, family: str) -> int:
    """N for the deflated Sharpe ratio: distinct variants ever tried for ``family``."""
    return run(con, "SELECT count(*) FROM variant_trials WHERE family = ?", [family])[0][0]


def token_totals(con: Con, since: datetime | None = None) -> dict[str, float]:
    """Sum of tokens and cost of the calls made at or after ``since`` (all when None)."""
    got = run(con, """SELECT count(*), coalesce(sum(input_tokens), 0),
        coalesce(sum(output_tokens), 0), coalesce(sum(cache_write_tokens), 0),
        coalesce(sum(cache_read_tokens), 0), coalesce(sum(cost_usd), 0) FROM token_usage
        WHERE ?::TIMESTAMPTZ IS NULL OR created_at >= ?""", [since, since])[0]
    keys = ("calls", "input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens",
            "cost_usd")
    return {k: float(v) for k, v in zip(keys, got, strict=True)}


def set_version_status(con: Con, strategy_id: str, version: int, status: str, reason: str,
                       at: datetime) -> None:
    """Set a strategy version's status (with why and when); unknown version -> DataError."""
    if status not in VERSION_STATUSES:
        raise DataError(f"strategy status must be one of {VERSION_STATUSES}, got {status!r}")
    got = run(con, """UPDATE strategy_versions SET status = ?, status_reason = ?,
        status_changed_at = ?, retired_at = CASE WHEN ? = 'retired' THEN ? ELSE retired_at END
        WHERE strategy_id = ? AND version = ? RETURNING 1""",
        [status, reason, at, status, at, strategy_id, version])
    if not got:
        raise DataError(f"unknown strategy version {strategy_id}@{version}")


class EvolutionTablesMixin:
    """The functions above as ``Store`` methods (one short connection each, or the session's)."""

    if TYPE_CHECKING:
        def connect(self, *, read_only: bool = False) -> AbstractContextManager[Con]: ...

    def start_cycle(self, cycle_id: str, night: date, home: str, advisor: str,
                    started_at: datetime) -> bool:
        with self.connect() as con:
            return start_cycle(con, cycle_id, night, home, advisor, started_at)

    def finish_cycle(self, cycle_id: str, **fields: Any) -> None:
        with self.connect() as con:
            finish_cycle(con, cycle_id, **fields)

    def evolution_cycles(self, cycle_id: str | None = None,
                         limit: int = 100) -> list[dict[str, Any]]:
        with self.connect() as con:
            return cycles(con, cycle_id, limit)

    def save_benchmarks(self, as_of: datetime, rows: Sequence[BenchmarkRow],
                        **fields: Any) -> int:
        with self.connect() as con:
            return save_benchmarks(con, as_of, rows, **fields)

    def benchmarks(self, **filters: Any) -> list[dict[str, Any]]:
        with self.connect() as con:
            return benchmarks(con, **filters)

    def save_evolution_row(self, table: str, row: Row) -> bool:
        with self.connect() as con:
            return save(con, table, row)

    def evolution_rows(self, table: str, where: Mapping[str, Any] | None = None,
                       order: str = "") -> list[dict[str, Any]]:
        with self.connect() as con:
            return rows(con, table, where, order)

    def grade_prediction(self, prediction_id: str, status: str, graded_at: datetime,
                         value: float | None, reason: str) -> bool:
        with self.connect() as con:
            return grade_prediction(con, prediction_id, status, graded_at, value, reason)

    def finish_paper_test(self, test_id: str, status: str, at: datetime, reason: str,
                          metrics: Mapping[str, Any] | None = None) -> bool:
        with self.connect() as con:
            return finish_paper_test(con, test_id, status, at, reason, metrics)

    def variant_count(self, family: str) -> int:
        with self.connect() as con:
            return variant_count(con, family)

    def token_totals(self, since: datetime | None = None) -> dict[str, float]:
        with self.connect() as con:
            return token_totals(con, since)

    def set_version_status(self, strategy_id: str, version: int, status: str, reason: str,
                           at: datetime) -> None:
        with self.connect() as con:
            set_version_status(con, strategy_id, version, status, reason, at)
