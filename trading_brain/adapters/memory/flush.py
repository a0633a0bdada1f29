"""The warehouse side of ``adapters.memory.book.MemoryBook``: load it, flush it.

``load(store)`` reads the trading tables the book holds (orders, order intents, fills, cash
ledger, positions, risk state, risk event ids, paper accounts) in one session. ``flush(book)``
writes every pending change with one set-based statement per table (the batch helpers of
``adapters.duckdb.ledger_batch``: decimals as exact strings cast to DECIMAL(38, 18)), on the
store's current connection — ``simulate`` calls it inside the chunk's transaction, right before
the checkpoint, so a chunk's rows and its checkpoint commit together. The rows written are the
rows the store's own methods would have left: final column values, the same ``updated_at``/
``recorded_at``/``seq``, the same conflict rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from trading_brain.adapters.duckdb.connection import run
from trading_brain.adapters.duckdb.ledger_batch import (
    DEC,
    FILL_COLS,
    FILL_TYPES,
    ORDER_COLS,
    POS_COLS,
    TS,
    TXT,
    chunks,
    columns,
    order_row,
)
from trading_brain.adapters.duckdb.store import Store
from trading_brain.adapters.duckdb.trading_tables import _INTENT_COLS
from trading_brain.adapters.memory.book import MemoryBook, Pending
from trading_brain.domain.intents import OrderIntent
from trading_brain.domain.orders import Fill
from trading_brain.domain.records import CashEntry, PositionRecord, SavedText

INTENT_TYPES = (TXT, TXT, TXT, "INTEGER", TXT, TXT, TS, TXT, DEC, DEC, DEC, "DOUBLE", "DOUBLE",
                TXT, "DOUBLE", TXT, TS, TS)
ENTRY_COLS = ("entry_id", "ts", "slot", "amount", "balance_after", "cause", "ref", "symbol", "seq")
ENTRY_TYPES = (TXT, TS, TXT, DEC, DEC, TXT, TXT, TXT, "BIGINT")
SNAP_COLS = ("ts", "slot", "equity", "cash", "positions_value", "exposure", "peak_equity",
             "drawdown", "daily_pnl", "fees_paid", "realized_pnl", "unrealized_pnl")
SNAP_TYPES = (TS, TXT, DEC, DEC, DEC, "DOUBLE", DEC, "DOUBLE", DEC, DEC, DEC, DEC)
EVENT_COLS = ("event_id", "ts", "kind", "symbol", "reason", "details")
EVENT_TYPES = (TXT, TS, TXT, TXT, TXT, TXT)


def load(store: Store) -> MemoryBook:
    """A book holding the warehouse's current trading rows."""
    book = MemoryBook(store)
    with store.session(), store.connect() as con:
        for r in run(con, f"SELECT {', '.join(ORDER_COLS)} FROM orders"):
            o = order_row(r)
            book.orders_[o.client_order_id] = o
        for r in run(con, f"SELECT {', '.join(_INTENT_COLS)}, updated_at FROM order_intents"):
            i = OrderIntent.model_validate(dict(zip(_INTENT_COLS, r[:-1], strict=True)))
            book.intents_[i.intent_id], book.intent_updated[i.intent_id] = i, r[-1]
        for r in run(con, f"SELECT {', '.join(FILL_COLS)} FROM fills"):
            f = Fill(**dict(zip(FILL_COLS, r, strict=True)))
            book.fills_[f.fill_id] = f
        for r in run(con, f"SELECT {', '.join(ENTRY_COLS)} FROM cash_ledger ORDER BY seq"):
            book.entries.append((CashEntry(*r[:8]), r[8]))
            book.entry_ids.add(r[0])
        for r in run(con, f"SELECT {', '.join(POS_COLS)} FROM positions"):
            p = PositionRecord(**dict(zip(POS_COLS, r, strict=True)))
            book.positions_[p.position_id] = p
        for slot, state, ts in run(con, "SELECT slot, state, updated_at FROM risk_state"):
            book.risk_states[slot] = (state, ts)
        book.event_ids = {r[0] for r in run(con, "SELECT event_id FROM risk_events")}
        for acc, state, ts in run(con, "SELECT account, state, updated_at FROM paper_accounts"):
            book.papers[acc] = (SavedText(state), ts)
    return book


def _insert(con: duckdb.DuckDBPyConnection, head: str, names: Sequence[str], types: Sequence[str],
            rows: Sequence[Sequence[Any]], tail: str = "") -> None:
    for part in chunks(rows):
        sel, params = columns(names, types, part)
        run(con, f"{head} ({', '.join(names)}) SELECT {sel} {tail}", params)


def flush(book: MemoryBook) -> None:
    """Write the book's pending changes through its store's connection; clear them."""
    p, store = book.pending, book.store
    if p == Pending():
        return
    with store.connect() as con:
        new = [book.orders_[c] for c in sorted(p.new_orders)]
        changed = [book.orders_[c] for c in sorted(p.orders - p.new_orders)]
        if new or changed:
            store.write_orders(new, changed)
        intents = [[*(getattr(book.intents_[i], c) for c in _INTENT_COLS),
                    book.intent_updated[i]] for i in sorted(p.new_intents)]
        _insert(con, "INSERT INTO order_intents", (*_INTENT_COLS, "updated_at"), INTENT_TYPES,
                intents, "ON CONFLICT DO NOTHING")
        moved = [[i, book.intents_[i].status, book.intent_updated[i]]
                 for i in sorted(p.intents - p.new_intents)]
        for part in chunks(moved):
            sel, params = columns(("i", "s", "u"), (TXT, TXT, TS), part)
            run(con, "UPDATE order_intents SET status = v.s, updated_at = v.u FROM "
                     f"(SELECT {sel}) v WHERE intent_id = v.i", params)
        _insert(con, "INSERT INTO fills", (*FILL_COLS, "recorded_at"), (*FILL_TYPES, TS),
                [[*(getattr(f, c) for c in FILL_COLS), at] for f, at in p.fills])
        _insert(con, "INSERT INTO cash_ledger", ENTRY_COLS, ENTRY_TYPES,
                [[e.entry_id, e.ts, e.slot, e.amount, e.balance_after, e.cause, e.ref, e.symbol,
                  seq] for e, seq in p.entries], "ON CONFLICT DO NOTHING")
        if p.positions:
            store.save_positions([book.positions_[i] for i in sorted(p.positions)])
        _insert(con, "INSERT OR REPLACE INTO portfolio_snapshots", SNAP_COLS, SNAP_TYPES,
                [[getattr(s, c) for c in SNAP_COLS] for s in p.snapshots.values()])
        _insert(con, "INSERT INTO risk_events", EVENT_COLS, EVENT_TYPES, p.events,
                "ON CONFLICT DO NOTHING")
        for slot in sorted(p.risk_states):
            row = book.risk_state_row(slot)
            assert row is not None  # pending: saved, so held
            state, ts = row
            run(con, """INSERT INTO risk_state VALUES (?, ?, ?) ON CONFLICT (slot)
                DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at""",
                [slot, state, ts])
        for acc in sorted(p.papers):
            paper = book.paper_book_row(acc)
            assert paper is not None  # pending: saved, so held
            store.save_paper_book(acc, *paper)
    book.pending = Pending()
