"""Truth benchmarks: rigid metrics in plain SQL over the ledger (DESIGN §8, issue 11).

``compute(con, as_of, since=None)`` returns ``BenchmarkRow``s for every slot, and inside each slot
for every version (subject ``family@N``) and symbol seen in the window ``[since, as_of]``
(``since`` None = all history). Nothing here runs advisor-written code. Definitions (a trade is a
CLOSED position with ``exit_time`` in the window; P&L are quote currency, DOUBLE):

Trades (every scope): ``trades``; ``wins`` (net > 0); ``losses`` (net < 0; flat counts as
neither); ``win_rate`` = wins / trades; ``net_pnl`` = Σ realized_pnl (after both fees);
``gross_pnl`` = Σ (realized_pnl + entry_fee + exit_fee); ``fees_paid`` = Σ (entry_fee +
exit_fee) of those trades (so gross - fees = net); ``expectancy`` = net_pnl / trades;
``fees_pct_of_gross`` = 100 × fees_paid / Σ gross of trades with gross > 0 (None without one);
``profit_factor`` = Σ net of winners / |Σ net of losers| (None without a loser);
``avg_hold_hours`` = mean (exit_time - entry_time); in exit order (exit_time, position_id):
``consecutive_losses`` = the losing streak ending at the last trade, ``max_consecutive_losses``,
``pnl_max_drawdown`` = largest drop of cumulative net P&L below its running peak (peak starts
at 0). ``positions_opened`` = positions with entry_time in the window, any status (the simulate
summary's ``trades``); ``open_positions`` = entered ≤ as_of and not exited by as_of.

Signals (every scope, rows of ``signals`` with bar_time in the window): ``signals_generated``
(action ≠ hold), ``signals_acted`` (risk decision approved or resized), ``rejections`` (decision
rejected) and ``rejections:<reason>`` per risk reason.

Equity (slot and version scopes, ``portfolio_snapshots`` of the slot; a version's period is its
tenure in the slot: first signal .. last signal + 5 min, clipped to the window): ``equity`` (last
snapshot), ``period_return`` = last / first - 1, ``max_drawdown`` = max(1 - equity / running
peak) and ``current_drawdown`` (the last snapshot's), fractions with the peak taken inside the
period; ``exposure`` = time-weighted mean of the snapshots' ``exposure`` (each holds until the
next, the last until the period end; the plain mean if that spans no time); daily returns: marks
m0 = first snapshot, m_k = last snapshot before each UTC midnight D_k ≤ period end (carried over
days without snapshots), r_k = m_k / m_(k-1) - 1; ``daily_returns`` = their count; ``sharpe`` =
mean / sample std × √365 and ``sortino`` = mean / sqrt(mean(min(r, 0)²)) × √365 (risk-free 0,
the convention of ``engine/evolution/returns.py``), None with < 2 returns, all equal returns
(Sharpe) or no negative return (Sortino).

Scans (slot scope; the scans holding a signal row of the slot, bar_time in the window):
``scan_count``; ``scan_errors`` (scans whose ``details.errors`` name the slot);
``scan_success_rate`` = (count - errors) / count; ``uptime`` = distinct scanned bars whose close
(bar_time + 5 min) ≤ as_of / the 5-minute bars due from the first expected bar (the later of the
slot's first scan ever and ``since`` rounded up to 5 min) to as_of.

Freshness (symbol scope; slot = the worst of its symbols): ``data_freshness_min`` = minutes
from the close of the newest 5m candle closed by as_of to as_of (None without candles).

Version (slot scope): ``strategy_version`` (the version of the slot's newest signal ≤ as_of;
value N, text ``family@N``) and ``strategy_age_days`` (days since that version's first signal
in the slot); version scope: ``age_days`` likewise and ``is_current`` (1/0).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import duckdb

from trading_brain.engine.evolution.benchmarks import BenchmarkRow, clean

Key = tuple[str, str, str]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ZERO_DEFAULT = ("trades", "wins", "losses", "net_pnl", "gross_pnl", "fees_paid",
                "consecutive_losses", "max_consecutive_losses", "pnl_max_drawdown",
                "positions_opened", "open_positions", "signals_generated", "signals_acted",
                "rejections")
NONE_DEFAULT = ("win_rate", "expectancy", "fees_pct_of_gross", "profit_factor",
                "avg_hold_hours")
EQUITY = ("equity", "period_return", "max_drawdown", "current_drawdown", "exposure", "sharpe",
          "sortino", "daily_returns")
SCANS = ("scan_count", "scan_errors", "scan_success_rate", "uptime")


def _keyed(cols: str) -> str:
    """The rows of CTE ``base`` once per scope (slot / version / symbol)."""
    return (f"SELECT slot, 'slot' AS scope, '' AS subject, {cols} FROM base UNION ALL "
            f"SELECT slot, 'version', ver, {cols} FROM base UNION ALL "
            f"SELECT slot, 'symbol', symbol, {cols} FROM base")


_W = "PARTITION BY slot, scope, subject ORDER BY exit_time, position_id"
TRADES = f"""
WITH base AS (
  SELECT slot, strategy_id || '@' || version AS ver, symbol, position_id, entry_time, exit_time,
    CAST(realized_pnl AS DOUBLE) AS net, CAST(entry_fee + coalesce(exit_fee, 0) AS DOUBLE) AS fee,
    CAST(realized_pnl + entry_fee + coalesce(exit_fee, 0) AS DOUBLE) AS gross
  FROM positions WHERE status = 'closed' AND exit_time >= $since AND exit_time <= $as_of),
k AS ({_keyed("position_id, entry_time, exit_time, net, fee, gross")}),
o AS (SELECT *, row_number() OVER ({_W}) AS rn,
    row_number() OVER ({_W}) - row_number() OVER (PARTITION BY slot, scope, subject, net < 0
      ORDER BY exit_time, position_id) AS island,
    sum(net) OVER ({_W} ROWS UNBOUNDED PRECEDING) AS cum FROM k),
p AS (SELECT *, greatest(0, max(cum) OVER ({_W} ROWS UNBOUNDED PRECEDING)) - cum AS dd FROM o),
streaks AS (SELECT slot, scope, subject, island, count(*) AS n, max(rn) AS last_rn FROM p
  WHERE net < 0 GROUP BY ALL),
agg AS (SELECT slot, scope, subject, count(*) AS trades, count(*) FILTER (net > 0) AS wins,
    count(*) FILTER (net < 0) AS losses, count(*) FILTER (net > 0) / count(*) AS win_rate,
    avg(net) AS expectancy, sum(net) AS net_pnl, sum(gross) AS gross_pnl, sum(fee) AS fees_paid,
    100 * sum(fee) / nullif(sum(gross) FILTER (gross > 0), 0) AS fees_pct_of_gross,
    coalesce(sum(net) FILTER (net > 0), 0) / nullif(-sum(net) FILTER (net < 0), 0)
      AS profit_factor,
    avg(epoch(exit_time - entry_time)) / 3600 AS avg_hold_hours, max(dd) AS pnl_max_drawdown,
    max(rn) AS last_rn FROM p GROUP BY ALL)
SELECT a.* EXCLUDE (last_rn), coalesce(max(s.n), 0) AS max_consecutive_losses,
  coalesce(max(s.n) FILTER (s.last_rn = a.last_rn), 0) AS consecutive_losses
FROM agg a LEFT JOIN streaks s USING (slot, scope, subject) GROUP BY ALL"""

POSITIONS = f"""
WITH base AS (SELECT slot, strategy_id || '@' || version AS ver, symbol, entry_time, exit_time
  FROM positions WHERE entry_time <= $as_of)
SELECT slot, scope, subject, count(*) FILTER (entry_time >= $since) AS positions_opened,
  count(*) FILTER (exit_time IS NULL OR exit_time > $as_of) AS open_positions
FROM ({_keyed("entry_time, exit_time")}) GROUP BY ALL"""

_SIG_BASE = """WITH base AS (SELECT slot, strategy_id || '@' || version AS ver, symbol, action,
  risk_decision, risk_reason FROM signals WHERE bar_time >= $since AND bar_time <= $as_of)"""
SIGNALS = f"""{_SIG_BASE}
SELECT slot, scope, subject, count(*) FILTER (action <> 'hold') AS signals_generated,
  count(*) FILTER (risk_decision IN ('approved', 'resized')) AS signals_acted,
  count(*) FILTER (risk_decision = 'rejected') AS rejections
FROM ({_keyed("action, risk_decision")}) GROUP BY ALL"""
REJECTIONS = f"""{_SIG_BASE}
SELECT slot, scope, subject, 'rejections:' || coalesce(risk_reason, 'unknown') AS metric,
  count(*) AS n FROM ({_keyed("risk_decision, risk_reason")})
WHERE risk_decision = 'rejected' GROUP BY ALL"""

_E = "PARTITION BY slot, scope, subject"
EQUITY_SQL = f"""
WITH sig AS (SELECT slot, strategy_id || '@' || version AS ver, min(bar_time) AS first_bar,
    max(bar_time) AS last_bar FROM signals WHERE bar_time <= $as_of GROUP BY ALL),
periods AS (
  SELECT DISTINCT slot, 'slot' AS scope, '' AS subject, $since AS lo, $as_of AS hi
    FROM portfolio_snapshots
  UNION ALL SELECT slot, 'version', ver, greatest(first_bar, $since),
    least(last_bar + INTERVAL 5 MINUTE, $as_of) FROM sig),
s AS (SELECT p.slot, p.scope, p.subject, p.hi, s.ts, CAST(s.equity AS DOUBLE) AS equity,
    s.exposure FROM periods p JOIN portfolio_snapshots s
    ON s.slot = p.slot AND s.ts >= p.lo AND s.ts <= p.hi),
d AS (SELECT *, max(equity) OVER ({_E} ORDER BY ts ROWS UNBOUNDED PRECEDING) AS peak,
    coalesce(lead(ts) OVER ({_E} ORDER BY ts), hi) AS until,
    row_number() OVER ({_E} ORDER BY ts DESC) AS from_end FROM s),
eq AS (SELECT slot, scope, subject, arg_max(equity, ts) AS equity,
    arg_max(equity, ts) / arg_min(equity, ts) - 1 AS period_return,
    max(1 - equity / peak) AS max_drawdown,
    max(1 - equity / peak) FILTER (from_end = 1) AS current_drawdown,
    coalesce(sum(exposure * epoch(until - ts)) / nullif(sum(epoch(until - ts)), 0),
      avg(exposure)) AS exposure, arg_min(equity, ts) AS first_equity, min(ts) AS first_ts,
    max(hi) AS hi FROM d GROUP BY ALL),
days AS (SELECT slot, scope, subject, first_equity, unnest(generate_series(
    date_trunc('day', first_ts) + INTERVAL 1 DAY, hi, INTERVAL 1 DAY)) AS day_end FROM eq),
eod AS (SELECT slot, scope, subject, date_trunc('day', ts) + INTERVAL 1 DAY AS day_end,
    arg_max(equity, ts) AS e FROM s GROUP BY ALL),
marks AS (SELECT days.*, last_value(eod.e IGNORE NULLS) OVER ({_E} ORDER BY days.day_end
    ROWS UNBOUNDED PRECEDING) AS mark FROM days LEFT JOIN eod USING (slot, scope, subject,
    day_end)),
r AS (SELECT slot, scope, subject, mark / coalesce(lag(mark) OVER ({_E} ORDER BY day_end),
    first_equity) - 1 AS r FROM marks),
ret AS (SELECT slot, scope, subject, count(r) AS n, avg(r) AS mean, stddev_samp(r) AS sd,
    max(r) > min(r) AS spread, sqrt(avg(least(r, 0) * least(r, 0))) AS down FROM r GROUP BY ALL)
SELECT eq.slot, eq.scope, eq.subject, eq.equity, period_return, max_drawdown, current_drawdown,
  exposure, CASE WHEN n >= 2 AND spread THEN mean / sd * sqrt(365) END AS sharpe,
  CASE WHEN n >= 2 AND down > 0 THEN mean / down * sqrt(365) END AS sortino,
  coalesce(n, 0) AS daily_returns
FROM eq LEFT JOIN ret USING (slot, scope, subject)"""

SCANS_SQL = """
WITH ss AS (SELECT slot, scan_id, min(bar_time) AS bar_time FROM signals
    WHERE bar_time <= $as_of GROUP BY ALL),
first AS (SELECT slot, greatest(min(bar_time),
    to_timestamp(ceil(epoch($since) / 300) * 300)) AS first_bar FROM ss GROUP BY slot),
sc AS (SELECT ss.slot, ss.scan_id, ss.bar_time, s.details, first.first_bar FROM ss
    JOIN scans s USING (scan_id) JOIN first USING (slot) WHERE ss.bar_time >= $since),
errs AS (SELECT DISTINCT sc.slot, sc.scan_id FROM sc,
    unnest(CAST(json_extract(sc.details, '$.errors') AS JSON[])) AS e(err)
    WHERE json_extract_string(err, '$.slot') = sc.slot)
SELECT sc.slot, 'slot' AS scope, '' AS subject, count(*) AS scan_count,
  count(errs.scan_id) AS scan_errors, 1 - count(errs.scan_id) / count(*) AS scan_success_rate,
  count(DISTINCT sc.bar_time) FILTER (sc.bar_time + INTERVAL 5 MINUTE <= $as_of
    AND sc.bar_time >= sc.first_bar)
    / nullif(floor(epoch($as_of - any_value(sc.first_bar)) / 300), 0) AS uptime
FROM sc LEFT JOIN errs USING (slot, scan_id) GROUP BY sc.slot"""

FRESHNESS = """
WITH syms AS (SELECT DISTINCT slot, symbol FROM signals
    WHERE bar_time >= $since AND bar_time <= $as_of),
newest AS (SELECT symbol, max(ts) AS ts FROM candles WHERE timeframe = '5m'
    AND ts + INTERVAL 5 MINUTE <= $as_of GROUP BY symbol),
f AS (SELECT slot, symbol, epoch($as_of - (ts + INTERVAL 5 MINUTE)) / 60 AS m
    FROM syms LEFT JOIN newest USING (symbol))
SELECT slot, 'symbol' AS scope, symbol AS subject, m AS data_freshness_min FROM f
UNION ALL SELECT slot, 'slot', '', max(m) FROM f GROUP BY slot"""

VERSIONS = """
WITH v AS (SELECT slot, strategy_id || '@' || version AS ver, any_value(version) AS version,
    min(bar_time) AS first_bar, max(bar_time) AS last_bar FROM signals
    WHERE bar_time <= $as_of GROUP BY slot, strategy_id, version),
cur AS (SELECT slot, arg_max(ver, last_bar) AS ver FROM v GROUP BY slot)
SELECT v.slot, v.ver, v.version, epoch($as_of - v.first_bar) / 86400 AS age_days,
  (cur.ver IS NOT NULL)::INTEGER AS is_current
FROM v LEFT JOIN cur ON cur.slot = v.slot AND cur.ver = v.ver"""


def _dicts(con: duckdb.DuckDBPyConnection, sql: str,
           params: dict[str, Any]) -> list[dict[str, Any]]:
    used = {k: v for k, v in params.items() if f"${k}" in sql}
    cur = con.execute(sql, used)
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def compute(con: duckdb.DuckDBPyConnection, as_of: datetime,
            since: datetime | None = None) -> list[BenchmarkRow]:
    """Every benchmark of the window ``[since, as_of]`` (module docstring), sorted."""
    params = {"as_of": as_of, "since": since or EPOCH}
    values: dict[Key, dict[str, tuple[float | None, str | None]]] = {}

    def put(rows: list[dict[str, Any]]) -> None:
        for r in rows:
            key = (r.pop("slot"), r.pop("scope"), r.pop("subject"))
            got = values.setdefault(key, {})
            for metric, value in r.items():
                got[metric] = (clean(value), None)

    for sql in (TRADES, POSITIONS, SIGNALS, EQUITY_SQL, SCANS_SQL, FRESHNESS):
        put(_dicts(con, sql, params))
    for r in _dicts(con, REJECTIONS, params):
        values.setdefault((r["slot"], r["scope"], r["subject"]), {})[r["metric"]] = (
            float(r["n"]), None)
    for r in _dicts(con, VERSIONS, params):
        if (r["slot"], "version", r["ver"]) in values:
            values[(r["slot"], "version", r["ver"])].update(
                age_days=(clean(r["age_days"]), None), is_current=(float(r["is_current"]), None))
        if r["is_current"] and (r["slot"], "slot", "") in values:
            values[(r["slot"], "slot", "")].update(
                strategy_version=(float(r["version"]), r["ver"]),
                strategy_age_days=(clean(r["age_days"]), None))
    return _rows(values)


def _rows(values: dict[Key, dict[str, tuple[float | None, str | None]]]) -> list[BenchmarkRow]:
    """Every key's metrics, with the defaults of the metrics its scope always carries."""
    out: list[BenchmarkRow] = []
    for (slot, scope, subject), got in sorted(values.items()):
        held = any((got.get(m, (None, None))[0] or 0) > 0
                   for m in ("positions_opened", "open_positions"))
        if scope != "slot" and not held and "signals_generated" not in got \
                and "trades" not in got:
            continue  # no signal, trade or position in the window: not a subject of it
        full: dict[str, tuple[float | None, str | None]] = {
            **{m: (0.0, None) for m in ZERO_DEFAULT}, **{m: (None, None) for m in NONE_DEFAULT}}
        if scope != "symbol":
            full.update({m: (0.0 if m == "daily_returns" else None, None) for m in EQUITY})
        if scope == "slot":
            full.update({m: (None, None) for m in SCANS})
        full.update(got)
        out.extend(BenchmarkRow(slot, scope, subject, m, v, t)
                   for m, (v, t) in sorted(full.items()))
    return out
