"""Every shipped strategy: contract, look-ahead and warm-up checks and real trades on Binance 5m
data."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import polars as pl
import pytest

from trading_brain.app.research.strategy_files import InProcessStrategy, find_strategies
from trading_brain.engine.lookahead import check_lookahead, check_warmup
from trading_brain_tests.conftest import require_shared

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / ".." / "shared" / "data" / "candles"
SHIPPED = find_strategies()


@cache
def btc_5m() -> pl.DataFrame:
    path = DATA / "binance_BTCUSDT_5m_2024H1.csv.gz"
    require_shared(path)
    return pl.read_csv(path).select(
        pl.col("timestamp").str.to_datetime(time_zone="UTC").cast(pl.Datetime("us", "UTC"))
        .alias("ts"),
        "open", "high", "low", "close", "volume",
    )  # fmt: skip


def round_trips(actions: list[str]) -> int:
    """Completed long trades when entering only while flat and leaving on an exit signal."""
    flat, done = True, 0
    for a in actions:
        if flat and a == "enter":
            flat = False
        elif not flat and a == "exit":
            flat, done = True, done + 1
    return done


def test_the_three_families_are_shipped() -> None:
    assert {r.strategy_id for r in SHIPPED} >= {"ema_cross", "ema_rsi_volume", "trend_pullback"}


@pytest.mark.parametrize("ref", SHIPPED, ids=lambda r: f"{r.strategy_id}_v{r.version}")
def test_passes_lookahead_and_warmup_on_real_btc(ref) -> None:
    src = InProcessStrategy(ref.path)
    window = btc_5m().slice(20_000, src.warmup_bars + 2_500)  # starts mid-history, mid-hour safe
    la = check_lookahead(src, window, cut_points=20)
    assert la.passed, la.summary()
    wu = check_warmup(src, window, src.warmup_bars, samples=20)
    assert wu.passed, wu.summary()


EXTREMES = {
    "ema_cross": {"fast": 50, "slow": 100},
    "ema_rsi_volume": {"fast": 30, "slow": 60},
    "trend_pullback": {"trend_len": 100, "fast_len": 50, "atr_len": 30},
}


@pytest.mark.parametrize("sid", sorted(EXTREMES))
def test_warmup_holds_at_the_longest_lookbacks_of_the_space(sid: str) -> None:
    ref = next(r for r in SHIPPED if r.strategy_id == sid)
    src = InProcessStrategy(ref.path, EXTREMES[sid])
    window = btc_5m().slice(30_000, src.warmup_bars + 2_000)
    report = check_warmup(src, window, src.warmup_bars, samples=15)
    assert report.passed, report.summary()


@pytest.mark.parametrize("ref", SHIPPED, ids=lambda r: f"{r.strategy_id}_v{r.version}")
def test_trades_on_the_full_half_year_and_is_deterministic(ref) -> None:
    src = InProcessStrategy(ref.path)
    bars = btc_5m()
    out = src.generate(bars)
    assert out.height == bars.height
    actions = out["action"].to_list()
    trades = round_trips(actions)
    assert 20 <= trades <= 5_000, f"{ref.strategy_id}: {trades} round trips"
    entries = out.filter(pl.col("action") == "enter")
    assert entries["size"].min() > 0 and entries["stop_loss"].null_count() == 0
    assert out.equals(src.generate(bars))


def test_window_starting_mid_hour_matches_full_history_for_trend_pullback() -> None:
    ref = next(r for r in SHIPPED if r.strategy_id == "trend_pullback")
    src = InProcessStrategy(ref.path)
    bars = btc_5m().slice(0, 6_000)
    full = src.generate(bars)
    for start in (12 * 170 + 5, 12 * 200 + 11):  # 25 and 55 minutes into an hour
        window = src.generate(bars.slice(start, 3_000))
        same = full.slice(start, 3_000)
        # the partial first hour is dropped, so every hourly ATR stop the window has is exact
        ready = window["stop_loss"].is_not_null()
        assert ready.sum() > 2_500
        for col in ("stop_loss", "take_profit"):
            assert window.filter(ready)[col].equals(same.filter(ready)[col]), col
        assert window.tail(500).equals(same.tail(500))
