"""``PaperExchange``: the paper venue, the fill model of DESIGN §6 against a market's own bars.

The venue's calls, protection arming and saves live here; how the book moves forward on bars
(order fills, stop checks) is its base ``matching.BookMatching``.

Contract (an ``ports.Exchange``; one object per account, i.e. per slot, each with its own cash):
- Time is the injected clock's. Every call first *advances* the book to ``clock.now()`` and the
  book is persisted (``store.save_paper_book``) after any change, so a new object over the same
  warehouse continues where the old one stopped (restart, crash).
- A market order placed at ``t`` fills at the open of the first 1-minute bar opening at or after
  ``t`` ("next open" = first price after the decision), once that bar has closed: buys at
  ``open*(1+slippage)``, sells at ``open*(1-slippage)``; fee = taker rate x qty x price (quote).
  A limit order fills at the first bar where it is marketable: at the open when the open is
  better than the limit, else at the limit when the bar trades through it (no slippage).
  With ``max_volume_fraction`` a bar fills at most that fraction of its volume (partial fills).
  A buy the cash cannot pay is canceled (``insufficient_funds``); a sell beyond the free
  holdings or a reused client order id is refused at placement (``OrderRejected``).
- Protection (the contract of engine/protective.py, the same rows as on Kraken):
  ``reconcile_protective(entry, stop_cid)`` (same name as Kraken's) arms the entry's stop-loss /
  take-profit *levels* (fixed by the caller from the entry fill) once the entry is filled: ONE
  open ``stop-loss`` order (client id ``stop_cid``, default ``derive_client_order_id(entry,
  "sl")``) and the take-profit level modelled without an order. Both are checked exactly as the
  backtest does (engine/fills.py rule 5) on every closed ``stop_timeframe`` bar after the entry
  bar: an open beyond a level exits at the open, else low <= SL exits at SL, else high >= TP at
  TP (SL wins), with fee and no slippage. A stop-loss hit fills the stop order; a take-profit
  hit is what the executor does on Kraken — the stop is canceled (reason ``take_profit``) and a
  market sell ``derive_client_order_id(entry, "tp")`` fills — but at the level on that bar, so
  paper trades equal the backtest's. A symbol with armed stops waits for its ``stop_timeframe``
  bar to close before filling a sell inside it, so a stop on that bar comes first and the
  pending sell is canceled (``closed_by_stop``). It returns an ``engine.protective.Protection``.
- ``with venue.deferred_saves():`` (the executor wraps its venue calls of one tick in it) writes
  the book once when the block ends — also when it raises — instead of after every change; only
  a process killed inside the block loses the block's changes, which the executor treats like
  requests that never arrived (unknown -> ``unresolved`` -> ``not_at_venue``; never resent).
- The store is a ``ports.PaperBookStore``: the book is read from ``paper_book_state`` and
  written with ``keep_paper_book`` as a ``paper.book.BookText``, whose JSON is made when the
  store reads it — at once by the warehouse, at its flush or for a new venue by simulate's memory
  book — exact because every change of the book is followed by a save.
- ``renew()`` lets a caller keep one object per account across ticks (simulate does): it says
  whether the object still holds exactly the book its store holds (the very state it last read or
  wrote, by identity: a store answering copies, like the warehouse, always gets False -> build a
  new object) and then continues as a new object over that store would, without re-parsing.
- Bars are read as plain tuples: a market with ``candle_rows`` (the sim market) serves them
  without building a frame; any other market's ``candles`` frame is converted.
- Ids are deterministic: venue order id ``P-<hash(account, cid)>``, fill id ``<venue id>-<n>``.
  Fills and closed orders older than ``keep_fills`` (30 days) are forgotten, so the book stays
  small; the warehouse keeps the history.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal

from trading_brain.adapters.paper.book import (
    OPEN_STATES,
    BookText,
    BookWriter,
    PaperBook,
    PaperOrder,
)
from trading_brain.adapters.paper.book import Protection as Armed
from trading_brain.adapters.paper.matching import NEVER, BookMatching, ceil_minute, running_max
from trading_brain.domain.instruments import AssetPair
from trading_brain.domain.orders import (
    Balance,
    Fill,
    OrderAck,
    OrderRequest,
    OrderStatus,
    derive_client_order_id,
)
from trading_brain.domain.records import money
from trading_brain.domain.timeframes import Timeframe, as_utc, delta, floor_time
from trading_brain.engine.executor.protective import Protection
from trading_brain.errors import OrderRejected
from trading_brain.ports import Clock, MarketData, PaperBookStore, SavedBook


class PaperExchange(BookMatching):
    """The paper venue for one account (see module docstring)."""

    name = "paper"

    def __init__(self, market: MarketData, clock: Clock, store: PaperBookStore,
                 pairs: Mapping[str, AssetPair], *, account: str = "active",
                 starting_cash: Decimal = Decimal(10_000), slippage: float = 0.0005,
                 stop_timeframe: Timeframe = "5m", max_volume_fraction: float | None = None,
                 quote: str = "USD", keep_fills: timedelta = timedelta(days=30)) -> None:
        self.market, self.clock, self.store, self.pairs = market, clock, store, dict(pairs)
        self.account, self.slippage, self.quote = account, slippage, quote
        self.stop_tf: Timeframe = stop_timeframe
        self.step = delta(stop_timeframe)
        self.max_volume_fraction, self.keep_fills = max_volume_fraction, keep_fills
        # the stored state this object last read or wrote (see ``renew``)
        self._raw: SavedBook | None = store.paper_book_state(account)
        raw = self._raw.text() if self._raw is not None else None
        self.book = (PaperBook.model_validate_json(raw) if raw
                     else PaperBook(cash=money(Decimal(starting_cash))))
        # indexes over the book (the book stays the truth; per-call cost no longer grows with it)
        self._open = {c: o for c, o in self.book.orders.items() if o.state in OPEN_STATES}
        self._fmax = running_max([f.ts for f in self.book.fills])  # for ``fills_since``
        self._floor: datetime | None = None  # <= every fill ts / closed order's updated_at
        self._writer = BookWriter()
        self._statuses: dict[str, tuple[tuple, OrderStatus]] = {}  # see ``_status``
        self._advanced: datetime | None = None  # the instant the book was last advanced to
        self._advanced_raw: object = None  # the clock's reading it came from (same object)
        self._deferred = 0  # depth of ``deferred_saves`` blocks
        self._unsaved: datetime | None = None  # time of the last change not written yet

    # ---- Exchange ------------------------------------------------------------------------
    def place_order(self, req: OrderRequest) -> OrderAck:
        now = self._advance()
        if req.client_order_id in self.book.orders:
            raise OrderRejected(f"client order id {req.client_order_id} already used",
                                reason="duplicate_order")
        pair = self._pair(req.symbol)
        qty = pair.round_qty(req.quantity)
        if qty <= 0 or qty < pair.ordermin:
            raise OrderRejected(f"{req.symbol}: quantity {req.quantity} below ordermin",
                                reason="order_minimum")
        if req.side == "sell" and qty > self._free(req.symbol):
            raise OrderRejected(f"{req.symbol}: sell {qty} > free {self._free(req.symbol)}",
                                reason="insufficient_funds")
        o = PaperOrder(cid=req.client_order_id, venue_order_id=self._vid(req.client_order_id),
                       symbol=req.symbol, side=req.side, type=req.type, quantity=qty,
                       limit_price=req.limit_price, placed_at=now, next_minute=ceil_minute(now),
                       updated_at=now)
        self.book.orders[o.cid] = self._open[o.cid] = o
        self._save(now)
        return OrderAck(client_order_id=o.cid, venue_order_id=o.venue_order_id, state="open",
                        accepted_at=now)

    def order_by_client_id(self, client_order_id: str) -> OrderStatus | None:
        self._advance()
        o = self.book.orders.get(client_order_id)
        return self._status(o) if o is not None else None

    def open_orders(self) -> list[OrderStatus]:
        self._advance()
        return [self._status(o) for o in self._open.values()]

    def cancel_order(self, client_order_id: str | None = None,
                     venue_order_id: str | None = None) -> bool:
        now = self._advance()
        o = next((o for o in self.book.orders.values() if o.cid == client_order_id
                  or (venue_order_id and o.venue_order_id == venue_order_id)), None)
        if o is None or o.state not in OPEN_STATES:
            return False
        self._close(o, "canceled", "canceled by request", now)
        p = self.book.protections.get(self._entry_of(o))
        if p is not None:  # the stop canceled: the modelled take-profit stays armed
            p.sl = None
            if p.tp is None:
                del self.book.protections[p.entry_cid]
        self._save(now)
        return True

    def fills_since(self, t: datetime) -> list[Fill]:
        self._advance()
        t = as_utc(t)  # fills before the first whose running max reaches t are all older
        return [f for f in self.book.fills[bisect_left(self._fmax, t):] if f.ts >= t]

    def balances(self) -> Balance:
        self._advance()
        assets = {self.quote: self.book.cash}
        for sym, q in self.book.holdings.items():
            if q:
                assets[self._pair(sym).base] = q
        return Balance(assets=assets)

    @contextmanager
    def deferred_saves(self) -> Iterator[PaperExchange]:
        """Write the book once when the block ends (also when it raises), not after every change."""
        self._deferred += 1
        try:
            yield self
        finally:
            self._deferred -= 1
            if not self._deferred and self._unsaved is not None:
                now, self._unsaved = self._unsaved, None
                self._write(now)

    # ---- protection ----------------------------------------------------------------------
    def reconcile_protective(self, entry: OrderRequest, stop_cid: str | None = None
                             ) -> Protection:
        """Arm the filled entry's stop-loss order and its modelled take-profit level;
        idempotent. Returns what it saw (the entry's and the stop's status)."""
        now = self._advance()
        o = self.book.orders.get(entry.client_order_id)
        entry_st = self._status(o) if o is not None else None
        sl_cid = stop_cid or derive_client_order_id(entry.client_order_id, "sl")
        if (o is None or o.state != "filled" or o.filled_qty <= 0
                or not (entry.stop_loss or entry.take_profit)):
            return Protection(entry_st)
        if sl_cid in self.book.orders or (o.cid in self.book.protections
                                          and entry.stop_loss is None):
            stop = self.book.orders.get(sl_cid)
            return Protection(entry_st, self._status(stop) if stop is not None else None)
        first_fill = min((f.ts for f in self.book.fills if f.client_order_id == o.cid),
                         default=o.updated_at)
        old = self.book.protections.get(o.cid)
        self.book.protections[o.cid] = Armed(
            entry_cid=o.cid, symbol=o.symbol,
            sl=float(entry.stop_loss) if entry.stop_loss else None,
            tp=float(entry.take_profit) if entry.take_profit else None,
            next_bar=old.next_bar if old is not None else
            floor_time(first_fill, self.stop_tf) + self.step,
            sl_cid=None if sl_cid == derive_client_order_id(o.cid, "sl") else sl_cid)
        stop = None
        if entry.stop_loss:
            stop = self.book.orders[sl_cid] = self._open[sl_cid] = PaperOrder(
                cid=sl_cid, venue_order_id=self._vid(sl_cid), symbol=o.symbol, side="sell",
                type="stop-loss", quantity=o.filled_qty, stop_price=entry.stop_loss,
                placed_at=now, next_minute=now, updated_at=now)
        self._advance(rescan=o.symbol)  # bars that closed already are checked at once
        self._save(now)
        return Protection(entry_st, self._status(stop) if stop is not None else None,
                          ("armed sl",) if stop is not None else ("armed tp",))

    def _save(self, now: datetime) -> None:
        cutoff = now - self.keep_fills  # forget old fills and closed orders (bounded book)
        if self._floor is None or self._floor < cutoff:  # else nothing is old enough
            b = self.book
            b.fills = [f for f in b.fills if f.ts >= cutoff]
            b.orders = {c: o for c, o in b.orders.items()
                        if o.state in OPEN_STATES or o.updated_at >= cutoff}
            self._fmax = running_max([f.ts for f in b.fills])
            self._floor = min([f.ts for f in b.fills] + [o.updated_at for o in b.orders.values()
                                                         if o.state not in OPEN_STATES],
                              default=NEVER)
            self._writer.pruned(b)
        if self._deferred:
            self._unsaved = now
            return
        self._write(now)

    def _write(self, now: datetime) -> None:
        """Hand the store the book as a ``BookText`` (``keep_paper_book``): a store keeping the
        object makes the JSON when read, the warehouse writes it at once."""
        self._raw = BookText(self._writer, self.book)
        self.store.keep_paper_book(self.account, self._raw, now)

    def renew(self) -> bool:
        """Whether this object may serve a new tick as a new object over its store would: no
        ``deferred_saves`` block open and the store still holds the very state (identity) this
        object last read or wrote. On True the "already advanced to now" memo is cleared."""
        if self._deferred or self._unsaved is not None \
                or self.store.paper_book_state(self.account) is not self._raw:
            return False
        self._advanced = self._advanced_raw = None
        return True
