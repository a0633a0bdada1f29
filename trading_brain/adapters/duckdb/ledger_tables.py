"""Warehouse methods for the executor: orders, fills, positions, cash ledger, snapshots, risk.

Contract (mixed into ``Store``; every method is one short connection, or the session's):
- ``insert_order`` is the write-ahead: it inserts a ``submitting`` row once per client order id
  and returns False when the id already exists (the caller must then not call the venue).
- ``record_fill`` stores a fill, its cash entries and the position it changes in ONE
  transaction, and does nothing (returns False) when the fill id is already stored — replaying a
  venue's fills can never double-count.
- ``ensure_deposit`` writes the slot's starting capital once (entry id ``deposit:<slot>``).
- Risk events get a deterministic id (hash of their content), so re-recording is a no-op.
- ``paper_accounts`` holds the paper venue's book per account (JSON); ``keep_paper_book`` writes
  the text at once and ``paper_book_state`` answers a new copy per call (``ports.PaperBookStore``).
- The executor tick itself uses the set-based methods of ``ledger_batch.LedgerBatchMixin``
  (same rows as the per-row methods here, one statement per table and phase).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb

from trading_brain.adapters.duckdb.connection import frame, run, transaction
from trading_brain.adapters.duckdb.ledger_batch import LedgerBatchMixin, columns
from trading_brain.adapters.duckdb.trading_tables import _INTENT_COLS
from trading_brain.domain.intents import OrderIntent
from trading_brain.domain.orders import Fill, sql_list
from trading_brain.domain.records import (
    OPEN_ORDER_STATES,
    CashEntry,
    OrderRow,
    PositionRecord,
    SavedText,
    Snapshot,
)
from trading_brain.domain.risk import (
    PortfolioView,
    RiskEvent,
    RiskState,
)
from trading_brain.engine.ledger import FillEffect
from trading_brain.engine.valuation import portfolio_view_of
from trading_brain.ports import SavedBook

_ORDER_COLS = ("client_order_id", "intent_id", "slot", "venue", "venue_order_id", "symbol", "side",
               "order_type", "purpose", "quantity", "limit_price", "stop_price", "state",
               "filled_qty", "avg_price", "fee", "reason", "created_at", "updated_at")
_POS_COLS = ("position_id", "symbol", "slot", "strategy_id", "version", "intent_type", "status",
             "quantity", "cost_basis", "entry_fee", "entry_time", "updated_at", "stop_loss_price",
             "take_profit_price", "max_adverse_excursion", "sold_qty", "exit_value", "exit_fee",
             "exit_time", "exit_reason", "realized_pnl", "entry_cost")
_FILL_COLS = ("fill_id", "client_order_id", "venue_order_id", "symbol", "side", "qty", "price",
              "fee", "fee_currency", "ts")
_SNAP_COLS = ("ts", "slot", "equity", "cash", "positions_value", "exposure", "peak_equity",
              "drawdown", "daily_pnl", "fees_paid", "realized_pnl", "unrealized_pnl")


def _marks(n: int) -> str:
    return ", ".join("?" for _ in range(n))


class LedgerTablesMixin(LedgerBatchMixin):
    """orders, fills, positions, cash_ledger, portfolio_snapshots, risk_*, paper_accounts."""

    # -- paper venue -------------------------------------------------------------------------
    def load_paper_book(self, account: str) -> str | None:
        rows = self.execute("SELECT state FROM paper_accounts WHERE account = ?", [account])
        return rows[0][0] if rows else None

    def save_paper_book(self, account: str, state: str, now: datetime) -> None:
        self.execute("""INSERT INTO paper_accounts VALUES (?, ?, ?) ON CONFLICT (account)
            DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at""",
                     [account, state, now])

    def keep_paper_book(self, account: str, state: SavedBook, now: datetime) -> None:
        """``save_paper_book`` of ``state.text()``, at once (the warehouse holds text)."""
        self.save_paper_book(account, state.text(), now)

    def paper_book_state(self, account: str) -> SavedBook | None:
        """A new ``SavedText`` of the stored text on every call (None without a book): the
        warehouse answers copies, so a venue over it is never renewed (``PaperExchange.renew``)."""
        text = self.load_paper_book(account)
        return SavedText(text) if text is not None else None

    # -- orders ------------------------------------------------------------------------------
    def insert_order(self, row: OrderRow) -> bool:
        """Write-ahead insert; False when the client order id is already recorded."""
        with self.connect() as con:
            return bool(run(con, f"INSERT INTO orders ({', '.join(_ORDER_COLS)}) VALUES "
                                 f"({_marks(len(_ORDER_COLS))}) ON CONFLICT DO NOTHING "
                                 "RETURNING client_order_id",
                            [getattr(row, c) for c in _ORDER_COLS]))

    def update_order(self, cid: str, now: datetime, **fields: Any) -> None:
        """Set ``fields`` (columns of ``orders``) and ``updated_at`` on one order."""
        bad = set(fields) - set(_ORDER_COLS)
        if bad:
            raise ValueError(f"unknown order columns {sorted(bad)}")
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.execute(f"UPDATE orders SET {sets}, updated_at = ? WHERE client_order_id = ?",
                     [*fields.values(), now, cid])

    def order(self, cid: str) -> OrderRow | None:
        rows = self._orders("WHERE client_order_id = ?", [cid])
        return rows[0] if rows else None

    def orders(self, slot: str | None = None, open_only: bool = False,
               intent_ids: Sequence[str] | None = None) -> list[OrderRow]:
        """Orders (optionally of a slot, still open, or of the given intents), oldest first."""
        where, params = [], []
        if slot is not None:
            where.append("slot = ?")
            params.append(slot)
        if open_only:
            where.append(f"state IN ({_marks(len(OPEN_ORDER_STATES))})")
            params += list(OPEN_ORDER_STATES)
        if intent_ids is not None:
            if not intent_ids:
                return []
            where.append(f"intent_id IN ({_marks(len(intent_ids))})")
            params += list(intent_ids)
        return self._orders(("WHERE " + " AND ".join(where)) if where else "", params)

    def _orders(self, where: str, params: list) -> list[OrderRow]:
        rows = self.execute(f"SELECT {', '.join(_ORDER_COLS)} FROM orders {where} "
                            "ORDER BY created_at, client_order_id", params)
        return [OrderRow(**dict(zip(_ORDER_COLS, r, strict=True))) for r in rows]

    # -- fills, cash, positions --------------------------------------------------------------
    def record_fill(self, slot: str, fill: Fill, effect: FillEffect, now: datetime) -> bool:
        """Store fill + cash entries + position atomically; False (no change) if already stored."""
        with self.connect() as con, transaction(con):
            if run(con, "SELECT 1 FROM fills WHERE fill_id = ?", [fill.fill_id]):
                return False
            d = fill.model_dump()
            run(con, f"INSERT INTO fills ({', '.join(_FILL_COLS)}, recorded_at) VALUES "
                     f"({_marks(len(_FILL_COLS) + 1)})", [d[c] for c in _FILL_COLS] + [now])
            self._insert_entries(con, effect.entries)
            self._upsert_position(con, effect.position)
            return True

    def _insert_entries(self, con: duckdb.DuckDBPyConnection, entries: Sequence[CashEntry]) -> None:
        seq = run(con, "SELECT coalesce(max(seq), 0) FROM cash_ledger")[0][0]
        for i, e in enumerate(entries, start=1):
            run(con, """INSERT INTO cash_ledger (entry_id, ts, slot, amount, balance_after, cause,
                ref, symbol, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
                [e.entry_id, e.ts, e.slot, e.amount, e.balance_after, e.cause, e.ref, e.symbol,
                 seq + i])

    def _upsert_position(self, con: duckdb.DuckDBPyConnection, p: PositionRecord) -> None:
        run(con, f"INSERT OR REPLACE INTO positions ({', '.join(_POS_COLS)}, entry_price, "
                 f"exit_price) VALUES ({_marks(len(_POS_COLS) + 2)})",
            [getattr(p, c) for c in _POS_COLS] + [p.entry_price, p.exit_price])

    def save_position(self, p: PositionRecord) -> None:
        with self.connect() as con, transaction(con):
            self._upsert_position(con, p)

    def positions(self, slot: str, status: str | None = "open") -> list[PositionRecord]:
        where, params = "WHERE slot = ?", [slot]
        if status is not None:
            where += " AND status = ?"
            params.append(status)
        rows = self.execute(f"SELECT {', '.join(_POS_COLS)} FROM positions {where} "
                            "ORDER BY entry_time, position_id", params)
        return [PositionRecord(**dict(zip(_POS_COLS, r, strict=True))) for r in rows]

    def known_fill_ids(self, fill_ids: Sequence[str]) -> set[str]:
        """The subset of ``fill_ids`` already stored."""
        if not fill_ids:
            return set()
        rows = self.execute(f"SELECT fill_id FROM fills WHERE fill_id IN ({_marks(len(fill_ids))})",
                            list(fill_ids))
        return {r[0] for r in rows}

    def intent_by_id(self, intent_id: str) -> OrderIntent | None:
        """One order intent by id (None when unknown)."""
        with self.connect() as con:
            df = frame(con, f"SELECT {', '.join(_INTENT_COLS)} FROM order_intents "
                            "WHERE intent_id = ?", [intent_id])
        return OrderIntent.model_validate(df.to_dicts()[0]) if df.height else None

    def last_fill_ts(self, slot: str) -> datetime | None:
        rows = self.execute("""SELECT max(f.ts) FROM fills f JOIN orders o USING (client_order_id)
            WHERE o.slot = ?""", [slot])
        return rows[0][0]

    def fills(self, slot: str) -> list[Fill]:
        rows = self.execute(f"""SELECT {', '.join('f.' + c for c in _FILL_COLS)} FROM fills f
            JOIN orders o USING (client_order_id) WHERE o.slot = ? ORDER BY f.ts, f.fill_id""",
                            [slot])
        return [Fill(**dict(zip(_FILL_COLS, r, strict=True))) for r in rows]

    def ensure_deposit(self, slot: str, amount: Decimal, ts: datetime) -> bool:
        """Record the slot's starting capital once; True when written now."""
        with self.connect() as con, transaction(con):
            if run(con, "SELECT 1 FROM cash_ledger WHERE entry_id = ?", [f"deposit:{slot}"]):
                return False
            self._insert_entries(con, [CashEntry(f"deposit:{slot}", ts, slot, amount, amount,
                                                 "deposit")])
            return True

    def starting_capital(self, slot: str) -> Decimal | None:
        rows = self.execute("SELECT amount FROM cash_ledger WHERE entry_id = ?",
                            [f"deposit:{slot}"])
        return rows[0][0] if rows else None

    def cash_entries(self, slot: str) -> list[CashEntry]:
        rows = self.execute("""SELECT entry_id, ts, slot, amount, balance_after, cause, ref, symbol
            FROM cash_ledger WHERE slot = ? ORDER BY seq""", [slot])
        return [CashEntry(*r) for r in rows]

    def cash_balance(self, slot: str) -> Decimal:
        rows = self.execute("SELECT balance_after FROM cash_ledger WHERE slot = ? "
                            "ORDER BY seq DESC LIMIT 1", [slot])
        return rows[0][0] if rows else Decimal(0)

    # -- snapshots ---------------------------------------------------------------------------
    def write_snapshot(self, s: Snapshot) -> None:
        self.execute(f"INSERT OR REPLACE INTO portfolio_snapshots ({', '.join(_SNAP_COLS)}) "
                     f"VALUES ({_marks(len(_SNAP_COLS))})", [getattr(s, c) for c in _SNAP_COLS])

    def snapshots(self, slot: str) -> list[Snapshot]:
        rows = self.execute(f"SELECT {', '.join(_SNAP_COLS)} FROM portfolio_snapshots "
                            "WHERE slot = ? ORDER BY ts", [slot])
        return [Snapshot(*r) for r in rows]

    # -- risk --------------------------------------------------------------------------------
    def record_risk_events(self, slot: str, events: Sequence[RiskEvent]) -> int:
        """Insert events (id = hash of slot + content) in one statement; return how many were
        new."""
        rows: dict[str, list[Any]] = {}
        for e in events:
            body = e.model_dump_json()
            eid = hashlib.sha256(f"{slot}|{body}".encode()).hexdigest()[:32]
            if eid not in rows:
                details = {**e.details, "slot": slot}
                rows[eid] = [eid, e.ts, e.kind, e.symbol, e.reason,
                             json.dumps(details, default=str)]
        if not rows:
            return 0
        sel, params = columns(("event_id", "ts", "kind", "symbol", "reason", "details"),
                              ("VARCHAR", "TIMESTAMPTZ", "VARCHAR", "VARCHAR", "VARCHAR",
                               "VARCHAR"), list(rows.values()))
        return len(self.execute(f"INSERT INTO risk_events SELECT {sel} ON CONFLICT DO NOTHING "
                                "RETURNING event_id", params))

    def load_risk_state(self, slot: str) -> RiskState | None:
        rows = self.execute("SELECT state FROM risk_state WHERE slot = ?", [slot])
        return RiskState.model_validate_json(rows[0][0]) if rows else None

    def save_risk_state(self, slot: str, state: RiskState, now: datetime | None = None) -> None:
        ts = now or state.updated_at or datetime.now(UTC)
        self.execute("""INSERT INTO risk_state VALUES (?, ?, ?) ON CONFLICT (slot)
            DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at""",
                     [slot, state.model_dump_json(), ts])

    def portfolio_view(self, slot: str, marks: Mapping[str, Decimal],
                       fee_rate: Decimal = Decimal(0)) -> PortfolioView:
        """The slot as the risk shell sees it: ledger cash, marked positions, pending orders.

        Pending = intents still ``pending`` plus open entry/exit orders; an entry reserves
        remaining quantity x (limit or reference price) x (1 + ``fee_rate``).
        """
        rows = self.execute(f"""SELECT i.intent_id, i.symbol, i.action,
                coalesce(o.quantity - o.filled_qty, i.quantity),
                coalesce(i.limit_price, i.reference_price)
            FROM order_intents i LEFT JOIN orders o ON o.intent_id = i.intent_id
                 AND o.purpose IN ('entry', 'exit', 'kill')
            WHERE i.slot = ? AND (i.status = 'pending' OR (i.status = 'submitted' AND
                  o.state IN {sql_list(OPEN_ORDER_STATES)}))
            ORDER BY i.intent_id""", [slot])
        return portfolio_view_of(self.cash_balance(slot), self.positions(slot), marks, rows,
                                 fee_rate)

    # -- reads for the trading checks and `status` ----------------------------------------
    def known_slots(self) -> list[str]:
        """Slots with a ledger or a risk state, plus ``active`` (sorted)."""
        rows = self.execute("SELECT DISTINCT slot FROM cash_ledger UNION "
                            "SELECT DISTINCT slot FROM risk_state")
        return sorted({r[0] for r in rows} | {"active"})

    def latest_equity(self) -> dict[str, Decimal]:
        """Equity of each slot's newest portfolio snapshot."""
        rows = self.execute("""SELECT slot, equity FROM portfolio_snapshots
            QUALIFY row_number() OVER (PARTITION BY slot ORDER BY ts DESC) = 1""")
        return {s: Decimal(e) for s, e in rows}

    def open_position_counts(self) -> dict[str, int]:
        rows = self.execute(
            "SELECT slot, count(*) FROM positions WHERE status = 'open' GROUP BY slot")
        return {s: int(n) for s, n in rows}

    def drought_figures(self, now: datetime, hours: float) -> tuple[int, int]:
        """(scans, entry signals) of strategy scans with a decision bar in the last ``hours``."""
        since = now - timedelta(hours=hours)
        scans = self.execute(
            "SELECT count(*) FROM scans WHERE bar_time >= ? AND bar_time <= ? "
            "AND scan_id NOT LIKE 'kill-%'", [since, now])[0][0]
        entries = self.execute(
            "SELECT count(*) FROM signals WHERE action = 'enter' "
            "AND bar_time >= ? AND bar_time <= ?", [since, now])[0][0]
        return int(scans), int(entries)
