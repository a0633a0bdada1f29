"""``PaperExchange``: the paper venue, the fill model of DESIGN §6 against a market's own bars.

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

import hashlib
import math
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from operator import is_

import polars as pl

from trading_brain.adapters.paper.book import (
    OPEN_STATES,
    BookText,
    BookWriter,
    PaperBook,
    PaperOrder,
)
from trading_brain.adapters.paper.book import Protection as Armed
from trading_brain.domain.instruments import AssetPair
from trading_brain.domain.orders import (
    Balance,
    Fill,
    OrderAck,
    OrderRequest,
    OrderState,
    OrderStatus,
    derive_client_order_id,
)
from trading_brain.domain.records import money, mul
from trading_brain.domain.timeframes import Timeframe, as_utc, delta, floor_time
from trading_brain.engine import fills as fm
from trading_brain.engine.executor.protective import Protection
from trading_brain.errors import ConfigError, OrderRejected
from trading_brain.ports import Clock, MarketData, PaperBookStore, SavedBook

MINUTE = timedelta(minutes=1)
_NEVER = datetime.max.replace(tzinfo=UTC)


def _rows(bars: pl.DataFrame) -> list[tuple]:
    """(ts, open, high, low, close, volume) tuples of a candle frame (no query plan)."""
    if bars.height == 0:
        return []
    return list(zip(*(bars.get_column(c).to_list()
                      for c in ("ts", "open", "high", "low", "close", "volume")), strict=True))


def _running_max(stamps: list[datetime]) -> list[datetime]:
    out: list[datetime] = []
    for t in stamps:
        out.append(max(out[-1], t) if out else t)
    return out


def ceil_minute(t: datetime) -> datetime:
    f = floor_time(t, "1m")
    return f if f == t else f + MINUTE


class PaperExchange:
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
        self._fmax = _running_max([f.ts for f in self.book.fills])  # for ``fills_since``
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

    # ---- the book moving forward ---------------------------------------------------------
    def _advance(self, rescan: str | None = None) -> datetime:
        """Process every order and armed stop up to now (``rescan``: only that symbol, again)."""
        raw = self.clock.now()
        advanced = self._advanced
        if raw is self._advanced_raw and rescan is None and advanced is not None:
            return advanced  # the very instant of the last call
        now = as_utc(raw)
        if self._advanced == now and rescan is None:
            self._advanced_raw = raw
            return now
        events: list[tuple[datetime, int, str, str, tuple[float, float, float, float, float]]] = []
        active = {o.symbol for o in self._open.values()}
        if self.book.protections:  # a modelled take-profit has no open order
            active.update(p.symbol for p in self.book.protections.values())
        floor = floor_time(now, self.stop_tf) if self.book.protections else now
        for sym in sorted(active if rescan is None else active & {rescan}):
            events += self._events(sym, now, floor)
        changed = False
        for ts, prio, _, key, bar in sorted(events, key=lambda e: e[:4]):
            if prio == 0:
                changed |= self._check_stop(key, ts, bar)
            else:
                changed |= self._fill(self.book.orders[key], ts, bar)
        self._advanced, self._advanced_raw = now, raw
        if changed:
            self._save(now)
        return now

    def _events(self, sym: str, now: datetime, floor: datetime) -> list:
        """``floor``: ``floor_time(now, stop_timeframe)`` (when any stop is armed)."""
        prot = [p for p in self.book.protections.values() if p.symbol == sym]
        orders = [o for o in self._open.values()
                  if o.symbol == sym and o.type in ("market", "limit")]
        horizon = floor if prot else now
        out: list = []
        for p in prot:  # no bar opening in [next_bar, horizon) can exist: no need to ask
            if p.next_bar < horizon:
                out += [(t, 0, sym, p.entry_cid, (o, h, lo, c, v)) for t, o, h, lo, c, v
                        in self._bars(sym, self.stop_tf, p.next_bar, horizon)]
        start = min((o.next_minute for o in orders), default=now)
        if orders and start < horizon and start + MINUTE <= now:  # else no closed bar yet
            bars = self._bars(sym, "1m", start, horizon)
            for o in orders:
                out += [(t, 1, sym, o.cid, (op, h, lo, c, v)) for t, op, h, lo, c, v in bars
                        if t >= o.next_minute]
        return out

    def _bars(self, sym: str, tf: Timeframe, start: datetime, end: datetime) -> list[tuple]:
        rows = getattr(self.market, "candle_rows", None)
        return rows(sym, tf, start, end) if rows is not None \
            else _rows(self.market.candles(sym, tf, start, end))

    def _check_stop(self, entry_cid: str, ts: datetime, bar: tuple) -> bool:
        p = self.book.protections.get(entry_cid)
        if p is None or ts < p.next_bar:
            return False
        o, h, lo = bar[0], bar[1], bar[2]
        nan = math.nan
        hit = fm.stop_exit(o, h, lo, p.sl if p.sl is not None else nan,
                           p.tp if p.tp is not None else nan)
        p.next_bar = ts + self.step
        if hit is None:
            return True
        stop = self.book.orders.get(p.sl_cid or derive_client_order_id(entry_cid, "sl"))
        price, held = Decimal(repr(float(hit[0]))), self.book.holdings.get(p.symbol, Decimal(0))
        order: PaperOrder | None = None
        if hit[1] == "stop_loss" and stop is not None:
            order = stop
        elif held > 0:  # the take-profit exit: the stop canceled, a market sell at the level
            if stop is not None and stop.state in OPEN_STATES:
                self._close(stop, "canceled", "take_profit", ts)
            cid = derive_client_order_id(entry_cid, "tp")
            if cid in self.book.orders:  # an older take-profit of this entry: kept JSON is stale
                self._writer.forget(cid)
            order = self.book.orders[cid] = self._open[cid] = PaperOrder(
                cid=cid, venue_order_id=self._vid(cid), symbol=p.symbol, side="sell",
                type="market", quantity=held, placed_at=ts, next_minute=ts, updated_at=ts)
        qty = min(order.quantity, held) if order is not None else Decimal(0)
        if order is not None and qty > 0:
            self._execute(order, qty, price, ts)
        self._flatten(p.symbol, ts, "closed_by_stop")
        return True

    def _fill(self, o: PaperOrder, ts: datetime, bar: tuple) -> bool:
        if o.state not in OPEN_STATES or ts < o.next_minute:
            return False
        o.next_minute = ts + MINUTE
        price = self._price(o, bar)
        if price is None:
            return True
        qty = o.quantity - o.filled_qty
        if self.max_volume_fraction is not None:
            cap = self._pair(o.symbol).round_qty(Decimal(repr(bar[4] * self.max_volume_fraction)))
            qty = min(qty, cap)
        if o.side == "sell":
            qty = min(qty, self.book.holdings.get(o.symbol, Decimal(0)))
        if qty <= 0:
            return True
        if o.side == "buy":
            cost = mul(qty, price)
            if cost + self._fee(o.symbol, cost) > self.book.cash:
                self._close(o, "canceled", "insufficient_funds", ts)
                return True
        self._execute(o, qty, price, ts)
        if o.side == "sell" and self.book.holdings.get(o.symbol, Decimal(0)) <= 0:
            self._flatten(o.symbol, ts, "position_closed")
        return True

    def _price(self, o: PaperOrder, bar: tuple) -> Decimal | None:
        op, h, lo = bar[0], bar[1], bar[2]
        px = (fm.buy_price(op, self.slippage) if o.side == "buy"
              else fm.sell_price(op, self.slippage))
        if o.type == "market":
            return Decimal(repr(px))
        lim = float(o.limit_price or 0)
        if (o.side == "buy" and px <= lim) or (o.side == "sell" and px >= lim):
            return Decimal(repr(px))
        if (o.side == "buy" and lo <= lim) or (o.side == "sell" and h >= lim):
            return o.limit_price
        return None

    def _execute(self, o: PaperOrder, qty: Decimal, price: Decimal, ts: datetime) -> None:
        notional = mul(qty, price)
        fee = self._fee(o.symbol, notional)
        sign = -1 if o.side == "buy" else 1
        self.book.cash = money(self.book.cash + sign * notional - fee)
        held = self.book.holdings.get(o.symbol, Decimal(0))
        self.book.holdings[o.symbol] = held - sign * qty
        o.fills += 1
        o.filled_qty += qty
        o.value, o.fee = o.value + notional, o.fee + fee
        o.state = "filled" if o.filled_qty >= o.quantity else "partially_filled"
        o.updated_at = ts
        if o.state == "filled":
            self._closed(o)
        self.book.fills.append(Fill(
            fill_id=f"{o.venue_order_id}-{o.fills}", client_order_id=o.cid,
            venue_order_id=o.venue_order_id, symbol=o.symbol, side=o.side, qty=qty, price=price,
            fee=fee, fee_currency=self.quote, ts=ts))
        self._fmax.append(max(self._fmax[-1], ts) if self._fmax else ts)
        self._floor = min(self._floor, ts) if self._floor is not None else None

    def _flatten(self, symbol: str, ts: datetime, reason: str) -> None:
        """The position is gone: cancel its stops and any pending sell of the symbol."""
        for p in [p for p in self.book.protections.values() if p.symbol == symbol]:
            del self.book.protections[p.entry_cid]
        for o in list(self._open.values()):
            if o.symbol == symbol and o.side == "sell":
                self._close(o, "canceled", reason, ts)

    # ---- helpers -------------------------------------------------------------------------
    def _close(self, o: PaperOrder, state: OrderState, reason: str, ts: datetime) -> None:
        o.state, o.reason, o.updated_at = state, reason, ts
        self._closed(o)

    def _closed(self, o: PaperOrder) -> None:
        """``o`` reached a final state (it never changes again): out of the open index."""
        self._open.pop(o.cid, None)
        self._statuses.pop(o.cid, None)
        self._floor = min(self._floor, o.updated_at) if self._floor is not None else None

    def _free(self, symbol: str) -> Decimal:
        held = self.book.holdings.get(symbol, Decimal(0))
        selling = sum((o.quantity - o.filled_qty for o in self._open.values()
                       if o.symbol == symbol and o.side == "sell"
                       and o.type in ("market", "limit")), Decimal(0))
        return held - selling

    def _fee(self, symbol: str, notional: Decimal) -> Decimal:
        return mul(notional, Decimal(repr(self._pair(symbol).fee_taker)))

    def _pair(self, symbol: str) -> AssetPair:
        if symbol not in self.pairs:
            raise ConfigError(f"paper venue has no pair metadata for {symbol!r}")
        return self.pairs[symbol]

    def _vid(self, cid: str) -> str:
        return "P-" + hashlib.sha256(f"{self.account}|{cid}".encode()).hexdigest()[:16]

    def _entry_of(self, o: PaperOrder) -> str:
        """The entry whose armed stop ``o`` is ("" for any other order)."""
        return next((e for e, p in self.book.protections.items()
                     if o.cid == (p.sl_cid or derive_client_order_id(e, "sl"))), "")

    def _status(self, o: PaperOrder) -> OrderStatus:
        """The order's status; the last one built per order is reused while every field it is
        built from is the very same (immutable) object: an ``OrderStatus`` is frozen and a pure
        function of those fields, so a reused one can never be stale."""
        fields = (o.cid, o.venue_order_id, o.symbol, o.side, o.type, o.quantity, o.state,
                  o.filled_qty, o.value, o.fee, o.limit_price, o.stop_price, o.reason,
                  o.updated_at)
        kept = self._statuses.get(o.cid)
        if kept is not None and all(map(is_, kept[0], fields)):  # same length: same fields
            return kept[1]
        avg = (o.value / o.filled_qty) if o.filled_qty > 0 else None
        st = OrderStatus(client_order_id=o.cid, venue_order_id=o.venue_order_id,
                         symbol=o.symbol, side=o.side, order_type=o.type, quantity=o.quantity,
                         state=o.state, filled_qty=o.filled_qty, avg_price=avg, fee=o.fee,
                         limit_price=o.limit_price, stop_price=o.stop_price, reason=o.reason,
                         updated_at=o.updated_at)
        if o.cid in self._open:  # ``_closed`` drops it: the memo holds open orders only
            self._statuses[o.cid] = (fields, st)
        return st

    def _save(self, now: datetime) -> None:
        cutoff = now - self.keep_fills  # forget old fills and closed orders (bounded book)
        if self._floor is None or self._floor < cutoff:  # else nothing is old enough
            b = self.book
            b.fills = [f for f in b.fills if f.ts >= cutoff]
            b.orders = {c: o for c, o in b.orders.items()
                        if o.state in OPEN_STATES or o.updated_at >= cutoff}
            self._fmax = _running_max([f.ts for f in b.fills])
            self._floor = min([f.ts for f in b.fills] + [o.updated_at for o in b.orders.values()
                                                         if o.state not in OPEN_STATES],
                              default=_NEVER)
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
