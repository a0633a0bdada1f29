"""engine/lookahead.py: the look-ahead and warm-up checks catch what they must, and only that."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trading_brain.app.research.strategy_files import InProcessStrategy
from trading_brain.domain.strategy import validate_signals
from trading_brain.engine.lookahead import (
    check_lookahead,
    check_warmup,
    first_difference,
    lookahead_cuts,
)
from trading_brain.errors import DataError, StrategyError
from trading_brain.ports import SignalSource

ROOT = Path(__file__).resolve().parents[2]
BIASED = ROOT / "trading_brain_tests" / "fixtures" / "strategies" / "lookahead_biased.py"
EMA_CROSS = ROOT / "strategies" / "ema_cross" / "v1.py"


def bars(n: int = 1500, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    start = pl.datetime(2024, 1, 1, time_zone="UTC")
    ts = pl.datetime_range(start, start + pl.duration(minutes=5 * (n - 1)), "5m", eager=True)
    return pl.DataFrame({
        "ts": ts.cast(pl.Datetime("us", "UTC")), "open": close, "high": close * 1.001,
        "low": close * 0.999, "close": close, "volume": rng.uniform(1, 10, n),
    })  # fmt: skip


class FnSource:
    """A SignalSource from a plain function of the bars (test double with the real validation)."""

    strategy_id, version, warmup_bars = "fn", 1, 100

    def __init__(self, fn: Callable[[pl.DataFrame], pl.DataFrame]) -> None:
        self.fn = fn

    def generate(self, bars: pl.DataFrame, params: dict | None = None) -> pl.DataFrame:
        return validate_signals(self.fn(bars), bars)

    def generate_many(self, frames, params=None):
        return {s: self.generate(b, params) for s, b in frames.items()}

    def close(self) -> None:
        pass


def signals(bars: pl.DataFrame, enter: pl.Expr, confidence: pl.Expr | float = 0.5) -> pl.DataFrame:
    return bars.with_columns(
        pl.when(enter.fill_null(False)).then(pl.lit("enter")).otherwise(pl.lit("hold")).alias("action"),
        pl.lit(0.1).alias("size"), pl.lit(None, pl.Float64).alias("stop_loss"),
        pl.lit(None, pl.Float64).alias("take_profit"), pl.lit("day").alias("intent"),
        (confidence if isinstance(confidence, pl.Expr) else pl.lit(confidence)).alias("confidence"),
    ).select("action", "size", "stop_loss", "take_profit", "intent", "confidence")  # fmt: skip


def test_fn_source_is_a_signal_source() -> None:
    assert isinstance(FnSource(lambda b: b), SignalSource)


def test_biased_fixture_fails_with_first_differing_bar() -> None:
    src = InProcessStrategy(BIASED)
    data = bars()
    report = check_lookahead(src, data, cut_points=30)
    assert not report.passed and report.error is None
    first = report.first
    assert first is not None and first.column == "action"
    # shift(-3): only the last 3 rows of a truncated history can change
    assert first.cut - 3 <= first.bar < first.cut
    assert first.ts == data["ts"][first.bar]
    assert first.full != first.truncated
    assert all(d.cut - 3 <= d.bar < d.cut for d in report.failures)
    assert f"bar {first.bar}" in report.summary()
    meta = report.to_metadata()
    assert meta["passed"] is False and meta["first_bar"] == first.bar


def test_future_max_is_caught_but_causal_max_is_not() -> None:
    data = bars(800)
    future_max = FnSource(
        lambda b: signals(b, pl.col("close") >= pl.col("close").reverse().cum_max().reverse())
    )
    causal_max = FnSource(lambda b: signals(b, pl.col("close") >= pl.col("close").cum_max()))
    assert not check_lookahead(future_max, data).passed
    assert check_lookahead(causal_max, data).passed


def test_reference_strategy_passes_both_checks() -> None:
    src = InProcessStrategy(EMA_CROSS)
    data = bars(3000)
    la = check_lookahead(src, data, cut_points=20)
    assert la.passed, la.summary()
    assert la.rows_compared == sum(la.points) and len(la.points) == 20
    wu = check_warmup(src, data, src.warmup_bars, samples=10)
    assert wu.passed, wu.summary()
    assert wu.points[0] == src.warmup_bars and wu.points[-1] == data.height - 1


def test_infinite_memory_without_convergence_fails_warmup() -> None:
    # enter on a new all-time high: causal, but it depends on the whole history
    src = FnSource(lambda b: signals(b, pl.col("close") >= pl.col("close").cum_max()))
    data = bars(2000)
    assert check_lookahead(src, data).passed
    report = check_warmup(src, data, warmup_bars=100, samples=40)
    assert not report.passed
    first = report.first
    assert first is not None and first.column == "action" and first.bar == first.cut


def test_float_tolerance_forgives_rounding_not_real_drift() -> None:
    def drifting(eps: float) -> FnSource:
        # confidence depends (very slightly) on how much history was passed in
        return FnSource(lambda b: signals(b, pl.lit(False), 0.5 + eps * b.height))

    data = bars(600)
    assert check_lookahead(drifting(1e-14), data).passed
    report = check_lookahead(drifting(1e-6), data)
    assert not report.passed and report.first is not None
    assert report.first.column == "confidence" and report.first.bar == 0


def test_strategy_error_on_short_history_is_reported() -> None:
    def picky(b: pl.DataFrame) -> pl.DataFrame:
        if b.height < 300:
            raise StrategyError("needs 300 bars")
        return signals(b, pl.lit(False))

    report = check_lookahead(FnSource(picky), bars(1000), cut_points=10)
    assert not report.passed and "needs 300 bars" in (report.error or "")
    assert "needs 300 bars" in report.summary()


def test_warmup_needs_more_bars_than_the_window() -> None:
    with pytest.raises(DataError, match="warmup_bars=500"):
        check_warmup(FnSource(lambda b: signals(b, pl.lit(False))), bars(400), warmup_bars=500)


def test_cut_points_are_spread_and_bounded() -> None:
    cuts = lookahead_cuts(1000, 30)
    assert len(cuts) == 30 and cuts[0] >= 1 and cuts[-1] == 999
    assert cuts == sorted(set(cuts))
    assert lookahead_cuts(1, 30) == []
    assert len(lookahead_cuts(10, 30)) <= 9


def test_first_difference_semantics() -> None:
    data = bars(5)
    a = signals(data, pl.lit(False)).with_columns(pl.lit(None, pl.String).alias("regime"))
    assert first_difference(a, a) is None
    b = a.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("x")).alias("regime"))
    assert first_difference(a, b) == (3, "regime")
    c = a.with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(None).otherwise(pl.lit(0.02)).alias("stop_loss")
    )
    d = a.with_columns(pl.lit(0.02).alias("stop_loss"))
    assert first_difference(d, c) == (2, "stop_loss")
