"""The sim market's per-tick fast paths answer exactly what the general paths answer.

``candle_rows`` inside one day slices the day's arrays (``_day_rows``) instead of going through
``PriceProcess.bars``; ``PriceProcess.day`` answers a held day without ``days``' bookkeeping;
``SimMarket`` processes share the daily recursion of their (seed, symbol, character) across the
process; ``tickers`` reuses the quote of an instant asked again. Each must give the very values
(and types) of the general path, on day boundaries too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from trading_brain.adapters.clock import SimClock
from trading_brain.adapters.sim import SimMarket, market
from trading_brain.adapters.sim.market import _day_rows, character
from trading_brain.adapters.sim.process import DAY_MIN, EPOCH, EPOCH_S, PriceProcess

MIDNIGHT = datetime(2025, 6, 2, tzinfo=UTC)


def _general(m: SimMarket, symbol: str, tf: str, start: datetime, end: datetime) -> list[tuple]:
    """``candle_rows`` as the general path computes it (``PriceProcess.bars``)."""
    n = {"1m": 1, "5m": 5, "1h": 60, "1d": DAY_MIN}[tf]
    lo = -(-((start - EPOCH) // timedelta(microseconds=1)) // 60_000_000)
    hi = -(-((end - EPOCH) // timedelta(microseconds=1)) // 60_000_000)
    hi = min(hi, m._now_minute_floor(n))
    if lo >= hi:
        return []
    bars = m._procs[symbol].bars(n, lo, hi)
    stamps = [EPOCH + timedelta(minutes=int(k)) for k in
              ((bars["ts"] // 1_000_000 - EPOCH_S) // 60).tolist()]
    return list(zip(stamps, *(bars[c].tolist() for c in ("open", "high", "low", "close",
                                                        "volume")), strict=True))


@pytest.mark.parametrize("tf", ["1m", "5m", "1h", "1d"])
def test_candle_rows_equal_the_general_path_around_midnight(tf: str, monkeypatch) -> None:
    fast = []
    monkeypatch.setattr(market, "_day_rows", lambda *a: fast.append(a) or _day_rows(*a))
    now = MIDNIGHT + timedelta(days=1, minutes=7, seconds=13)
    m = SimMarket(["BTC/USD", "ETH/USD"], seed=11, clock=SimClock(now))
    offsets = [-1441, -1440, -61, -7, -5, -1, 0, 1, 5, 61, 1439, 1440, 1447]
    seen_one_day = seen_two = 0
    for sym in m.symbols:
        for a in offsets:
            for b in offsets:
                for sec in (0, 30):
                    start = MIDNIGHT + timedelta(minutes=a, seconds=sec)
                    end = MIDNIGHT + timedelta(minutes=b)
                    got = m.candle_rows(sym, tf, start, end)
                    want = _general(m, sym, tf, start, end)
                    assert got == want, (sym, tf, a, b, sec)
                    assert all(type(x) is type(y) and str(x) == str(y)
                               for g, w in zip(got, want, strict=True)
                               for x, y in zip(g, w, strict=True))
                    days = {r[0].date() for r in got}
                    seen_one_day += len(days) == 1
                    seen_two += len(days) > 1
    assert seen_one_day and (seen_two or tf == "1d")  # both paths were taken
    assert len(fast) >= seen_one_day


def test_candle_rows_equal_candles_frame_and_stay_closed_at_now() -> None:
    now = MIDNIGHT + timedelta(hours=3, minutes=2, seconds=59)
    m = SimMarket(["SOL/USD"], seed=5, clock=SimClock(now))
    rows = m.candle_rows("SOL/USD", "5m", now - timedelta(minutes=30), now + timedelta(hours=1))
    frame = m.candles("SOL/USD", "5m", now - timedelta(minutes=30), now + timedelta(hours=1))
    assert [r[0] for r in rows] == frame["ts"].to_list()
    assert [r[1:] for r in rows] == list(zip(*(frame[c].to_list() for c in (
        "open", "high", "low", "close", "volume")), strict=True))
    assert rows[-1][0] + timedelta(minutes=5) <= now < rows[-1][0] + timedelta(minutes=10)


def test_day_fast_path_is_days_and_keeps_the_lru_order() -> None:
    k = (MIDNIGHT - EPOCH).days
    a = PriceProcess(3, "BTC/USD", character("BTC/USD"), cache_days=2)
    b = PriceProcess(3, "BTC/USD", character("BTC/USD"), cache_days=2)
    for d in (k, k + 1, k, k + 2, k + 1, k):  # held and evicted days alike
        x, y = a.day(d), b.days(d, d + 1)[0]
        for c in ("open", "high", "low", "close", "volume"):
            np.testing.assert_array_equal(getattr(x, c), getattr(y, c))
        assert list(a._days) == list(b._days)
    with pytest.raises(ValueError):
        a.day(-1)


def test_shared_daily_recursion_answers_what_an_own_one_does() -> None:
    k = (MIDNIGHT - EPOCH).days
    own = PriceProcess(9, "ETH/USD", character("ETH/USD"))
    first = PriceProcess(9, "ETH/USD", character("ETH/USD"), share_daily=True)
    second = PriceProcess(9, "ETH/USD", character("ETH/USD"), share_daily=True)
    other_seed = PriceProcess(10, "ETH/USD", character("ETH/USD"), share_daily=True)
    assert first._daily is second._daily and first._daily is not other_seed._daily
    assert first._daily is not own._daily
    second.daily(k - 3, k)  # grown through the other process
    for key, value in own.daily(k - 700, k + 5).items():
        np.testing.assert_array_equal(value, first.daily(k - 700, k + 5)[key], err_msg=key)
    a, b = own.bars(5, k * DAY_MIN - 30, k * DAY_MIN + 30), first.bars(5, k * DAY_MIN - 30,
                                                                         k * DAY_MIN + 30)
    for c in a:
        np.testing.assert_array_equal(a[c], b[c], err_msg=c)
    assert not np.array_equal(other_seed.day(k).close, first.day(k).close)


def test_tickers_reuse_a_quote_only_at_the_same_instant() -> None:
    clock = SimClock(MIDNIGHT + timedelta(minutes=3, seconds=5))
    m = SimMarket(["BTC/USD", "DOGE/USD"], seed=2, clock=clock)
    for step in (0, 0, 20, 60, 60, 61):
        clock.set(max(clock.now(), MIDNIGHT + timedelta(minutes=3, seconds=5 + step)))
        fresh = SimMarket(["BTC/USD", "DOGE/USD"], seed=2, clock=clock)
        assert m.tickers(["BTC/USD", "doge-usd"]) == fresh.tickers(["BTC/USD", "DOGE/USD"])
        assert m.tickers(["DOGE/USD"])["DOGE/USD"].ts == clock.now()
