"""PaperExchange: the DESIGN §6 fill model against a market's bars, persisted in a real
warehouse."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest

from trading_brain.adapters.clock import SimClock
from trading_brain.adapters.duckdb import Store
from trading_brain.adapters.paper.exchange import PaperExchange
from trading_brain.adapters.sim.market import SimMarket
from trading_brain.domain.candles import conform, empty_candles
from trading_brain.domain.orders import OrderRequest, derive_client_order_id
from trading_brain.domain.records import SavedText
from trading_brain.domain.timeframes import delta
from trading_brain.engine import fills as fm
from trading_brain.engine.backtest.exact import Decision, step
from trading_brain.engine.portfolio import Portfolio
from trading_brain.errors import OrderRejected
from trading_brain.ports import Exchange, SavedBook

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SYM = "BTC/USD"
SLIP = 0.0005


class ScriptedMarket:
    """A MarketData over fixed 1-minute bars (5m bars aggregated from them), closed at the clock."""

    name = "scripted"

    def __init__(self, clock: SimClock, minutes: list[tuple[float, float, float, float]],
                 start: datetime = T0, volume: float = 100.0) -> None:
        self.clock = clock
        self.m1 = conform(pl.DataFrame({
            "symbol": SYM, "timeframe": "1m",
            "ts": [start + timedelta(minutes=i) for i in range(len(minutes))],
            "open": [float(b[0]) for b in minutes], "high": [float(b[1]) for b in minutes],
            "low": [float(b[2]) for b in minutes], "close": [float(b[3]) for b in minutes],
            "volume": volume}))
        self.m5 = conform(self.m1.group_by_dynamic("ts", every="5m").agg(
            pl.col("open").first(), pl.col("high").max(), pl.col("low").min(),
            pl.col("close").last(), pl.col("volume").sum()).with_columns(
            symbol=pl.lit(SYM), timeframe=pl.lit("5m")))
        self._pairs = SimMarket([SYM]).asset_pairs([SYM])

    def asset_pairs(self, symbols):
        return self._pairs

    def candles(self, symbol, timeframe, start, end):
        df = self.m1 if timeframe == "1m" else self.m5
        now = self.clock.now()
        out = df.filter((pl.col("ts") >= start) & (pl.col("ts") < end)
                        & (pl.col("ts") + delta(timeframe) <= now))
        return out if out.height else empty_candles()

    def tickers(self, symbols):
        raise NotImplementedError


def flat(price: float, n: int) -> list[tuple[float, float, float, float]]:
    return [(price, price * 1.0001, price * 0.9999, price)] * n


def paper(store: Store, market, clock, **kw) -> PaperExchange:
    pairs = market.asset_pairs([SYM])
    return PaperExchange(market, clock, store, pairs, slippage=SLIP, **kw)


def buy(cid: str = "entry-1", qty: str = "0.01", **kw) -> OrderRequest:
    return OrderRequest(client_order_id=cid, symbol=SYM, side="buy", type="market",
                        quantity=Decimal(qty), **kw)


def test_market_buy_fills_at_next_minute_open_with_slippage_and_fee(store: Store) -> None:
    clock = SimClock(T0 + timedelta(seconds=10))
    market = SimMarket([SYM], seed=5, clock=clock)
    ex = paper(store, market, clock)
    assert isinstance(ex, Exchange)
    ack = ex.place_order(buy())
    assert ack.state == "open"
    clock.set(T0 + timedelta(seconds=110))  # the 12:01 bar has not closed yet
    assert ex.order_by_client_id("entry-1").state == "open"
    assert ex.fills_since(T0) == []
    clock.set(T0 + timedelta(minutes=2))
    (fill,) = ex.fills_since(T0)
    open_ = market.candles(SYM, "1m", T0 + timedelta(minutes=1), T0 + timedelta(minutes=2))
    price = fm.buy_price(open_["open"][0], SLIP)
    assert fill.ts == T0 + timedelta(minutes=1)
    assert float(fill.price) == price
    assert fill.qty == Decimal("0.01")
    assert math.isclose(float(fill.fee), 0.0026 * 0.01 * price, rel_tol=1e-12)
    cash = Decimal(10_000) - fill.qty * fill.price - fill.fee
    assert abs(ex.balances().get("USD") - cash) < Decimal("1e-15")
    assert ex.balances().get("BTC") == Decimal("0.01")
    st = ex.order_by_client_id("entry-1")
    assert st.state == "filled" and st.filled_qty == Decimal("0.01")


def test_order_at_a_bar_open_fills_at_that_open_like_the_backtest(store: Store) -> None:
    clock = SimClock(T0 + timedelta(minutes=5))  # decision at the close of the 12:00 bar
    market = SimMarket([SYM], seed=5, clock=clock)
    ex = paper(store, market, clock)
    ex.place_order(buy())
    clock.set(T0 + timedelta(minutes=6))
    (fill,) = ex.fills_since(T0)
    bar5 = market.candles(SYM, "5m", T0 + timedelta(minutes=5), T0 + timedelta(minutes=10))
    assert fill.ts == T0 + timedelta(minutes=5)
    assert float(fill.price) == fm.buy_price(bar5["open"][0] if bar5.height else
                                             market.price_at(SYM, fill.ts), SLIP)


def _armed(store, minutes, sl=0.05, tp=0.05, start=T0):
    """Buy at the 12:00 open (100), arm SL/TP from the fill; returns (ex, clock, entry fill)."""
    clock = SimClock(start)
    market = ScriptedMarket(clock, minutes, start)
    ex = paper(store, market, clock)
    ex.place_order(buy(qty="1"))
    clock.set(start + timedelta(minutes=1))
    (fill,) = ex.fills_since(start)
    sl_lvl, tp_lvl = fm.stop_levels(float(fill.price), sl, tp)
    armed = ex.reconcile_protective(buy(qty="1", stop_loss=Decimal(repr(sl_lvl)),
                                        take_profit=Decimal(repr(tp_lvl))))
    assert armed.actions == ("armed sl",)  # ONE stop order; the take-profit level is modelled
    assert armed.stop_loss is not None and armed.stop_loss.state == "open"
    assert armed.stop_loss.client_order_id == derive_client_order_id("entry-1", "sl")
    assert ex.order_by_client_id(derive_client_order_id("entry-1", "tp")) is None
    assert [o.order_type for o in ex.open_orders()] == ["stop-loss"]
    return ex, clock, fill, (sl_lvl, tp_lvl)


def test_entry_bar_is_never_checked_and_gap_through_the_stop_exits_at_the_open(store) -> None:
    # entry bar 12:00-12:05 dips far below the stop: ignored (stops arm after the entry bar)
    bars = [(100, 100, 80, 100)] + flat(100, 4) + [(90, 91, 89, 90)] + flat(90, 4)
    ex, clock, fill, (sl, _) = _armed(store, bars)
    clock.set(T0 + timedelta(minutes=9, seconds=59))
    assert len(ex.fills_since(T0)) == 1  # the 12:05 bar has not closed
    clock.set(T0 + timedelta(minutes=10))
    stop = ex.fills_since(T0)[-1]
    assert stop.client_order_id == derive_client_order_id("entry-1", "sl")
    assert (stop.ts, float(stop.price)) == (T0 + timedelta(minutes=5), 90.0)  # the open, not SL
    assert float(stop.price) < sl
    assert math.isclose(float(stop.fee), 0.0026 * 90.0, rel_tol=1e-12)  # fee, no slippage
    assert ex.order_by_client_id(derive_client_order_id("entry-1", "tp")) is None  # never sent
    assert ex.open_orders() == [] and ex.balances().get("BTC") == 0


def test_both_levels_touched_on_one_bar_exits_at_the_stop_loss(store) -> None:
    bars = flat(100, 5) + [(100, 120, 80, 100)] + flat(100, 4)
    ex, clock, fill, (sl, tp) = _armed(store, bars)
    clock.set(T0 + timedelta(minutes=10))
    stop = ex.fills_since(T0)[-1]
    assert stop.client_order_id == derive_client_order_id("entry-1", "sl")
    assert float(stop.price) == sl


def test_take_profit_at_its_level_when_only_the_high_reaches_it(store) -> None:
    bars = flat(100, 5) + flat(100, 5) + [(100, 120, 99.5, 100)] + flat(100, 4)
    ex, clock, fill, (sl, tp) = _armed(store, bars)
    clock.set(T0 + timedelta(minutes=15))
    stop = ex.fills_since(T0)[-1]
    assert stop.client_order_id == derive_client_order_id("entry-1", "tp")
    assert (stop.ts, float(stop.price)) == (T0 + timedelta(minutes=10), tp)
    # what the executor does on Kraken: the stop cancelled, then a market sell of the position
    sl_st = ex.order_by_client_id(derive_client_order_id("entry-1", "sl"))
    tp_st = ex.order_by_client_id(derive_client_order_id("entry-1", "tp"))
    assert (sl_st.state, sl_st.reason, sl_st.filled_qty) == ("canceled", "take_profit", 0)
    assert (tp_st.order_type, tp_st.side, tp_st.state, tp_st.filled_qty) == (
        "market", "sell", "filled", Decimal(1))


def test_stop_on_the_bar_beats_a_pending_sell_which_is_canceled(store) -> None:
    bars = flat(100, 5) + [(100, 100.2, 80, 85)] + flat(85, 4)
    ex, clock, fill, (sl, _) = _armed(store, bars)
    clock.set(T0 + timedelta(minutes=5))  # a signal exit at the 12:05 open
    ex.place_order(OrderRequest(client_order_id="exit-1", symbol=SYM, side="sell",
                                type="market", quantity=Decimal("1")))
    clock.set(T0 + timedelta(minutes=7))  # the 12:05 minute closed, the 5m bar has not
    assert ex.order_by_client_id("exit-1").state == "open"
    clock.set(T0 + timedelta(minutes=10))
    fills = ex.fills_since(T0)
    assert [f.client_order_id for f in fills][1:] == [derive_client_order_id("entry-1", "sl")]
    st = ex.order_by_client_id("exit-1")
    assert (st.state, st.reason, st.filled_qty) == ("canceled", "closed_by_stop", 0)


def test_paper_stops_match_the_exact_engine_on_sim_bars(store) -> None:
    """Same 5m bars, same levels: paper and ``exact.step`` exit on the same bar at the same
    price."""
    start = T0 + timedelta(minutes=5)
    clock = SimClock(start)
    market = SimMarket([SYM], seed=11, clock=clock)
    ex = paper(store, market, clock)
    ex.place_order(buy(qty="0.05"))
    clock.set(start + timedelta(minutes=1))
    (fill,) = ex.fills_since(start)
    sl, tp = 0.004, 0.004
    lv = fm.stop_levels(float(fill.price), sl, tp)
    ex.reconcile_protective(buy(qty="0.05", stop_loss=Decimal(repr(lv[0])),
                                take_profit=Decimal(repr(lv[1]))))
    clock.set(start + timedelta(hours=6))
    paper_exit = ex.fills_since(start)[-1]
    bars = market.candles(SYM, "5m", start, start + timedelta(hours=6))
    pf = Portfolio(cash=10_000.0)
    step(pf, SYM, start, bars["open"][0], bars["high"][0], bars["low"][0],
         Decision("enter", 0.5, sl, tp), 0.0026, SLIP)
    assert pf.positions[SYM].entry_price == float(fill.price)
    for t, o, h, lo in bars.select("ts", "open", "high", "low").iter_rows():
        if t > start and step(pf, SYM, t, o, h, lo, None, 0.0026, SLIP) is not None:
            break
    trade = pf.trades[-1]
    assert (paper_exit.ts, float(paper_exit.price)) == (trade.exit_time, trade.exit_price)
    assert paper_exit.side == "sell"
    legs = {derive_client_order_id("entry-1", "sl"): "stop_loss",
            derive_client_order_id("entry-1", "tp"): "take_profit"}
    assert legs[paper_exit.client_order_id] == trade.exit_reason


def test_refusals_insufficient_funds_and_duplicates(store) -> None:
    clock = SimClock(T0)
    market = ScriptedMarket(clock, flat(100, 10))
    ex = paper(store, market, clock, starting_cash=Decimal(50))
    with pytest.raises(OrderRejected) as e:
        ex.place_order(OrderRequest(client_order_id="s", symbol=SYM, side="sell",
                                    type="market", quantity=Decimal("0.1")))
    assert e.value.reason == "insufficient_funds"
    ex.place_order(buy(qty="1"))  # 100 USD > 50 USD cash: canceled when it would fill
    with pytest.raises(OrderRejected) as e:
        ex.place_order(buy(qty="1"))
    assert e.value.reason == "duplicate_order"
    with pytest.raises(OrderRejected) as e:
        ex.place_order(buy(cid="tiny", qty="0.000000001"))
    assert e.value.reason == "order_minimum"
    clock.set(T0 + timedelta(minutes=2))
    st = ex.order_by_client_id("entry-1")
    assert (st.state, st.reason, st.filled_qty) == ("canceled", "insufficient_funds", 0)
    assert ex.balances().get("USD") == Decimal(50)


def test_partial_fills_follow_bar_volume_and_restart_continues(store) -> None:
    clock = SimClock(T0)
    market = ScriptedMarket(clock, flat(100, 10), volume=4.0)
    ex = paper(store, market, clock, max_volume_fraction=0.25)  # 1 unit per minute bar
    ex.place_order(buy(qty="2.5"))
    clock.set(T0 + timedelta(minutes=1))
    st = ex.order_by_client_id("entry-1")
    assert (st.state, st.filled_qty) == ("partially_filled", Decimal(1))
    again = paper(store, market, clock, max_volume_fraction=0.25)  # restart: same warehouse
    clock.set(T0 + timedelta(minutes=5))
    st = again.order_by_client_id("entry-1")
    assert (st.state, st.filled_qty) == ("filled", Decimal("2.5"))
    fills = again.fills_since(T0)
    assert [f.qty for f in fills] == [Decimal(1), Decimal(1), Decimal("0.5")]
    assert len({f.fill_id for f in fills}) == 3
    assert again.balances().get("BTC") == Decimal("2.5")
    assert again.open_orders() == []


def test_limit_orders_fill_at_the_open_when_better_else_at_the_limit(store) -> None:
    clock = SimClock(T0)
    bars = flat(100, 2) + [(99, 99.5, 95, 96)] + flat(96, 2) + [(90, 91, 89, 90)]
    ex = paper(store, ScriptedMarket(clock, bars), clock)
    ex.place_order(OrderRequest(client_order_id="lim", symbol=SYM, side="buy", type="limit",
                                quantity=Decimal(1), limit_price=Decimal("97")))
    clock.set(T0 + timedelta(minutes=2))
    assert ex.order_by_client_id("lim").state == "open"  # 100 > 97 and the low stayed above
    clock.set(T0 + timedelta(minutes=3))
    (f,) = ex.fills_since(T0)
    assert (f.ts, f.price) == (T0 + timedelta(minutes=2), Decimal("97"))  # traded through it
    ex.place_order(OrderRequest(client_order_id="lim2", symbol=SYM, side="buy", type="limit",
                                quantity=Decimal(1), limit_price=Decimal("92")))
    clock.set(T0 + timedelta(minutes=6))
    g = ex.fills_since(T0)[-1]
    assert g.client_order_id == "lim2"
    assert float(g.price) == fm.buy_price(90.0, SLIP)  # gapped below the limit: the open wins


def test_deferred_saves_write_the_book_once_when_the_block_ends_even_on_error(store) -> None:
    clock = SimClock(T0)
    market = ScriptedMarket(clock, flat(100, 10))
    ex = paper(store, market, clock)
    writes: list[str] = []
    save = store.save_paper_book
    store.save_paper_book = lambda a, s, n: (writes.append(s), save(a, s, n))[1]  # count only
    with pytest.raises(RuntimeError), ex.deferred_saves():
        ex.place_order(buy(cid="a"))
        ex.place_order(buy(cid="b"))
        assert writes == [] and paper(store, market, clock).book.orders == {}
        raise RuntimeError("the tick crashed after two orders")
    assert len(writes) == 1  # once, at the end of the block
    assert set(paper(store, market, clock).book.orders) == {"a", "b"}  # a restart knows both
    ex.place_order(buy(cid="c"))
    assert len(writes) == 2  # outside a block: after every change, as before


class DictStore:
    """A ``ports.PaperBookStore`` making the text at every save (like the warehouse) but
    answering the very state object it holds until the next save (like the memory book), so a
    venue over it is renewed; ``books`` are the texts held."""

    def __init__(self) -> None:
        self.held: dict[str, SavedBook] = {}

    @property
    def books(self) -> dict[str, str]:
        return {a: s.text() for a, s in self.held.items()}

    def load_paper_book(self, account: str) -> str | None:
        held = self.held.get(account)
        return held.text() if held is not None else None

    def save_paper_book(self, account: str, state: str, now: datetime) -> None:
        self.held[account] = SavedText(state)

    def keep_paper_book(self, account: str, state: SavedBook, now: datetime) -> None:
        state.text()  # made now, at the save (a ``BookText`` keeps it)
        self.held[account] = state

    def paper_book_state(self, account: str) -> SavedBook | None:
        return self.held.get(account)


def _script(ex: PaperExchange, k: int, rng) -> list:
    """Tick ``k`` of a random but seeded script: orders, stops, cancels; returns what it saw."""
    seen: list = []
    with ex.deferred_saves():
        for cid in rng.sample([f"e{j}" for j in range(k)], min(k, 2)):
            seen.append(ex.order_by_client_id(cid))
            st = seen[-1]
            if st is not None and st.state == "filled" and rng.random() < 0.7:
                px = float(st.avg_price)
                seen.append(ex.reconcile_protective(buy(
                    cid=cid, stop_loss=Decimal(repr(round(px * 0.999, 1))),
                    take_profit=Decimal(repr(round(px * 1.001, 1))))))
        roll = rng.random()
        if roll < 0.5:
            kind = rng.choice(["market", "limit"])
            seen.append(ex.place_order(OrderRequest(
                client_order_id=f"e{k}", symbol=SYM, side="buy", type=kind,
                quantity=Decimal("0.002"),
                limit_price=Decimal(60_000 + rng.randrange(-900, 900)) if kind == "limit"
                else None)))
        elif roll < 0.7 and ex.balances().get("BTC") > Decimal("0.001"):
            try:
                seen.append(ex.place_order(OrderRequest(
                    client_order_id=f"e{k}", symbol=SYM, side="sell", type="market",
                    quantity=Decimal("0.001"))))
            except OrderRejected as e:
                seen.append(str(e))
        elif roll < 0.8 and (mine := ex.open_orders()):
            seen.append(ex.cancel_order(rng.choice(mine).client_order_id))
        t = T0 + timedelta(minutes=rng.randrange(k + 1))
        seen += [ex.open_orders(), ex.fills_since(t), ex.balances()]
        assert seen[-2] == [f for f in ex.book.fills if f.ts >= t]
    return seen


def test_a_venue_kept_across_ticks_equals_a_new_one_per_tick_and_saves_the_model_json() -> None:
    import random

    from trading_brain.adapters.paper.book import PaperBook

    clock = SimClock(T0 + timedelta(seconds=10))
    market = SimMarket([SYM], seed=3, clock=clock)
    pairs = market.asset_pairs([SYM])
    kept_store, new_store = DictStore(), DictStore()
    kw = {"slippage": SLIP, "keep_fills": timedelta(minutes=40), "max_volume_fraction": 1e-4}
    kept = PaperExchange(market, clock, kept_store, pairs, **kw)
    rng_a, rng_b = random.Random(7), random.Random(7)
    renewed, armed, stops = 0, 0, set()
    for k in range(150):
        clock.set(T0 + timedelta(seconds=10) + k * timedelta(minutes=1, seconds=30))
        renewed += kept.renew()
        a = _script(kept, k, rng_a)
        b = _script(PaperExchange(market, clock, new_store, pairs, **kw), k, rng_b)
        assert a == b, k
        armed += sum(getattr(x, "actions", None) == ("armed sl",) for x in a)
        stops |= {o.cid for o in kept.book.orders.values()  # stop-loss or take-profit sells
                  if not re.fullmatch(r"e\d+", o.cid) and o.state == "filled"}
        assert kept_store.books == new_store.books, k
        raw = kept_store.books["active"]
        assert raw == PaperBook.model_validate_json(raw).model_dump_json()  # byte for byte
    book = PaperBook.model_validate_json(kept_store.books["active"])
    assert renewed == 150 and len(book.fills) > 5 and armed > 3 and len(stops) > 1
    assert min(f.ts for f in book.fills) >= clock.now() - timedelta(minutes=40)  # pruned
    kept_store.save_paper_book("active", raw[:1] + raw[1:], clock.now())  # equal, not same
    assert kept_store.books["active"] == raw and not kept.renew()  # another state object


def test_renew_is_false_over_a_store_answering_copies(store) -> None:
    clock = SimClock(T0)
    market = ScriptedMarket(clock, flat(100, 10))
    ex = paper(store, market, clock)
    assert ex.renew()  # nothing stored yet, nothing written: still the same (empty) state
    ex.place_order(buy())
    assert not ex.renew()  # the warehouse answers a copy: build a new object
    with ex.deferred_saves():
        assert not ex.renew()


def test_the_book_writer_writes_the_model_json_at_every_save() -> None:
    """``BookWriter.dump`` (kept JSON of closed orders, of the open orders and protections whose
    values are the same objects, of the orders after the prefix) equals ``model_dump_json()``
    after every save: orders filled, stops armed, fired and cancelled, holdings moved, prunes."""
    import random

    clock = SimClock(T0 + timedelta(seconds=10))
    market = SimMarket([SYM], seed=5, clock=clock)
    store = DictStore()
    ex = PaperExchange(market, clock, store, market.asset_pairs([SYM]), slippage=SLIP,
                       keep_fills=timedelta(minutes=30), max_volume_fraction=1e-4)
    rng, saves = random.Random(11), 0
    for k in range(160):
        clock.set(T0 + timedelta(seconds=10) + k * timedelta(minutes=1, seconds=10))
        ex.renew()
        _script(ex, k, rng)
        raw = store.books.get("active")
        if raw is not None:
            assert raw == ex.book.model_dump_json(), k
            saves += 1
    assert saves > 100 and ex._writer._tail is not None


def test_the_book_writer_forgets_an_order_put_under_a_held_key() -> None:
    from trading_brain.adapters.paper.book import BookWriter, PaperBook, PaperOrder

    def order(cid: str, state: str, minute: int) -> PaperOrder:
        t = T0 + timedelta(minutes=minute)
        return PaperOrder(cid=cid, venue_order_id=f"P-{cid}", symbol=SYM, side="sell",
                          type="stop-loss", quantity=Decimal("0.5"), stop_price=Decimal("99.5"),
                          placed_at=t, next_minute=t, updated_at=t, state=state)

    book = PaperBook(cash=Decimal("100.5"), holdings={SYM: Decimal("0.5")})
    for i, state in enumerate(["filled", "canceled", "open", "filled", "open"]):
        book.orders[f"o{i}"] = order(f"o{i}", state, i)
    w = BookWriter()
    assert w.dump(book) == book.model_dump_json()
    book.orders["o2"].next_minute += timedelta(minutes=1)  # an open order moves on
    book.orders["o4"].state = "canceled"  # an open order closes
    book.holdings[SYM] = Decimal("0.25")
    book.orders["o5"] = order("o5", "open", 5)
    assert w.dump(book) == book.model_dump_json()
    book.orders["o1"] = order("o1", "open", 9)  # a closed order's key gets a new order
    w.forget("o1")
    assert w.dump(book) == book.model_dump_json()
    book.orders["o3"] = order("o3", "open", 9)  # ... also behind the prefix
    w.forget("o3")
    assert w.dump(book) == book.model_dump_json()


class KeepStore(DictStore):
    """A PaperBookStore keeping the state object saved (``keep_paper_book``, like the memory
    book): the text is made when read."""

    def keep_paper_book(self, account: str, state: SavedBook, now: datetime) -> None:
        self.held[account] = state


@pytest.mark.parametrize("read_every", [1, 7])
def test_a_kept_book_reads_as_the_text_written_at_its_save(read_every: int) -> None:
    import random

    clock = SimClock(T0 + timedelta(seconds=10))
    market = SimMarket([SYM], seed=3, clock=clock)
    pairs = market.asset_pairs([SYM])
    kw = {"slippage": SLIP, "keep_fills": timedelta(minutes=40), "max_volume_fraction": 1e-4}
    lazy, eager = KeepStore(), DictStore()
    a, b = PaperExchange(market, clock, lazy, pairs, **kw), PaperExchange(market, clock, eager,
                                                                            pairs, **kw)
    rng_a, rng_b = random.Random(7), random.Random(7)
    for k in range(120):
        clock.set(T0 + timedelta(seconds=10) + k * timedelta(minutes=1, seconds=30))
        assert a.renew() and b.renew(), k  # the state object held is the one written
        assert _script(a, k, rng_a) == _script(b, k, rng_b), k
        if k % read_every == 0 and "active" in eager.books:
            assert lazy.load_paper_book("active") == eager.books["active"], k
    assert lazy.load_paper_book("active") == eager.books["active"]
    again = PaperExchange(market, clock, lazy, pairs, **kw)  # a new venue reads the text
    assert again.book == a.book and again.renew()


def test_a_kept_book_changed_after_its_save_is_refused() -> None:
    from trading_brain.adapters.paper.book import BookText, BookWriter, PaperBook

    book = PaperBook(cash=Decimal("10"))
    kept = BookText(BookWriter(), book)
    book.cash = Decimal("9")  # changed without a save
    with pytest.raises(RuntimeError):
        kept.text()
    book2 = PaperBook(cash=Decimal("10"))
    assert BookText(BookWriter(), book2).text() == book2.model_dump_json()
