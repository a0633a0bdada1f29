"""Set-based warehouse methods for the executor tick (mixed into ``Store`` via the ledger mixin).

Contract:
- A DuckDB statement costs ~0.3-3 ms whatever its size, so a tick reads what it needs in a few
  queries (``executor_header``, ``executor_orders``, ``intents_by_ids``) and writes each table
  with ONE multi-row statement per phase (``write_orders``, ``set_intent_statuses``,
  ``insert_fills``, ``save_positions``), all inside ``atomic()``.
- ``atomic()`` is one transaction on the session's connection (it opens a session when none is
  open); ``connection.transaction`` is re-entrant, so the multi-statement writes here (and the
  per-row methods of ``LedgerTablesMixin``) join an open ``atomic()`` or outer transaction.
- Batches bind one list parameter per column (``columns``): decimals as exact strings cast to
  ``DECIMAL(38, 18)`` in SQL (the rounding of binding the ``Decimal`` itself), never DOUBLE.
- Rows written are exactly the rows the per-row methods of ``LedgerTablesMixin`` write; the
  caller (engine/executor.py) merges several changes of one row into its final state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Self

import duckdb

from trading_brain.adapters.duckdb.batch import DEC, TS, TXT, columns
from trading_brain.adapters.duckdb.connection import run, transaction
from trading_brain.adapters.duckdb.trading_tables import _INTENT_COLS
from trading_brain.domain.intents import OrderIntent
from trading_brain.domain.orders import Fill
from trading_brain.domain.records import (
    CENT,
    OPEN_ORDER_STATES,
    ZERO,
    CashEntry,
    FillBook,
    LedgerTotals,
    OrderRow,
    PositionRecord,
)
from trading_brain.domain.risk import RiskState
from trading_brain.ports import LedgerStore

ORDER_COLS = ("client_order_id", "intent_id", "slot", "venue", "venue_order_id", "symbol", "side",
              "order_type", "purpose", "quantity", "limit_price", "stop_price", "state",
              "filled_qty", "avg_price", "fee", "reason", "created_at", "updated_at")
ORDER_TYPES = (TXT,) * 9 + (DEC, DEC, DEC, TXT, DEC, DEC, DEC, TXT, TS, TS)
POS_COLS = ("position_id", "symbol", "slot", "strategy_id", "version", "intent_type", "status",
            "quantity", "cost_basis", "entry_fee", "entry_time", "updated_at", "stop_loss_price",
            "take_profit_price", "max_adverse_excursion", "sold_qty", "exit_value", "exit_fee",
            "exit_time", "exit_reason", "realized_pnl", "entry_cost")
POS_TYPES = (TXT,) * 4 + ("INTEGER", TXT, TXT, DEC, DEC, DEC, TS, TS, DEC, DEC, "DOUBLE", DEC, DEC,
                          DEC, TS, TXT, DEC, DEC)
FILL_COLS = ("fill_id", "client_order_id", "venue_order_id", "symbol", "side", "qty", "price",
             "fee", "fee_currency", "ts")
FILL_TYPES = (TXT,) * 5 + (DEC, DEC, DEC, TXT, TS)
ENTRY_TYPES = (TXT, TS, TXT, DEC, DEC, TXT, TXT, TXT, "BIGINT")
CHUNK = 400  # rows per statement (bounded parameter lists)


def marks(n: int) -> str:
    return ", ".join("?" for _ in range(n))


def chunks(rows: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(rows), CHUNK):
        yield rows[i:i + CHUNK]


def order_row(r: Sequence[Any]) -> OrderRow:
    return OrderRow(**dict(zip(ORDER_COLS, r, strict=True)))


class LedgerBatchMixin:
    """Batched reads and writes of one executor tick (needs ``connect``/``session``/``execute``
    of ``Store``)."""

    if TYPE_CHECKING:  # provided by ``Store``
        def connect(self, *, read_only: bool = False
                    ) -> AbstractContextManager[duckdb.DuckDBPyConnection]: ...

        def session(self) -> AbstractContextManager[object]: ...

        def execute(self, sql: str, params: Sequence[Any] | None = None) -> list: ...

    @contextmanager
    def atomic(self) -> Iterator[Self]:
        """One transaction on the session's connection (a session is opened when none is);
        ``connection.transaction`` is re-entrant, so nested use joins the outer transaction."""
        with self.session(), self.connect() as con, transaction(con):
            yield self

    # -- reads ------------------------------------------------------------------------------
    def executor_header(self, slot: str) -> tuple[Decimal | None, RiskState | None,
                                                  datetime | None, Decimal]:
        """(starting capital, risk state, newest fill time, cash balance) of ``slot``, in
        one scan of its cash ledger (every stored fill has its buy/sell entry at the fill's
        time, written with it, so the newest such entry is the newest fill of the slot); the
        risk state is parsed from its stored JSON."""
        rows = self.execute("""SELECT max(amount) FILTER (WHERE entry_id = ?),  -- deposit
                (SELECT state FROM risk_state WHERE slot = ?),
                max(ts) FILTER (WHERE cause IN ('buy', 'sell')), arg_max(balance_after, seq)
            FROM cash_ledger WHERE slot = ?""", [f"deposit:{slot}", slot, slot])
        capital, state, last_fill, cash = rows[0]
        return (capital, RiskState.model_validate_json(state) if state else None, last_fill,
                cash if cash is not None else Decimal(0))

    def pending_intents(self, slot: str, limit: int) -> list[OrderIntent]:
        """The slot's oldest ``limit`` pending intents (``created_at``, intent id)."""
        rows = self.execute(f"SELECT {', '.join(_INTENT_COLS)} FROM order_intents "
                            "WHERE slot = ? AND status = 'pending' "
                            "ORDER BY created_at, intent_id LIMIT ?", [slot, limit])
        return [OrderIntent.model_validate(dict(zip(_INTENT_COLS, r, strict=True))) for r in rows]

    def executor_orders(self, slot: str, intent_ids: Sequence[str]) -> list[OrderRow]:
        """The slot's open orders plus every order of ``intent_ids`` (the tick passes its open
        positions and pending intents), oldest first (``created_at``, client order id)."""
        ids = sorted(set(intent_ids))
        extra = f" OR intent_id IN ({marks(len(ids))})" if ids else ""
        return [order_row(r) for r in self.execute(
            f"""SELECT {', '.join(ORDER_COLS)} FROM orders WHERE slot = ? AND (
                state IN ({marks(len(OPEN_ORDER_STATES))}){extra})
            ORDER BY created_at, client_order_id""", [slot, *OPEN_ORDER_STATES, *ids])]

    def orders_by_cids(self, cids: Sequence[str]) -> list[OrderRow]:
        if not cids:
            return []
        return [order_row(r) for r in self.execute(
            f"SELECT {', '.join(ORDER_COLS)} FROM orders WHERE client_order_id IN "
            f"({marks(len(cids))}) ORDER BY created_at, client_order_id", list(cids))]

    def intents_by_ids(self, ids: Sequence[str]) -> dict[str, OrderIntent]:
        """The stored intents among ``ids`` (their current status included)."""
        if not ids:
            return {}
        rows = self.execute(f"SELECT {', '.join(_INTENT_COLS)} FROM order_intents "
                            f"WHERE intent_id IN ({marks(len(ids))})", list(ids))
        out = [OrderIntent.model_validate(dict(zip(_INTENT_COLS, r, strict=True))) for r in rows]
        return {i.intent_id: i for i in out}

    def ledger_totals(self, slot: str, tolerance: Decimal = CENT) -> LedgerTotals:
        """``engine.valuation.ledger_totals`` of the slot's cash ledger, computed in the warehouse
        (one statement, one row back: the per-tick cost does not grow with the ledger)."""
        (total, balance, broken), = self.execute("""WITH l AS (
                SELECT seq, entry_id, balance_after,
                       sum(amount) OVER (ORDER BY seq ROWS UNBOUNDED PRECEDING) AS running
                FROM cash_ledger WHERE slot = ?)
            SELECT arg_max(running, seq), arg_max(balance_after, seq),
                   arg_min({'id': entry_id, 'balance': balance_after, 'running': running}, seq)
                       FILTER (WHERE abs(running - balance_after) > ?::DECIMAL(38, 18))
            FROM l""", [slot, format(tolerance, "f")])
        if broken is not None:
            return LedgerTotals(broken["running"], balance, (broken["id"], broken["balance"]))
        return LedgerTotals(total if total is not None else ZERO,
                            balance if balance is not None else ZERO)

    def fill_totals(self, slot: str) -> tuple[FillBook, list[Fill]] | None:
        """The slot's fills reduced in the warehouse for the snapshot and the invariant.

        Per symbol, in replay order (time, buys first, fill id), a running quantity splits the
        fills into closed cycles (up to the last point the quantity is back to zero) and the
        open cycle after it. Returns ``(closed, open_fills)``: ``closed`` is the ``FillBook``
        of every closed cycle (cash flow, fees, and realised = sells - buys, which is what the
        average-cost replay realises over a cycle that ends flat), each notional being
        ``mul(qty, price)`` computed exactly in 128-bit integers (half-even at 18 decimals);
        ``open_fills`` are the open cycles' fills, so ``replay_fills(open_fills, closed)``
        equals ``replay_fills(self.fills(slot))`` at O(open positions' fills) rows read.
        None when some symbol's running quantity goes negative (fills that sell more than was
        bought: only a corrupted ledger): the caller must replay every fill.
        """
        e = "1000000000000000000"  # 10**18: a DECIMAL(38, 18) as integer units
        cols = ", ".join(FILL_COLS)
        rows = self.execute(f"""WITH f AS (  -- x = xi + xf / 10**18, 0 <= xf < 10**18
                SELECT {', '.join('f.' + c for c in FILL_COLS)},
                       floor(f.qty)::HUGEINT AS qi, ((f.qty - floor(f.qty)) * {e})::HUGEINT AS qf,
                       floor(f.price)::HUGEINT AS pi,
                       ((f.price - floor(f.price)) * {e})::HUGEINT AS pf
                FROM fills f JOIN orders o USING (client_order_id) WHERE o.slot = ?),
            u AS (SELECT *, qi * pi * {e} + qi * pf + qf * pi + (qf * pf) // {e} AS lo,
                         (qf * pf) % {e} AS rest FROM f),
            n AS (SELECT *, (lo + CASE WHEN rest > {e} // 2 THEN 1
                                       WHEN rest = {e} // 2 THEN abs(lo % 2) ELSE 0 END
                            )::DECIMAL(38, 0) * 0.000000000000000001 AS notional,
                         sum(CASE WHEN side = 'buy' THEN qty ELSE -qty END) OVER w AS held,
                         row_number() OVER w AS k
                  FROM u WINDOW w AS (PARTITION BY symbol ORDER BY ts, side <> 'buy', fill_id
                                      ROWS UNBOUNDED PRECEDING)),
            c AS (SELECT *, coalesce(max(k) FILTER (WHERE held <= 0) OVER s, 0) AS closed_k,
                         min(held) OVER s AS low FROM n WINDOW s AS (PARTITION BY symbol))
            SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                   sum(CASE WHEN side = 'buy' THEN -notional ELSE notional END - fee)
                       FILTER (WHERE k <= closed_k),
                   sum(fee) FILTER (WHERE k <= closed_k),
                   sum(CASE WHEN side = 'buy' THEN -notional ELSE notional END)
                       FILTER (WHERE k <= closed_k),
                   coalesce(bool_or(low < 0), false)
            FROM c
            UNION ALL
            SELECT {cols}, NULL, NULL, NULL, NULL FROM c WHERE k > closed_k""", [slot])
        total = next(r for r in rows if r[0] is None)
        if total[13]:
            return None
        cash, fees, real = (v if v is not None else ZERO for v in total[10:13])
        closed = FillBook(cash, fees, real)
        return closed, [Fill(**dict(zip(FILL_COLS, r[:10], strict=True)))
                        for r in rows if r[0] is not None]

    def memo_fill_book(self: LedgerStore, slot: str, make: Callable[[LedgerStore, str], FillBook]
                       ) -> FillBook:
        """``make(self, slot)``: the warehouse cannot tell when a slot's fills change, so
        nothing is kept (the memory book keeps the result until a fill is added)."""
        return make(self, slot)

    # -- writes -----------------------------------------------------------------------------
    def write_orders(self, new: Sequence[OrderRow], changed: Sequence[OrderRow]) -> set[str]:
        """Insert the write-ahead rows ``new`` (an existing client order id is left alone) and
        replace every column of the existing rows ``changed``; return the ids inserted now."""
        inserted: set[str] = set()
        cols = ", ".join(ORDER_COLS)
        with self.connect() as con, transaction(con):
            for part in chunks(new):
                sel, params = columns(ORDER_COLS, ORDER_TYPES,
                                      [[getattr(o, c) for c in ORDER_COLS] for o in part])
                inserted |= {r[0] for r in run(con, f"INSERT INTO orders ({cols}) SELECT {sel} "
                                               "ON CONFLICT DO NOTHING RETURNING client_order_id",
                                               params)}
            sets = ", ".join(f"{c} = v.{c}" for c in ORDER_COLS[1:])
            for part in chunks(changed):
                sel, params = columns(ORDER_COLS, ORDER_TYPES,
                                      [[getattr(o, c) for c in ORDER_COLS] for o in part])
                run(con, f"UPDATE orders SET {sets} FROM (SELECT {sel}) v "
                         "WHERE orders.client_order_id = v.client_order_id", params)
        return inserted

    def set_intent_statuses(self, statuses: Sequence[tuple[str, str]], now: datetime) -> None:
        """Set (intent id, status) pairs (the caller checked the transitions) at ``now``."""
        for part in chunks(statuses):
            sel, params = columns(("i", "s"), (TXT, TXT), part)
            self.execute(f"UPDATE order_intents SET status = v.s, updated_at = ? FROM "
                         f"(SELECT {sel}) v WHERE intent_id = v.i", [now, *params])

    def insert_fills(self, fills: Sequence[Fill], entries: Sequence[CashEntry],
                     now: datetime) -> None:
        """Store new fills and their cash entries (``seq`` continues the ledger, in order)."""
        with self.connect() as con, transaction(con):
            for part in chunks(fills):
                sel, params = columns(FILL_COLS, FILL_TYPES,
                                      [[getattr(f, c) for c in FILL_COLS] for f in part])
                run(con, f"INSERT INTO fills ({', '.join(FILL_COLS)}, recorded_at) "
                         f"SELECT {sel}, ?::TIMESTAMPTZ", [*params, now])
            self.insert_entries(con, entries)

    def insert_entries(self, con: duckdb.DuckDBPyConnection, entries: Sequence[CashEntry]) -> None:
        """Append cash entries in order (``seq`` = ledger max + position in ``entries``)."""
        names = ("entry_id", "ts", "slot", "amount", "balance_after", "cause", "ref", "symbol", "i")
        for part in chunks(entries):
            sel, params = columns(names, ENTRY_TYPES, [
                [e.entry_id, e.ts, e.slot, e.amount, e.balance_after, e.cause, e.ref, e.symbol, i]
                for i, e in enumerate(part, start=1)])
            run(con, f"""INSERT INTO cash_ledger (entry_id, ts, slot, amount, balance_after,
                cause, ref, symbol, seq) SELECT entry_id, ts, slot, amount, balance_after, cause,
                ref, symbol, i + (SELECT coalesce(max(seq), 0) FROM cash_ledger)
                FROM (SELECT {sel}) ORDER BY i ON CONFLICT DO NOTHING""", params)

    def save_positions(self, positions: Sequence[PositionRecord]) -> None:
        """Insert or replace positions (one row per position id: the last of ``positions``)."""
        last = list({p.position_id: p for p in positions}.values())
        names = (*POS_COLS, "entry_price", "exit_price")
        for part in chunks(last):
            sel, params = columns(names, (*POS_TYPES, DEC, DEC), [
                [getattr(p, c) for c in POS_COLS] + [p.entry_price, p.exit_price] for p in part])
            self.execute(f"INSERT OR REPLACE INTO positions ({', '.join(names)}) SELECT {sel}",
                         params)
