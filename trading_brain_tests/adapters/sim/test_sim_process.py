"""The price process: determinism, OHLC validity, and the statistical character of the paths."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from trading_brain.adapters.sim.market import character
from trading_brain.adapters.sim.process import DAY_MIN, EPOCH, RANGE, PriceProcess
from trading_brain.domain.instruments import DEFAULT_SYMBOLS

K = (datetime(2025, 6, 1, tzinfo=UTC) - EPOCH).days  # a day index well after EPOCH
COLS = ("ts", "open", "high", "low", "close", "volume")


def proc(seed: int = 7, symbol: str = "BTC/USD", cache_days: int = 32) -> PriceProcess:
    return PriceProcess(seed, symbol, character(symbol), cache_days=cache_days)


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    for c in COLS:
        np.testing.assert_array_equal(a[c], b[c], err_msg=c)


def acf(x: np.ndarray, lag: int = 1) -> float:
    x = x - x.mean()
    return float((x[:-lag] * x[lag:]).sum() / (x * x).sum())


def test_any_window_is_a_slice_of_the_whole_whatever_the_order_and_cache() -> None:
    whole = proc().bars(1, K * DAY_MIN, (K + 3) * DAY_MIN)
    tiny_cache = proc(cache_days=1)  # every day is evicted and regenerated
    rng = np.random.default_rng(0)
    windows = sorted(rng.integers(0, 3 * DAY_MIN, size=(12, 2)).tolist(), reverse=True)
    for a, b in windows:
        lo, hi = min(a, b), max(a, b) + 1
        part = tiny_cache.bars(1, K * DAY_MIN + lo, K * DAY_MIN + hi)
        assert_same(part, {c: v[lo:hi] for c, v in whole.items()})


def test_daily_state_does_not_depend_on_how_far_it_was_grown() -> None:
    direct = proc()
    direct_state = direct.daily(3000, 3010)
    stepwise = proc()
    for k in range(0, 3010, 700):  # grows block by block before reaching day 3000
        stepwise.daily(k, k + 1)
    for key, value in stepwise.daily(3000, 3010).items():
        np.testing.assert_array_equal(value, direct_state[key], err_msg=key)


def test_fresh_instances_agree_and_seeds_and_symbols_differ() -> None:
    window = (K * DAY_MIN + 600, K * DAY_MIN + 900)
    a, b = proc(7).bars(5, *window), proc(7).bars(5, *window)
    assert_same(a, b)
    other_seed = proc(8).bars(5, *window)
    assert not np.array_equal(a["close"], other_seed["close"])
    eth = proc(7, "ETH/USD").bars(5, *window)
    r_btc, r_eth = np.diff(np.log(a["close"])), np.diff(np.log(eth["close"]))
    assert abs(np.corrcoef(r_btc, r_eth)[0, 1]) < 0.5  # independent streams, not rescaled copies


def test_bars_open_on_the_grid_and_empty_windows_are_empty() -> None:
    p = proc()
    for n in (1, 5, 60, 1440):
        out = p.bars(n, K * DAY_MIN + 7, K * DAY_MIN + 2 * DAY_MIN + 7)
        minutes = out["ts"] // 60_000_000 - int(EPOCH.timestamp()) // 60
        assert (minutes % n == 0).all() and (np.diff(minutes) == n).all()
        assert minutes[0] >= K * DAY_MIN + 7 and minutes[-1] < K * DAY_MIN + 2 * DAY_MIN + 7
    assert p.bars(5, 100, 100)["ts"].size == 0
    assert p.bars(5, 101, 104)["ts"].size == 0  # no 5m bar opens inside [101, 104)
    assert p.bars(60, -10 * DAY_MIN, 0)["ts"].size == 0  # nothing before EPOCH
    assert p.bars(60, -10 * DAY_MIN, 120)["ts"].size == 2


@pytest.mark.parametrize("symbol", [*DEFAULT_SYMBOLS, "PEPE/USD", "WBTC/EUR"])
def test_half_a_year_of_minutes_is_valid_positive_and_on_the_price_grid(symbol: str) -> None:
    p = proc(11, symbol, cache_days=2)
    out = p.bars(1, (K - 90) * DAY_MIN, (K + 90) * DAY_MIN)
    o, h, lo, c, v = (out[k] for k in COLS[1:])
    for arr in (o, h, lo, c, v):
        assert np.isfinite(arr).all()
    assert (lo > 0).all() and (v > 0).all()
    assert (lo <= np.minimum(o, c)).all() and (h >= np.maximum(o, c)).all()
    np.testing.assert_array_equal(
        o[1:], c[:-1]
    )  # a continuous path: each minute opens at the last close
    scaled = c * 10.0**p.char.decimals
    assert np.abs(scaled - np.round(scaled)).max() < 1e-6
    assert 0.3 < (h > np.maximum(o, c)).mean() < 1.0  # wicks exist but are not forced everywhere


@pytest.mark.parametrize("symbol", DEFAULT_SYMBOLS)
def test_daily_levels_stay_finite_positive_and_near_the_anchor_for_decades(symbol: str) -> None:
    p = proc(3, symbol)
    state = p.daily(0, 365 * 25)
    level = np.exp(state["log_close"])
    assert np.isfinite(level).all() and (level > 0).all()
    ratio = level / p.char.anchor
    assert ratio.min() > 1 / 100 and ratio.max() < 100, (ratio.min(), ratio.max())
    daily_sd = np.diff(state["log_close"]).std()
    assert 0.6 * p.char.daily_vol < daily_sd < 2.0 * p.char.daily_vol


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_returns_show_volatility_clustering(seed: int) -> None:
    p = proc(seed, "SOL/USD", cache_days=2)
    r5 = np.diff(np.log(p.bars(5, K * DAY_MIN, (K + 60) * DAY_MIN)["close"]))
    assert acf(np.abs(r5)) > abs(acf(r5)) + 0.05
    rd = np.diff(p.daily(0, 3000)["log_close"])
    abs_acf = np.mean([acf(np.abs(rd), lag) for lag in range(1, 6)])
    raw_acf = np.mean([abs(acf(rd, lag)) for lag in range(1, 6)])
    assert abs_acf > raw_acf + 0.03, (abs_acf, raw_acf)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_year_has_trending_and_ranging_stretches_that_trade_differently(seed: int) -> None:
    p = proc(seed, "ETH/USD", cache_days=2)
    regime = p.daily(K, K + 365)["regime"]
    runs = _runs(regime)
    assert max((n for r, n in runs if r == RANGE), default=0) >= 10
    assert max((n for r, n in runs if r != RANGE), default=0) >= 10
    hours = np.log(p.bars(60, K * DAY_MIN, (K + 365) * DAY_MIN)["close"]).reshape(-1, 24)
    steps = np.diff(hours, axis=1)
    efficiency = np.abs(hours[:, -1] - hours[:, 0]) / np.abs(steps).sum(axis=1)
    trend, rng_ = regime != RANGE, regime == RANGE
    assert efficiency[trend].mean() > efficiency[rng_].mean() + 0.05
    # momentum pays more on trend days than on range days (hour-to-hour return autocorrelation)
    lag = (steps[:, :-1] * steps[:, 1:]).sum(axis=1) / (steps**2).sum(axis=1)
    assert lag[trend].mean() > lag[rng_].mean() + 0.03
    # at the daily scale: a trend run moves the price much further than a range run of the same
    # length
    log_close = p.daily(K - 1, K + 365)["log_close"]
    start, moved = 0, {True: [], False: []}
    for r, n in runs:
        if n >= 5:
            move = abs(log_close[start + n] - log_close[start]) / (p.char.daily_vol * math.sqrt(n))
            moved[r != RANGE].append(move)
        start += n
    assert np.mean(moved[True]) > 1.5 * np.mean(moved[False]), moved


def test_jumps_are_rare_and_large() -> None:
    state = proc(5, "DOGE/USD").daily(0, 3650)
    jumps = state["jump"] != 0
    assert 0.005 < jumps.mean() < 0.05
    r = np.abs(np.diff(np.concatenate([[math.log(0.15)], state["log_close"]])))
    assert r[jumps].mean() > 2 * r[~jumps].mean()


def test_volume_follows_the_clock_and_the_calendar() -> None:
    p = proc(9, "BTC/USD", cache_days=2)
    k0 = K - K % 7  # 28 whole days
    vol = p.bars(1, k0 * DAY_MIN, (k0 + 28) * DAY_MIN)["volume"].reshape(28, 24, 60)
    by_hour = vol.sum(axis=2).mean(axis=0)
    assert by_hour[13:17].mean() > 1.3 * by_hour[1:5].mean()
    daily = vol.sum(axis=(1, 2))
    weekend = np.array([(k + 3) % 7 >= 5 for k in range(k0, k0 + 28)])
    assert daily[~weekend].mean() > daily[weekend].mean()
    typical = p.char.daily_volume
    assert 0.3 * typical < np.median(daily) < 3 * typical


def test_unknown_symbols_get_a_stable_hash_derived_character() -> None:
    a, b = character("FOO/USD"), character("FOO/USD")
    assert a == b and a != character("BAR/USD")
    assert 0.01 <= a.anchor <= 10_000 and 0.03 <= a.daily_vol <= 0.07
    assert 0 <= a.decimals <= 8 and a.daily_volume > 0
    assert character("BTC/USD").anchor == 60_000.0


def test_negative_seed_and_days_before_epoch_are_refused() -> None:
    with pytest.raises(ValueError, match="seed"):
        PriceProcess(-1, "BTC/USD", character("BTC/USD"))
    with pytest.raises(ValueError, match="EPOCH"):
        proc().day(-1)


def _runs(labels: np.ndarray) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for x in labels.tolist():
        if out and out[-1][0] == x:
            out[-1] = (x, out[-1][1] + 1)
        else:
            out.append((x, 1))
    return out


def test_a_day_is_the_same_alone_or_inside_any_batch() -> None:
    batched = proc(cache_days=200).days(K - 70, K + 5)  # generated as one 75-day batch
    for k in (K - 70, K - 7, K, K + 4):
        alone = proc(cache_days=1).day(k)
        inside = batched[k - (K - 70)]
        for field in ("open", "high", "low", "close", "volume"):
            np.testing.assert_array_equal(getattr(alone, field), getattr(inside, field))
