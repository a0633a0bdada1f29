"""``BookMatching``: how the paper venue's book moves forward in time (the fill model of DESIGN §6).

Contract (the base of ``exchange.PaperExchange``, which owns the ``ports.Exchange`` calls, the
protection arming and the saves; see its docstring for the whole venue):
- ``_advance()`` processes every open market/limit order on the closed 1-minute bars since its
  ``next_minute`` and every armed stop on the closed ``stop_timeframe`` bars since its
  ``next_bar``, in time order (at one instant a stop check comes before an order fill), up to
  the clock's now; a change of the book is followed by ``_save(now)``.
- Market orders fill at the bar's open with slippage, limit orders at the open when it is better
  than the limit, else at the limit when the bar trades through it; ``max_volume_fraction`` caps a
  bar's fill; a buy the cash cannot pay is canceled (``insufficient_funds``). Stops follow
  engine/fills.py rule 5 (``fm.stop_exit``): an open beyond a level exits at the open, else SL,
  else TP, at the level with fee and no slippage; a take-profit exit cancels the stop order and
  fills a market sell ``derive_client_order_id(entry, "tp")`` at the level.
- When the position is gone (``_flatten``) its armed stops and pending sells are canceled.
- Fees are the pair's taker rate on the notional (quote currency); venue ids are
  ``P-<hash(account, cid)>``, fill ids ``<venue id>-<n>``.
- Bars are plain tuples: a market with ``candle_rows`` (the sim market) serves them without a
  frame; any other market's ``candles`` frame is converted.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from operator import is_

import polars as pl

from trading_brain.adapters.paper.book import OPEN_STATES, BookWriter, PaperBook, PaperOrder
from trading_brain.domain.instruments import AssetPair
from trading_brain.domain.orders import Fill, OrderState, OrderStatus, derive_client_order_id
from trading_brain.domain.records import money, mul
from trading_brain.domain.timeframes import Timeframe, as_utc, floor_time
from trading_brain.engine import fills as fm
from trading_brain.errors import ConfigError
from trading_brain.ports import Clock, MarketData

MINUTE = timedelta(minutes=1)
NEVER = datetime.max.replace(tzinfo=UTC)


def bar_rows(bars: pl.DataFrame) -> list[tuple]:
    """(ts, open, high, low, close, volume) tuples of a candle frame (no query plan)."""
    if bars.height == 0:
        return []
    return list(zip(*(bars.get_column(c).to_list()
                      for c in ("ts", "open", "high", "low", "close", "volume")), strict=True))


def running_max(stamps: list[datetime]) -> list[datetime]:
    out: list[datetime] = []
    for t in stamps:
        out.append(max(out[-1], t) if out else t)
    return out


def ceil_minute(t: datetime) -> datetime:
    f = floor_time(t, "1m")
    return f if f == t else f + MINUTE


class BookMatching:
    """The book of one account moving forward on the market's bars (see module docstring).

    Subclasses set every attribute below in ``__init__`` and implement ``_save``."""

    market: MarketData
    clock: Clock
    pairs: dict[str, AssetPair]
    account: str
    slippage: float
    quote: str
    stop_tf: Timeframe
    step: timedelta
    max_volume_fraction: float | None
    book: PaperBook
    _open: dict[str, PaperOrder]
    _fmax: list[datetime]
    _floor: datetime | None
    _writer: BookWriter
    _statuses: dict[str, tuple[tuple, OrderStatus]]
    _advanced: datetime | None
    _advanced_raw: object

    def _save(self, now: datetime) -> None:
        raise NotImplementedError

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
            else bar_rows(self.market.candles(sym, tf, start, end))

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
