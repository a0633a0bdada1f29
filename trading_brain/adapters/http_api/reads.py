"""What the endpoints read: a page of a listing, and the status summary.

Both go through a ``Warehouse`` (``warehouse.ReadOnlyWarehouse``: short read-only connections,
a small TTL cache). A page is ``{"items", "limit", "offset", "order", "next_offset"}``;
``next_offset`` is null on the last page. The status is one read-only connection for all its
parts, so its figures are consistent with each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from trading_brain.adapters.http_api.queries import LISTINGS, Page, page_statement
from trading_brain.adapters.http_api.warehouse import Row, Statement


class Warehouse(Protocol):
    def batch(self, statements: Sequence[Statement], *, cached: bool = True
              ) -> list[list[Row]]: ...

    def rows(self, sql: str, params: Sequence[object] = (), *, cached: bool = True
             ) -> list[Row]: ...


def listing_page(wh: Warehouse, name: str, filters: Mapping[str, object],
                 since: datetime | None, until: datetime | None, page: Page) -> dict[str, object]:
    sql, params = page_statement(LISTINGS[name], filters, since, until, page)
    rows = wh.rows(sql, params)
    more = len(rows) > page.limit
    return {"items": rows[:page.limit], "limit": page.limit, "offset": page.offset,
            "order": page.order, "next_offset": page.offset + page.limit if more else None}


_STATUS: list[Statement] = [
    ("SELECT slot, state, updated_at FROM risk_state ORDER BY slot", ()),
    ("""SELECT slot, ts, equity, cash, drawdown, exposure FROM portfolio_snapshots
        QUALIFY row_number() OVER (PARTITION BY slot ORDER BY ts DESC) = 1 ORDER BY slot""", ()),
    ("""SELECT slot, count(*) AS open_positions FROM positions WHERE status = 'open'
        GROUP BY slot ORDER BY slot""", ()),
    ("""SELECT timeframe, max(ts) AS newest, count(DISTINCT symbol) AS symbols FROM candles
        GROUP BY timeframe ORDER BY timeframe""", ()),
    ("""SELECT strategy_id, version, deployed_at FROM strategy_versions
        WHERE status = 'active' ORDER BY deployed_at DESC NULLS LAST""", ()),
    ("""SELECT scan_id, bar_time, started_at, duration_ms, signals, intents, rejected FROM scans
        ORDER BY started_at DESC LIMIT 1""", ()),
]


def status(wh: Warehouse, info: Mapping[str, object]) -> dict[str, object]:
    """Mode (``info``, from the settings), then per slot: halted or trading, equity, drawdown,
    open positions; newest candle per timeframe, the active strategy version, the last scan."""
    risk, equity, counts, candles, active, scan = wh.batch(_STATUS)
    slots: dict[str, dict[str, object]] = {}
    for r in risk:
        state = r["state"] if isinstance(r["state"], dict) else {}
        halts = state.get("halts") or {}
        slots[str(r["slot"])] = {
            "state": "kill_switch" if state.get("kill_switch") else "halted" if halts
            else "trading",
            "halts": sorted(halts), "kill_switch": state.get("kill_switch"),
            "rollback": state.get("rollback")}
    for r in equity:
        slots.setdefault(str(r["slot"]), {"state": "trading"}).update(
            {k: r[k] for k in ("equity", "cash", "drawdown", "exposure")}, equity_ts=r["ts"])
    for r in counts:
        slots.setdefault(str(r["slot"]), {"state": "trading"})["open_positions"] = \
            r["open_positions"]
    for s in slots.values():
        s.setdefault("open_positions", 0)
    return {**info, "slots": slots,
            "candles": {str(r["timeframe"]): {"newest": r["newest"], "symbols": r["symbols"]}
                        for r in candles},
            "active_strategies": active, "last_scan": scan[0] if scan else None}
