"""Read-only views of the evolution's records for the CLI (`thoughts`, `predictions`,
`strategy-document`, `evolution scorecard`): plain rows, no printing.

Contract (each opens the home's warehouse; an uninitialised home is the one-line ConfigError of
``app.warehouse.require_store``):
- ``recent_cycles(home)``: the 30 newest evolution cycles as ``{cycle_id, night, status,
  advisor, action, error}``;
- ``cycle_thoughts(home, cycle)``: that cycle's ``ai_thoughts`` as ``{step, seq, role, content,
  created_at}`` in (created_at, seq) order; an unknown cycle is a ConfigError;
- ``prediction_rows(home)``: every prediction (``PREDICTION_FIELDS``), newest first;
- ``strategy_document(home, version)``: the newest (or ``version``) strategy document; none (or
  an unknown version) is a ConfigError listing the versions there are;
- ``scorecard(home)``: ``(promotions with their review, the adds-value check)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trading_brain.app.warehouse import require_store
from trading_brain.errors import ConfigError

if TYPE_CHECKING:
    from trading_brain.engine.evolution.paper import ValueCheck
    from trading_brain.settings import Home

RECENT_CYCLES = 30
PREDICTION_FIELDS = ("prediction_id", "cycle_id", "subject", "claim", "metric", "comparator",
                     "threshold", "deadline", "status", "graded_at", "graded_value",
                     "grade_reason", "created_at")
DOCUMENT_FIELDS = ("version", "week", "cycle_id", "author", "content", "created_at")


def recent_cycles(home: Home) -> list[dict[str, Any]]:
    return [{"cycle_id": r["cycle_id"], "night": r["night"], "status": r["status"],
             "advisor": r["advisor"], "action": (r.get("decision") or {}).get("action"),
             "error": r.get("error")}
            for r in require_store(home).evolution_cycles(limit=RECENT_CYCLES)]


def cycle_thoughts(home: Home, cycle: str) -> list[dict[str, Any]]:
    store = require_store(home)
    if not store.evolution_cycles(cycle):
        raise ConfigError(f"no evolution cycle {cycle!r}; `trading-brain thoughts` lists them")
    rows = store.evolution_rows("ai_thoughts", {"cycle_id": cycle}, order="created_at, seq")
    return [{"step": r["step"], "seq": r["seq"], "role": r["role"], "content": r["content"],
             "created_at": r["created_at"]} for r in rows]


def prediction_rows(home: Home) -> list[dict[str, Any]]:
    rows = require_store(home).evolution_rows("predictions", order="created_at DESC")
    return [{k: r.get(k) for k in PREDICTION_FIELDS} for r in rows]


def strategy_document(home: Home, version: int | None) -> dict[str, Any]:
    from trading_brain.adapters.duckdb.reflection_tables import document, documents

    store = require_store(home)
    row = document(store, version)
    if row is None:
        have = [r["version"] for r in documents(store)]
        raise ConfigError(f"no strategy document version {version}; versions: {have}"
                          if version is not None else
                          "no strategy document yet (the weekly reflection writes one)")
    return {k: row[k] for k in DOCUMENT_FIELDS}


def scorecard(home: Home) -> tuple[list[dict[str, Any]], ValueCheck]:
    from trading_brain.app.promotion_reviews import adds_value, scorecard_rows

    store = require_store(home)
    return scorecard_rows(store), adds_value(store)
