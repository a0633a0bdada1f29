"""``MemoryBook``: a write-behind, in-memory copy of the trading tables for ``simulate``.

The NautilusTrader cache + database pattern: the simulation's scans and executor ticks talk to
this object instead of the warehouse, and the rows they change are written to the warehouse in
set-based statements at each chunk commit (``adapters.memory.flush``). Nothing here imports
DuckDB: the warehouse side (loading, flushing) lives in ``flush``; the reads in ``reads``.

Contract:
- it implements every storage Protocol of ``trading_brain.ports`` (``TradingStore``: what the
  scan, the executor tick and the paper venue ask), with the warehouse's SQL semantics: the
  same filters, ``ORDER BY`` keys, conflict rules (``ON CONFLICT DO NOTHING``/``INSERT OR
  REPLACE``), ``seq`` numbering and DECIMAL(38, 18) values (rounded half away from zero,
  returned with 18 decimals, like DuckDB returns them); trading_brain_tests/
  test_storage_contract.py proves the Protocols, test_simulate_memory.py the rows;
- it holds orders, order intents, fills, cash ledger, positions, risk state, risk event ids and
  paper books (loaded from the warehouse at start/resume); snapshots, new risk events and every
  changed row are kept as pending writes until ``flush.flush`` stores them;
- the risk state and the paper books are kept as the objects saved (a frozen ``RiskState``, a
  ``paper.book.BookText`` or ``domain.records.SavedText``): their JSON is made only when read
  as text (``risk_state_row``, ``paper_book_row``: the flush, a new venue), the same text the
  warehouse would hold; ``executor_header``/``load_risk_state`` answer the kept ``RiskState``,
  ``paper_book_state`` the kept book (the venue's ``renew``); ``memo_fill_book`` keeps a slot's
  replayed fills until one is added (the warehouse's answers are the neutral ones);
- it is valid only while nothing else writes those tables (``simulate`` holds the warehouse);
- ``system_meta`` goes to the real store; any other store attribute is delegated to it only when
  listed in ``PASS`` (tables the book does not hold); anything else raises AttributeError, so a
  caller reading a held table through a method the book lacks fails loudly instead of reading
  stale rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import polars as pl

from trading_brain.adapters.memory.index import BookIndex
from trading_brain.adapters.memory.reads import BookReads
from trading_brain.adapters.memory.rows import (  # noqa: F401  (dec, Pending: re-exported)
    Pending,
    dec,
    norm_entry,
    norm_fill,
    norm_intent,
    norm_order,
    norm_position,
)
from trading_brain.domain.instruments import AssetPair
from trading_brain.domain.intents import OrderIntent
from trading_brain.domain.orders import Fill
from trading_brain.domain.records import (
    CashEntry,
    FillBook,
    OrderRow,
    PositionRecord,
    SavedText,
    Snapshot,
)
from trading_brain.domain.risk import RiskEvent, RiskState
from trading_brain.ports import LedgerStore, SavedBook

if TYPE_CHECKING:
    from trading_brain.adapters.duckdb.store import Store

PASS = frozenset({"upsert_candles", "upsert_indicators", "upsert_asset_pairs", "record_scans"})


class MemoryBook(BookReads):
    """The trading tables in memory over ``store`` (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.orders_: dict[str, OrderRow] = {}
        self.intents_: dict[str, OrderIntent] = {}
        self.intent_updated: dict[str, datetime] = {}
        self.fills_: dict[str, Fill] = {}
        self.entries: list[tuple[CashEntry, int]] = []  # (entry, seq) in seq order
        self.entry_ids: set[str] = set()
        self.positions_: dict[str, PositionRecord] = {}
        self.risk_states: dict[str, tuple[str, datetime]] = {}  # rows as stored: (JSON, ts)
        self.kept_states: dict[str, tuple[RiskState, datetime]] = {}  # see ``save_risk_state``
        self.event_ids: set[str] = set()
        self.papers: dict[str, tuple[SavedBook, datetime]] = {}  # ``SavedText`` or ``BookText``
        self.pending = Pending()
        self._ix: BookIndex | None = None
        self._fill_books: dict[str, tuple[tuple[BookIndex, int], FillBook]] = {}

    def __getattr__(self, name: str) -> Any:
        if name in PASS:
            return getattr(self.store, name)
        raise AttributeError(f"MemoryBook does not provide {name!r}")

    # -- sessions: no warehouse work happens here ----------------------------------------------
    def session(self) -> AbstractContextManager[object]:
        return nullcontext(self)

    def atomic(self) -> AbstractContextManager[object]:
        return nullcontext(self)

    # -- system_meta is the warehouse's ----------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        return self.store.get_meta(key)

    def set_meta(self, key: str, value: str) -> None:
        self.store.set_meta(key, value)

    # -- tables the book does not hold: the warehouse's (typed, so ScanStore is satisfied) -------
    def active_version(self) -> tuple[str, int] | None:
        return self.store.active_version()

    def strategy_version(self, strategy_id: str, version: int) -> dict[str, Any] | None:
        return self.store.strategy_version(strategy_id, version)

    def read_asset_pairs(self) -> dict[str, AssetPair]:
        return self.store.read_asset_pairs()

    def read_candles(self, symbols: Sequence[str] | None, timeframe: str,
                     start: datetime | None = None, end: datetime | None = None
                     ) -> pl.DataFrame:
        return self.store.read_candles(symbols, timeframe, start, end)

    def read_indicators(self, symbols: Sequence[str] | None, timeframe: str,
                        start: datetime | None = None, end: datetime | None = None
                        ) -> pl.DataFrame:
        return self.store.read_indicators(symbols, timeframe, start, end)

    def record_scan(self, scan: dict[str, Any], signals: Sequence[dict[str, Any]],
                    intents: Sequence[OrderIntent]) -> int:
        """The warehouse's ``record_scan`` split as the book holds it: the scan and its signals
        go to the warehouse, the intents into the book; returns the new intents' count."""
        self.store.record_scans([(scan, signals)])
        return self.record_intents(intents)

    def memo_fill_book(self, slot: str, make: Callable[[LedgerStore, str], FillBook]) -> FillBook:
        """``make(self, slot)`` (``executor.book.slot_book``: a pure function of the slot's
        fills), kept until a fill of the slot is added: the key is the index object and its
        count of the slot's fills, and every fill the book stores goes through that index (a
        rebuilt index is another object). Callers only read the ``FillBook``."""
        ix = self.ix
        key = (ix, ix.fill_version.get(slot, 0))
        kept = self._fill_books.get(slot)
        if kept is not None and kept[0][0] is ix and kept[0][1] == key[1]:
            return kept[1]
        book = make(self, slot)
        self._fill_books[slot] = (key, book)
        return book

    # -- writes --------------------------------------------------------------------------------
    def _append_entries(self, entries: Sequence[CashEntry]) -> None:
        ix = self.ix
        base = ix.max_seq
        for i, e in enumerate(entries, start=1):
            if e.entry_id in self.entry_ids:
                continue
            row = (norm_entry(e), base + i)
            self.entries.append(row)
            self.entry_ids.add(e.entry_id)
            self.pending.entries.append(row)
            ix.entry(*row)

    def ensure_deposit(self, slot: str, amount: Decimal, ts: datetime) -> bool:
        if f"deposit:{slot}" in self.entry_ids:
            return False
        self._append_entries([CashEntry(f"deposit:{slot}", ts, slot, amount, amount, "deposit")])
        return True

    def record_intents(self, intents: Sequence[OrderIntent]) -> int:
        new = 0
        for i in intents:
            if i.intent_id in self.intents_:
                continue
            self.intents_[i.intent_id] = norm_intent(i)
            if self._ix is not None:
                self._ix.intent(self.intents_[i.intent_id])
            self.intent_updated[i.intent_id] = i.created_at
            self.pending.new_intents.add(i.intent_id)
            new += 1
        return new

    def set_intent_statuses(self, statuses: Sequence[tuple[str, str]], now: datetime) -> None:
        for iid, status in statuses:
            if iid in self.intents_:
                self.intents_[iid] = self.intents_[iid].model_copy(update={"status": status})
                if self._ix is not None:
                    self._ix.intent(self.intents_[iid])
                self.intent_updated[iid] = now
                self.pending.intents.add(iid)

    def write_orders(self, new: Sequence[OrderRow], changed: Sequence[OrderRow]) -> set[str]:
        inserted: set[str] = set()
        for o in new:
            if o.client_order_id not in self.orders_:
                self._put_order(None, norm_order(o))
                self.pending.new_orders.add(o.client_order_id)
                inserted.add(o.client_order_id)
        for o in changed:
            if o.client_order_id in self.orders_:
                old = self.orders_[o.client_order_id]
                self._put_order(old, norm_order(o, old))
                self.pending.orders.add(o.client_order_id)
        return inserted

    def _put_order(self, old: OrderRow | None, o: OrderRow) -> None:
        self.orders_[o.client_order_id] = o
        if self._ix is not None and not self._ix.order(old, o, self.orders_):
            self._ix = None  # an order moved slot or intent: rebuild on the next read

    def insert_fills(self, fills: Sequence[Fill], entries: Sequence[CashEntry],
                     now: datetime) -> None:
        for f in fills:
            if f.fill_id in self.fills_:  # the warehouse's primary key refuses it
                raise ValueError(f"duplicate fill id {f.fill_id}")
            self.fills_[f.fill_id] = norm_fill(f)
            self.pending.fills.append((self.fills_[f.fill_id], now))
            if self._ix is not None:
                self._ix.fill(self.fills_[f.fill_id], self.orders_)
        self._append_entries(entries)

    def save_positions(self, positions: Sequence[PositionRecord]) -> None:
        for p in positions:
            self.positions_[p.position_id] = norm_position(p, self.positions_.get(p.position_id))
            self.pending.positions.add(p.position_id)
            if self._ix is not None:
                self._ix.position(self.positions_[p.position_id])

    def write_snapshot(self, s: Snapshot) -> None:
        self.pending.snapshots[s.ts, s.slot] = s

    def record_risk_events(self, slot: str, events: Sequence[RiskEvent]) -> int:
        new = 0
        for e in events:
            body = e.model_dump_json()
            eid = hashlib.sha256(f"{slot}|{body}".encode()).hexdigest()[:32]
            if eid in self.event_ids:
                continue
            self.event_ids.add(eid)
            details = {**e.details, "slot": slot}
            self.pending.events.append([eid, e.ts, e.kind, e.symbol, e.reason,
                                        json.dumps(details, default=str)])
            new += 1
        return new

    def save_risk_state(self, slot: str, state: RiskState, now: datetime | None = None) -> None:
        """Keep ``state`` itself (a frozen model) as the slot's row: its JSON is written only
        when the row is read as text (``risk_state_row``: the flush), and ``load_risk_state``
        answers the kept object, sparing a dump and a parse per tick. What the warehouse would
        answer is ``RiskState.model_validate_json(state.model_dump_json())``: the same values
        (every field round-trips its JSON exactly; the risk rules build states through
        validated models and copies of them); the text flushed is ``state.model_dump_json()``,
        as before."""
        ts = now or state.updated_at or datetime.now(UTC)
        self.kept_states[slot] = (state, ts)
        self.pending.risk_states.add(slot)

    def save_paper_book(self, account: str, state: str, now: datetime) -> None:
        self.papers[account] = (SavedText(state), now)
        self.pending.papers.add(account)

    def keep_paper_book(self, account: str, state: SavedBook, now: datetime) -> None:
        """``save_paper_book`` of a state whose text is made when read (``paper_book_row``):
        the paper venue writes its book after every change, once per tick; its JSON (the
        whole book) is only needed at the flush or by a new venue over the account."""
        self.papers[account] = (state, now)
        self.pending.papers.add(account)
