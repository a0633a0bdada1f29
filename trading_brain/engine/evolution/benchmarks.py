"""Truth-benchmark rows and their pure post-processing (DESIGN §8, issue 11).

The values are computed by plain SQL over the ledger (``adapters/duckdb/benchmark_sql.py``, where
every metric is defined); nothing here computes a metric. This module holds the row type both
sides share and turns rows into what the cycle needs:

- ``BenchmarkRow``: ``(slot, scope, subject, metric, value, text)``; ``scope`` is ``slot``
  (subject ``""``), ``version`` (subject ``family@N``) or ``symbol`` (subject ``BTC/USD``);
  ``value`` None means undefined, never NaN/inf;
- ``nested(rows)``: ``{slot: {"slot": {metric: value}, "version": {subject: {...}},
  "symbol": {subject: {...}}}}`` for the advisor context and the asset metadata (JSON-ready;
  a ``text`` label wins over the value, e.g. ``strategy_version: "ema_cross@1"``);
- ``readings(stored, subject, metric)``: one ``MetricReading`` per ``as_of`` for a prediction's
  subject (``"active"`` = the slot ``active``; ``family@N`` = that version's rows, from the slot
  where it has the most closed trades at that ``as_of``), with ``trades`` and ``days`` (number of
  daily returns) taken from the same group, as ``predictions.grade_prediction`` needs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from trading_brain.engine.evolution.predictions import MetricReading

SCOPES = ("slot", "version", "symbol")


class BenchmarkRow(NamedTuple):
    """One metric of one subject (see the module docstring)."""

    slot: str
    scope: str
    subject: str
    metric: str
    value: float | None
    text: str | None = None


def clean(value: float | None) -> float | None:
    """``value`` as a float, or None when undefined or not finite."""
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def nested(rows: Iterable[BenchmarkRow]) -> dict[str, dict[str, Any]]:
    """Rows as ``{slot: {"slot": {...}, "version": {subj: {...}}, "symbol": {subj: {...}}}}``."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        slot = out.setdefault(r.slot, {"slot": {}, "version": {}, "symbol": {}})
        shown: Any = r.text if r.text is not None else clean(r.value)
        if r.scope == "slot":
            slot["slot"][r.metric] = shown
        else:
            slot[r.scope].setdefault(r.subject, {})[r.metric] = shown
    return out


def _group_key(row: Mapping[str, Any]) -> tuple[datetime, str, str, str]:
    return row["as_of"], row["slot"], row["scope"], row["subject"]


def readings(stored: Iterable[Mapping[str, Any]], subject: str,
             metric: str) -> list[MetricReading]:
    """``MetricReading``s of ``subject``'s ``metric``, one per ``as_of`` (oldest first).

    ``stored`` are rows of ``truth_benchmarks`` as dicts (``as_of, slot, scope, subject, metric,
    value``). Groups without the metric are skipped.
    """
    if subject == "active":
        want = {"scope": "slot", "slot": "active", "subject": ""}
    else:
        want = {"scope": "version", "subject": subject}
    groups: dict[tuple[datetime, str, str, str], dict[str, float | None]] = {}
    for row in stored:
        if all(row[k] == v for k, v in want.items()):
            groups.setdefault(_group_key(row), {})[row["metric"]] = clean(row["value"])
    best: dict[datetime, dict[str, float | None]] = {}
    for (as_of, _slot, _scope, _subject), metrics in sorted(groups.items()):
        if metric not in metrics:
            continue
        seen = best.get(as_of)
        if seen is None or (metrics.get("trades") or 0) > (seen.get("trades") or 0):
            best[as_of] = metrics
    return [MetricReading(as_of=as_of, value=m[metric], trades=int(m.get("trades") or 0),
                          days=int(m.get("daily_returns") or 0))
            for as_of, m in sorted(best.items())]
