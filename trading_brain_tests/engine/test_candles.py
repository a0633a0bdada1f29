"""engine.candles: validation/quarantine, gaps and aggregation, on hand-made and real candles."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trading_brain.domain.candles import CANDLE_SCHEMA, conform
from trading_brain.engine.candles import aggregate, find_gaps, sort_candles, validate
from trading_brain.errors import ConfigError, DataError
from trading_brain_tests.conftest import require_shared

CANDLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "candles"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def walk(n: int = 200, symbol: str = "BTC/USD", tf: str = "5m", price: float = 100.0,
         seed: int = 1, start: datetime = T0) -> pl.DataFrame:
    """A valid random-walk candle frame."""
    step = {"5m": 300, "1h": 3600, "1d": 86400}[tf]
    rng = np.random.default_rng(seed)
    close = price * np.exp(np.cumsum(rng.normal(0, 0.003, n)))
    open_ = np.concatenate([[price], close[:-1]])
    spread = np.abs(rng.normal(0, 0.002, n)) + 0.0005
    return pl.DataFrame({
        "symbol": symbol, "timeframe": tf,
        "ts": [start + timedelta(seconds=step * i) for i in range(n)],
        "open": open_, "high": np.maximum(open_, close) * (1 + spread),
        "low": np.minimum(open_, close) * (1 - spread), "close": close,
        "volume": rng.uniform(1, 10, n),
    }).pipe(conform)


def set_row(df: pl.DataFrame, i: int, **values: float) -> pl.DataFrame:
    idx = pl.int_range(pl.len()) == i
    return df.with_columns([pl.when(idx).then(pl.lit(v)).otherwise(pl.col(c)).alias(c)
                            for c, v in values.items()])


def real(name: str) -> pl.DataFrame:
    from trading_brain.adapters.replay.files import read_candle_file

    return read_candle_file(require_shared(CANDLES / name, "real candle file"))


# -- whole-frame errors -----------------------------------------------------------------------
@pytest.mark.parametrize("column", ["symbol", "ts", "open", "high", "low", "close", "volume"])
def test_missing_column_is_a_dataerror_naming_it(column):
    with pytest.raises(DataError, match=f"'{column}'"):
        validate(walk(5).drop(column))


def test_timeframe_column_may_come_from_the_argument_but_must_agree():
    good, bad = validate(walk(5).drop("timeframe"), "5m")
    assert good.height == 5 and bad.is_empty() and good["timeframe"].unique().to_list() == ["5m"]
    with pytest.raises(DataError, match="1h"):
        validate(walk(5), "1h")


def test_timestamps_must_be_datetimes_and_naive_ones_are_utc():
    df = walk(5)
    with pytest.raises(DataError, match="'ts'"):
        validate(df.with_columns(pl.col("ts").dt.strftime("%Y-%m-%d %H:%M")))
    good, bad = validate(df.with_columns(pl.col("ts").dt.replace_time_zone(None)))
    assert bad.is_empty() and good.equals(df)


# -- row reasons ------------------------------------------------------------------------------
@pytest.mark.parametrize("values, reason", [
    ({"close": float("nan")}, "non_finite"),
    ({"volume": float("inf")}, "non_finite"),
    ({"open": 0.0}, "non_positive_price"),
    ({"low": -1.0}, "non_positive_price"),
    ({"volume": -0.5}, "negative_volume"),
    ({"high": 50.0, "low": 60.0, "open": 55.0, "close": 55.0}, "high_below_low"),
    ({"open": 1000.0}, "open_close_outside_range"),
    ({"close": 1.0}, "open_close_outside_range"),
])
def test_bad_rows_are_quarantined_with_their_reason(values, reason):
    df = set_row(walk(50), 20, **values)
    good, bad = validate(df)
    assert bad["reason"].to_list() == [reason]
    assert bad["ts"][0] == df["ts"][20]
    assert good.height == 49 and df["ts"][20] not in good["ts"].to_list()
    assert good.schema == pl.Schema(CANDLE_SCHEMA)


def test_nulls_are_quarantined():
    df = walk(10).with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("close")).alias("close"))
    good, bad = validate(df)
    assert bad["reason"].to_list() == ["null_value"] and good.height == 9


def test_misaligned_open_times_are_quarantined():
    df = walk(10)
    df = df.with_columns(pl.when(pl.int_range(pl.len()) == 9)
                         .then(pl.col("ts") + timedelta(minutes=3)).otherwise(pl.col("ts")))
    good, bad = validate(df)
    assert bad["reason"].to_list() == ["misaligned_ts"] and good.height == 9
    hourly = walk(3, tf="1h", start=T0 + timedelta(minutes=5))
    assert validate(hourly)[1]["reason"].to_list() == ["misaligned_ts"] * 3


def test_unknown_timeframe_value_is_quarantined():
    df = walk(4).with_columns(pl.lit("7m").alias("timeframe"))
    good, bad = validate(df)
    assert good.is_empty() and set(bad["reason"]) == {"unknown_timeframe"}


# -- duplicates and order ---------------------------------------------------------------------
def test_identical_duplicates_collapse_to_one():
    df = walk(30)
    good, bad = validate(pl.concat([df, df.slice(5, 10)]))
    assert bad.is_empty() and good.equals(df)


def test_conflicting_duplicates_are_all_quarantined():
    df = walk(30)
    other = set_row(df.slice(7, 1), 0, volume=999.0)
    good, bad = validate(pl.concat([df, df.slice(7, 1), other]))
    assert bad["reason"].to_list() == ["conflicting_duplicate"] * 2
    assert sorted(bad["volume"].to_list()) == sorted([df["volume"][7], 999.0])
    assert good.height == 29 and df["ts"][7] not in good["ts"].to_list()


def test_out_of_order_input_is_sorted_not_rejected():
    df = pl.concat([walk(100, "ETH/USD", seed=2), walk(100, "BTC/USD", seed=3)])
    for shuffled in (df.sample(fraction=1.0, shuffle=True, seed=7), df.reverse()):
        good, bad = validate(shuffled)
        assert bad.is_empty()
        assert good.equals(df.sort("symbol", "timeframe", "ts"))


def test_sort_candles_reorders_runs_and_falls_back_to_a_full_sort():
    a, b = walk(20, "ETH/USD"), walk(20, "BTC/USD")
    expected = pl.concat([b, a])
    assert sort_candles(pl.concat([a, b])).equals(expected)
    split = pl.concat([a.slice(10), b, a.slice(0, 10)])  # a series in two runs
    assert sort_candles(split).equals(expected)


def test_empty_frame_gives_two_empty_frames():
    good, bad = validate(walk(1).clear())
    assert good.is_empty() and bad.is_empty() and good.schema == pl.Schema(CANDLE_SCHEMA)


# -- outliers ---------------------------------------------------------------------------------
def test_isolated_close_print_is_an_outlier():
    df = walk(200)
    c = df["close"][100]
    df = set_row(df, 100, close=c * 0.2, low=c * 0.2, open=df["close"][99])
    good, bad = validate(df)
    assert bad["reason"].to_list() == ["outlier_close"] and bad["ts"][0] == df["ts"][100]
    assert good.height == 199


def test_three_consecutive_bad_prints_are_outliers():
    df = walk(200)
    for i in (50, 51, 52):
        c = df["close"][i]
        df = set_row(df, i, open=c * 3, high=c * 3, low=c * 3, close=c * 3)
    assert validate(df)[1]["reason"].to_list() == ["outlier_close"] * 3


def test_wick_far_beyond_the_neighbourhood_is_an_outlier():
    df = walk(200)
    df = set_row(df, 120, low=df["low"][120] * 0.3)
    good, bad = validate(df)
    assert bad["reason"].to_list() == ["outlier_wick"] and good.height == 199


def test_real_level_shift_and_volatility_are_not_outliers():
    df = walk(300)
    drop = pl.int_range(pl.len()) >= 150
    df = df.with_columns([pl.when(drop).then(pl.col(c) * 0.45).otherwise(pl.col(c)).alias(c)
                          for c in ("open", "high", "low", "close")])
    df = set_row(df, 150, open=df["close"][149], high=df["close"][149])  # the crash bar itself
    good, bad = validate(df)
    assert bad.is_empty(), bad
    assert validate(df, outliers=True)[0].height == 300


def test_series_are_judged_separately():
    df = pl.concat([walk(50, "BTC/USD", price=60000), walk(50, "DOGE/USD", price=0.1)])
    assert validate(df)[1].is_empty()


def test_history_gives_context_to_a_short_tail_and_is_not_returned():
    df = walk(100)
    c = df["close"][99]
    tail = set_row(df.slice(99, 1), 0, close=c * 0.1, low=c * 0.1)
    assert validate(tail)[1].is_empty()  # one bar alone cannot be judged
    good, bad = validate(tail, history=df.slice(0, 99))
    assert good.is_empty() and bad["reason"].to_list() == ["outlier_close"]
    fine = df.slice(95, 5)
    good, bad = validate(fine, history=df.slice(0, 99))
    assert bad.is_empty() and good.equals(fine)


def test_outlier_check_can_be_disabled():
    df = walk(100)
    df = set_row(df, 50, close=df["close"][50] * 0.1, low=df["close"][50] * 0.1)
    assert validate(df, outliers=False)[1].is_empty()


# -- real data --------------------------------------------------------------------------------
def test_real_kraken_eth_outliers_are_quarantined():
    good, bad = validate(real("kraken_ETHUSD_1h_2015-2023.csv.gz"))
    flagged = {t.isoformat(): r for t, r in bad.select("ts", "reason").iter_rows()}
    assert "2015-08-08T17:00:00+00:00" in flagged  # low/close 0.15
    assert flagged["2017-05-07T22:00:00+00:00"] == "outlier_close"  # the 30.00 candle
    assert bad.height <= 8, flagged  # nothing else of note
    assert good.height + bad.height == 63_568


@pytest.mark.parametrize("name", [
    *(f"binance_{s}USDT_{tf}_2024H1.csv.gz"
      for s in ("BTC", "ETH", "SOL") for tf in ("5m", "1h", "1d")),
    "kraken_XBTUSD_1h_2013-2023.csv.gz", "kraken_XBTUSD_1d_2013-2022.csv.gz",
])
def test_real_files_have_no_false_positives(name):
    df = real(name)
    good, bad = validate(df)
    assert bad.is_empty(), bad
    assert good.height == df.height


def test_real_kraken_gaps_are_found_not_quarantined():
    df = real("kraken_XBTUSD_1h_2013-2023.csv.gz")
    good, bad = validate(df)
    gaps = find_gaps(good)
    assert bad.is_empty() and gaps.height > 1000
    expected = (good["ts"].max() - good["ts"].min()) // timedelta(hours=1) + 1 - good.height
    assert gaps.height == expected
    assert gaps["ts"].is_in(good["ts"].implode()).sum() == 0
    jan18 = gaps.filter(pl.col("ts").dt.year() == 2018, pl.col("ts").dt.month() == 1)
    assert jan18.height > 0  # the January 2018 outage


# -- gaps -------------------------------------------------------------------------------------
def test_find_gaps_lists_missing_open_times_per_symbol():
    a = walk(12, "BTC/USD")
    b = walk(12, "ETH/USD")
    a_holed = a.filter(~pl.int_range(pl.len()).is_in([3, 4, 9]))
    b_holed = b.filter(pl.int_range(pl.len()) != 1)
    gaps = find_gaps(pl.concat([b_holed, a_holed]))
    assert gaps.columns == ["symbol", "timeframe", "ts"]
    assert gaps.rows() == [("BTC/USD", "5m", a["ts"][i]) for i in (3, 4, 9)] + [
        ("ETH/USD", "5m", b["ts"][1])]
    assert find_gaps(a).is_empty() and find_gaps(a.clear()).is_empty()
    # the edges of a series are not gaps
    assert find_gaps(a.slice(2, 5)).is_empty()


# -- aggregation ------------------------------------------------------------------------------
def test_aggregate_emits_only_complete_buckets_by_default():
    df = walk(36)  # three hours of 5m bars
    holed = df.filter(pl.int_range(pl.len()) != 15)  # hour 2 incomplete
    hours = aggregate(holed, "1h")
    assert hours["ts"].to_list() == [T0, T0 + timedelta(hours=2)]
    first = df.head(12)
    assert hours.row(0) == ("BTC/USD", "1h", T0, first["open"][0], first["high"].max(),
                            first["low"].min(), first["close"][-1], hours["volume"][0])
    assert math.isclose(hours["volume"][0], first["volume"].sum(), rel_tol=1e-12)
    partial = aggregate(holed, "1h", allow_partial=True)
    assert partial.height == 3 and partial.schema == pl.Schema(CANDLE_SCHEMA)


def test_aggregate_never_loses_or_double_counts():
    rng = np.random.default_rng(5)
    df = pl.concat([walk(288 * 3, "BTC/USD"), walk(288 * 3, "ETH/USD", seed=9)])
    holed = df.filter(pl.Series(rng.random(df.height) > 0.1)).sample(fraction=1.0, shuffle=True)
    for tf in ("1h", "1d"):
        part = aggregate(holed, tf, allow_partial=True)
        assert math.isclose(part["volume"].sum(), holed["volume"].sum(), rel_tol=1e-9)
        full = aggregate(holed, tf)
        assert full.height < part.height
    daily = aggregate(df, "1d")
    assert daily.height == 6 and math.isclose(daily["volume"].sum(), df["volume"].sum())
    via_hours = aggregate(aggregate(df, "1h"), "1d")
    assert via_hours.drop("volume").equals(daily.drop("volume"))
    assert np.allclose(via_hours["volume"].to_numpy(), daily["volume"].to_numpy(), rtol=1e-12)


def test_aggregate_rejects_bad_requests():
    with pytest.raises(ConfigError):
        aggregate(walk(24, tf="1h"), "5m")
    with pytest.raises(ConfigError):
        aggregate(walk(24, tf="1h"), "1h")
    with pytest.raises(DataError, match="duplicate"):
        aggregate(pl.concat([walk(12), walk(12)]), "1h")
    with pytest.raises(DataError, match="one source timeframe"):
        aggregate(pl.concat([walk(12), walk(2, tf="1h")]), "1d")
    assert aggregate(walk(1).clear(), "1h").is_empty()


@pytest.mark.parametrize("base", ["BTC", "ETH", "SOL"])
def test_real_5m_aggregates_to_the_real_1h_and_1d_files(base):
    five = real(f"binance_{base}USDT_5m_2024H1.csv.gz")
    for tf in ("1h", "1d"):
        ref = real(f"binance_{base}USDT_{tf}_2024H1.csv.gz")
        agg = aggregate(validate(five)[0], tf)
        assert agg.height == ref.height
        assert agg.drop("volume").equals(ref.drop("volume"))
        rel = ((agg["volume"] - ref["volume"]).abs() / ref["volume"]).max()
        assert rel < 1e-6
