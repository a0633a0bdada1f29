"""The API's listings as data: one ``Listing`` per endpoint (SQL, filters, time column, order).

Contract (no I/O here; ``reads.WarehouseReads`` runs what ``page_statement`` builds):
- a listing's ``select`` is wrapped, ``SELECT * FROM (<select>) t WHERE … ORDER BY … LIMIT ?
  OFFSET ?``, so every filter names an output column and takes a bound parameter (values are
  never formatted into SQL; only the names of this module are);
- ``since`` is inclusive and ``until`` exclusive, both on the listing's ``time_col``;
- the order is ``time_col`` then the tie-breaker columns, newest first unless asked ``asc``,
  so offsets page through a stable order; one extra row is read to know whether more follow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Order = Literal["asc", "desc"]


@dataclass(frozen=True)
class Page:
    limit: int = 100
    offset: int = 0
    order: Order = "desc"


@dataclass(frozen=True)
class Listing:
    select: str
    time_col: str
    tie: tuple[str, ...]
    filters: Mapping[str, str] = field(default_factory=dict)  # API name -> output column


_POSITION_COLS = """position_id, symbol, slot, strategy_id, version, intent_type, status,
    quantity, entry_price, entry_fee, entry_time, stop_loss_price, take_profit_price,
    exit_price, exit_fee, exit_time, exit_reason, realized_pnl, cost_basis, updated_at"""
_POSITION_FILTERS = {"symbol": "symbol", "slot": "slot", "strategy": "strategy_id",
                     "status": "status"}

LISTINGS: dict[str, Listing] = {
    "positions": Listing(f"SELECT {_POSITION_COLS} FROM positions", "entry_time",
                         ("position_id",), _POSITION_FILTERS),
    "trades": Listing(f"SELECT {_POSITION_COLS} FROM positions WHERE status = 'closed'",
                      "exit_time", ("position_id",),
                      {k: v for k, v in _POSITION_FILTERS.items() if k != "status"}),
    "fills": Listing("""SELECT f.fill_id, f.client_order_id, o.slot, f.symbol, f.side, f.qty,
        f.price, f.fee, f.fee_currency, f.ts, f.recorded_at
        FROM fills f LEFT JOIN orders o USING (client_order_id)""", "ts", ("fill_id",),
                     {"symbol": "symbol", "slot": "slot", "side": "side"}),
    "orders": Listing("""SELECT client_order_id, intent_id, slot, venue, venue_order_id, symbol,
        side, order_type, purpose, quantity, limit_price, stop_price, state, filled_qty,
        avg_price, fee, reason, created_at, updated_at FROM orders""", "created_at",
                      ("client_order_id",),
                      {"symbol": "symbol", "slot": "slot", "status": "state",
                       "purpose": "purpose", "side": "side"}),
    "equity": Listing("""SELECT ts, slot, equity, cash, positions_value, exposure, peak_equity,
        drawdown, daily_pnl, fees_paid, realized_pnl, unrealized_pnl
        FROM portfolio_snapshots""", "ts", ("slot",), {"slot": "slot"}),
    "risk": Listing("SELECT slot, state, updated_at FROM risk_state", "updated_at", ("slot",),
                    {"slot": "slot"}),
    "risk_events": Listing("SELECT event_id, ts, kind, symbol, reason, details FROM risk_events",
                           "ts", ("event_id",), {"kind": "kind", "symbol": "symbol"}),
    "strategies": Listing("""SELECT strategy_id, version, path, parent_version, reason,
        warmup_bars, params_default, param_space, status, status_reason, validation, created_at,
        deployed_at, retired_at FROM strategy_versions""", "created_at",
                          ("strategy_id", "version"),
                          {"strategy": "strategy_id", "status": "status"}),
    "deployments": Listing("""SELECT seq, strategy_id, version, action, reason, logged_at
        FROM deployments_log""", "logged_at", ("seq",),
                           {"strategy": "strategy_id", "action": "action"}),
    "candidates": Listing("""SELECT v.strategy_id, v.version, v.reason, v.status_reason,
        v.created_at, t.test_id, t.slot, t.tier, t.status AS test_status, t.started_at,
        t.min_until, t.min_trades, t.finished_at, t.reason AS test_reason, t.metrics
        FROM strategy_versions v LEFT JOIN (
          SELECT * FROM paper_tests QUALIFY row_number() OVER (
            PARTITION BY strategy_id, version ORDER BY started_at DESC) = 1) t
        ON t.strategy_id = v.strategy_id AND t.version = v.version
        WHERE v.status = 'candidate'""", "created_at", ("strategy_id", "version"),
                          {"strategy": "strategy_id", "status": "test_status"}),
    "cycles": Listing("""SELECT cycle_id, night, started_at, finished_at, status, advisor,
        decision, error, tokens, cost_usd FROM evolution_cycles""", "started_at", ("cycle_id",),
                      {"status": "status", "advisor": "advisor"}),
    "thoughts": Listing("""SELECT cycle_id, step, seq, role, content, created_at
        FROM ai_thoughts""", "created_at", ("cycle_id", "seq"),
                        {"cycle": "cycle_id", "role": "role", "step": "step"}),
    "benchmarks": Listing("""SELECT as_of, slot, scope, subject, metric, value, text, since,
        cycle_id, computed_at FROM truth_benchmarks""", "as_of",
                          ("slot", "scope", "subject", "metric"),
                          {"slot": "slot", "scope": "scope", "subject": "subject",
                           "metric": "metric", "cycle": "cycle_id"}),
    "scorecard": Listing("""SELECT promotion_id, strategy_id, version, incumbent_strategy_id,
        incumbent_version, promoted_at, reviewed_at, bars_start, bars_end, bars,
        promoted_return, incumbent_return, edge, verdict, details
        FROM promotion_reviews""", "promoted_at", ("promotion_id",),
                         {"strategy": "strategy_id", "verdict": "verdict"}),
}


def page_statement(listing: Listing, filters: Mapping[str, object], since: datetime | None,
                   until: datetime | None, page: Page) -> tuple[str, list[object]]:
    """The SQL and parameters of one page (``page.limit + 1`` rows: the extra one says more
    follow). ``filters`` maps the listing's filter names to values; ``None`` means no filter."""
    where: list[str] = []
    params: list[object] = []
    for name, value in filters.items():
        if value is None:
            continue
        where.append(f"{listing.filters[name]} = ?")  # KeyError: a programming error
        params.append(value)
    if since is not None:
        where.append(f"{listing.time_col} >= ?")
        params.append(since)
    if until is not None:
        where.append(f"{listing.time_col} < ?")
        params.append(until)
    direction = "ASC" if page.order == "asc" else "DESC"
    order = ", ".join(f"{c} {direction} NULLS LAST" for c in (listing.time_col, *listing.tie))
    sql = (f"SELECT * FROM ({listing.select}) t"
           + (f" WHERE {' AND '.join(where)}" if where else "")
           + f" ORDER BY {order} LIMIT ? OFFSET ?")
    return sql, [*params, page.limit + 1, page.offset]
