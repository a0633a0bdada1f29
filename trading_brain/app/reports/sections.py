"""The tables and text of a report's sections (pure: rows and figures in, blocks out).

Contract: each function returns render blocks; a section without data returns one ``Para``
saying so. Trades are listed newest first, at most ``MAX_TRADE_ROWS``; texts from the warehouse
(reasons, the advisor's reasoning) are cut to one line of at most ``MAX_TEXT`` characters.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import polars as pl

from trading_brain.app.reports.figures import Figures
from trading_brain.app.reports.period import Period
from trading_brain.app.reports.render import Block, Bullets, Para, Table

MAX_TRADE_ROWS = 25
MAX_TEXT = 300


def _money(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.2f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.2f}%"


def _short(text: object) -> str:
    one = " ".join(str(text).split())
    return one if len(one) <= MAX_TEXT else one[:MAX_TEXT - 1] + "…"


def summary_table(f: Figures) -> Table:
    win = f"{f.win_rate:.0%}" if f.win_rate is not None else "n/a"
    rows = (("Opening equity", _money(f.opening_equity)), ("Final equity", _money(f.final_equity)),
            ("Return", _pct(f.return_pct)), ("Max drawdown", f"{f.max_drawdown:.2%}"),
            ("Trades opened", str(f.trades_opened)), ("Trades closed", str(f.trades_closed)),
            ("Win rate (closed)", win), ("Gross P&L (closed)", _money(f.gross_pnl)),
            ("Fees paid", _money(f.fees)), ("Net P&L (closed)", _money(f.net_pnl)),
            ("Exposure mean / max", f"{f.exposure_mean:.1%} / {f.exposure_max:.1%}"))
    return Table(("Figure", "Value"), rows)


def symbol_table(f: Figures) -> Block:
    if not f.by_symbol:
        return Para("No trade closed and no fee paid in this period.")
    rows = tuple((s.symbol, str(s.closed), _money(s.gross_pnl), _money(s.fees), _money(s.net_pnl))
                 for s in f.by_symbol)
    return Table(("Symbol", "Closed", "Gross P&L", "Fees", "Net P&L"), rows)


def _t(ts: datetime | None) -> str:
    return "" if ts is None else f"{ts:%m-%d %H:%M}"


def trades_table(trades: pl.DataFrame, period: Period) -> list[Block]:
    inside = trades.filter(
        ((pl.col("entry_time") >= period.start) & (pl.col("entry_time") < period.end))
        | (pl.col("exit_time").is_not_null() & (pl.col("exit_time") >= period.start)
           & (pl.col("exit_time") < period.end)))
    newest = inside.sort("entry_time", descending=True).head(MAX_TRADE_ROWS)
    rows = tuple(
        (r["symbol"], _t(r["entry_time"]), f"{r['entry_price']:.6g}", _t(r["exit_time"]),
         "" if r["exit_price"] is None else f"{r['exit_price']:.6g}",
         r["exit_reason"] or r["status"], _money(r["net_pnl"]) if r["net_pnl"] is not None
         else "open")
        for r in newest.iter_rows(named=True))
    table = Table(("Symbol", "Entry", "Price", "Exit", "Price", "Why", "Net P&L"), rows)
    if inside.height > MAX_TRADE_ROWS:
        return [Para(f"{inside.height} trades; the {MAX_TRADE_ROWS} newest:"), table]
    return [table]


def risk_section(state: str | None, events: dict[str, int]) -> list[Block]:
    if state is None:
        return [Para("No risk state recorded yet.")]
    s: dict[str, Any] = json.loads(state)
    halts = s.get("halts") or {}
    items = [
        "halts: " + (", ".join(f"{k} ({_short(v)})" for k, v in halts.items()) or "none"),
        "kill switch: " + ("ON (" + _short(s["kill_switch"]) + ")" if s.get("kill_switch")
                           else "off"),
        f"peak equity: {_money(float(s['peak_equity']))}" if s.get("peak_equity") else
        "peak equity: n/a",
        f"consecutive losses: {s.get('consecutive_losses', 0)}",
    ]
    rb = s.get("rollback")
    if rb:
        items.append(f"rollback trigger: {rb.get('reason')} since {rb.get('since')} "
                     f"({_short(rb.get('detail', ''))})")
    if events:
        items.append("risk events in the period: "
                     + ", ".join(f"{k} {n}" for k, n in events.items()))
    return [Bullets(tuple(items))]


def candidates_section(cands: list[dict[str, Any]]) -> list[Block]:
    if not cands:
        return [Para("No candidate.")]
    rows = tuple((c["candidate"], c["slot"] or "waiting", c["test_status"] or "-",
                  _t(c["started_at"]), _t(c["min_until"]), _short(c["test_reason"] or
                                                                  c["reason"] or ""))
                 for c in cands)
    return [Table(("Candidate", "Slot", "Paper test", "Started", "Min until", "Note"), rows)]


def evolution_section(cycle: dict[str, Any] | None) -> list[Block]:
    if cycle is None:
        return [Para("No evolution cycle yet.")]
    head = (f"Cycle of the night {cycle['night']} ({cycle['advisor']} advisor): "
            f"{cycle['status']}.")
    raw = cycle.get("decision")
    if not raw:
        return [Para(head + (f" {_short(cycle['error'])}" if cycle.get("error") else ""))]
    d: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else dict(raw)
    action = str(d.get("action", "?"))
    if d.get("tier") is not None:
        action += f" (tier {d['tier']})"
    target = d.get("target")
    items = [f"decision: {action}" + (f", target {_short(target)}" if target else ""),
             f"reasoning: {_short(d.get('reasoning', ''))}"]
    return [Para(head), Bullets(tuple(items))]
