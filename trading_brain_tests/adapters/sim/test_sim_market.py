"""SimMarket behind the MarketData port: schema, closed-bar rule, consistency, reproducibility,
errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from trading_brain.adapters.sim import EPOCH, SimMarket
from trading_brain.domain.candles import CANDLE_SCHEMA
from trading_brain.domain.timeframes import delta, floor_time
from trading_brain.errors import ConfigError
from trading_brain.ports import MarketData

from .conftest import NOW

REPO = Path(__file__).resolve().parents[3]
DAY = timedelta(days=1)


def check_frame(df: pl.DataFrame, symbol: str, tf: str) -> None:
    assert dict(df.schema) == CANDLE_SCHEMA
    assert df["symbol"].unique().to_list() == [symbol]
    assert df["timeframe"].unique().to_list() == [tf]
    ts = df["ts"].dt.epoch("us")
    assert ts.is_sorted() and ts.n_unique() == df.height
    assert (ts % (delta(tf).total_seconds() * 1_000_000) == 0).all()
    valid = df.select(
        (pl.col("low") <= pl.min_horizontal("open", "close")).all().alias("low_ok"),
        (pl.col("high") >= pl.max_horizontal("open", "close")).all().alias("high_ok"),
        ((pl.col("low") > 0) & (pl.col("volume") > 0)).all().alias("positive"),
    )
    assert valid.row(0, named=True) == {"low_ok": True, "high_ok": True, "positive": True}


def test_it_is_a_market_data_port_named_sim(make_market) -> None:
    market, _ = make_market()
    assert isinstance(market, MarketData) and market.name == "sim"


@pytest.mark.parametrize("tf", ["1m", "5m", "1h", "1d"])
def test_candles_conform_and_only_closed_bars_are_served(make_market, tf: str) -> None:
    market, _ = make_market()
    df = market.candles("ETH/USD", tf, NOW - 40 * DAY if tf == "1d" else NOW - DAY, NOW + DAY)
    check_frame(df, "ETH/USD", tf)
    newest = df["ts"][-1]
    assert newest + delta(tf) <= NOW < newest + 2 * delta(tf)
    assert newest == floor_time(NOW, tf) - delta(tf)


@pytest.mark.parametrize("tf", ["5m", "1h", "1d"])
def test_a_bar_appears_exactly_when_it_closes(make_market, tf: str) -> None:
    bar_open = datetime(2026, 3, 14, tzinfo=UTC)
    close_time = bar_open + delta(tf)
    market, clock = make_market(now=close_time - timedelta(microseconds=1))
    window = (bar_open - delta(tf), bar_open + delta(tf))
    assert market.candles("BTC/USD", tf, *window)["ts"].to_list() == [bar_open - delta(tf)]
    clock.set(close_time)
    got = market.candles("BTC/USD", tf, *window)
    assert got["ts"].to_list() == [bar_open - delta(tf), bar_open]


def test_coarser_bars_are_exact_aggregations_of_the_minute_path(make_market) -> None:
    market, _ = make_market()
    start, end = datetime(2026, 3, 11, tzinfo=UTC), datetime(2026, 3, 13, tzinfo=UTC)
    minutes = market.candles("SOL/USD", "1m", start, end)
    assert minutes.height == 2 * 1440
    for tf in ("5m", "1h", "1d"):
        expected = (
            minutes.group_by_dynamic("ts", every=tf, closed="left", label="left")
            .agg(
                pl.col("open").first(),
                pl.col("high").max(),
                pl.col("low").min(),
                pl.col("close").last(),
                pl.col("volume").sum(),
            )
            .sort("ts")
        )
        got = market.candles("SOL/USD", tf, start, end)
        assert got.height == expected.height
        assert_frame_equal(got.select(expected.columns), expected, check_exact=False, rel_tol=1e-12)
        for c in ("open", "high", "low", "close"):  # prices are exactly equal, not just close
            assert (got[c] == expected[c]).all(), (tf, c)


def test_windows_and_call_order_do_not_change_any_bar(make_market) -> None:
    market, _ = make_market()
    start, end = NOW - 10 * DAY, NOW
    whole = market.candles("LINK/USD", "1h", start, end)
    fresh, _ = make_market()
    cut = start + timedelta(days=6, hours=5, minutes=17)
    later = fresh.candles("LINK/USD", "1h", cut, end)  # newest half first
    earlier = fresh.candles("LINK/USD", "1h", start, cut)
    assert_frame_equal(pl.concat([earlier, later]), whole)


def test_bootstrap_history_and_the_live_continuation_agree(make_market) -> None:
    t0 = datetime(2026, 3, 14, 9, 2, 13, tzinfo=UTC)
    live, clock = make_market(now=t0)
    seen = {
        row["ts"]: row for row in live.candles("DOT/USD", "5m", t0 - DAY, t0).iter_rows(named=True)
    }
    for _ in range(40):  # 40 scans, ~5 minutes apart, each asking for the last 3 closed bars
        clock.advance(timedelta(minutes=5, seconds=3))
        newest = floor_time(clock.now(), "5m") - timedelta(minutes=5)
        recent = live.candles("DOT/USD", "5m", newest - timedelta(minutes=10), clock.now())
        assert recent.height == 3
        for row in recent.iter_rows(named=True):
            assert seen.setdefault(row["ts"], row) == row  # a re-fetched bar never changes
    later, _ = make_market(now=clock.now())
    bootstrap = later.candles("DOT/USD", "5m", t0 - DAY, clock.now())
    assert bootstrap.to_dicts() == [seen[t] for t in sorted(seen)]


def test_same_seed_across_processes_different_seed_differs(make_market, tmp_path: Path) -> None:
    code = (
        "import sys, json\n"
        "from datetime import datetime, UTC, timedelta\n"
        "from trading_brain.adapters.clock import SimClock\n"
        "from trading_brain.adapters.sim import SimMarket\n"
        "now = datetime.fromisoformat(sys.argv[1])\n"
        "m = SimMarket(['ADA/USD'], seed=7, clock=SimClock(now))\n"
        "df = m.candles('ADA/USD', '5m', now - timedelta(hours=6), now)\n"
        "print(json.dumps(df.select('open', 'high', 'low', 'close', 'volume').rows()))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code, NOW.isoformat()],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
        check=True,
    )
    other_process = [tuple(r) for r in json.loads(out.stdout)]
    market, _ = make_market(symbols=["ADA/USD"], seed=7)
    here = market.candles("ADA/USD", "5m", NOW - timedelta(hours=6), NOW)
    assert here.select("open", "high", "low", "close", "volume").rows() == other_process
    reseeded, _ = make_market(symbols=["ADA/USD"], seed=8)
    there = reseeded.candles("ADA/USD", "5m", NOW - timedelta(hours=6), NOW)
    assert there["close"].to_list() != here["close"].to_list()


def test_empty_and_pre_epoch_windows(make_market) -> None:
    market, _ = make_market()
    for start, end in ((NOW - DAY, NOW - DAY), (NOW, NOW - DAY), (NOW, NOW + DAY)):
        df = market.candles("BTC/USD", "5m", start, end)
        assert df.is_empty() and dict(df.schema) == CANDLE_SCHEMA
    assert market.candles("BTC/USD", "1d", EPOCH - 30 * DAY, EPOCH).is_empty()
    first = market.candles("BTC/USD", "1d", EPOCH - 30 * DAY, EPOCH + 3 * DAY)
    assert first["ts"].to_list() == [EPOCH, EPOCH + DAY, EPOCH + 2 * DAY]


def test_symbols_are_normalised_and_unknown_ones_refused(make_market) -> None:
    market, _ = make_market(symbols=["btc-usd", "ETH/USD"])
    assert market.symbols == ("BTC/USD", "ETH/USD")
    assert market.candles("btc/usd", "1h", NOW - DAY, NOW)["symbol"][0] == "BTC/USD"
    with pytest.raises(ConfigError, match="unknown symbol"):
        market.candles("SOL/USD", "1h", NOW - DAY, NOW)
    with pytest.raises(ConfigError, match="invalid symbol"):
        market.candles("BTC$USD", "1h", NOW - DAY, NOW)
    with pytest.raises(ConfigError, match="unknown symbol"):
        market.tickers(["BTC/USD", "DOGE/USD"])
    with pytest.raises(ConfigError, match="unknown symbol"):
        market.asset_pairs(["XRP/USD"])
    with pytest.raises(ConfigError, match="timeframe"):
        market.candles("BTC/USD", "15m", NOW - DAY, NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs", [{"symbols": ["NOPE"]}, {"symbols": []}, {"seed": -1}, {"seed": 1.5}, {"seed": True}]
)
def test_bad_construction_is_a_config_error(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        SimMarket(**{"symbols": ["BTC/USD"], "seed": 1, **kwargs})


def test_tickers_quote_the_latest_minute_with_a_small_spread(make_market) -> None:
    market, clock = make_market()
    tickers = market.tickers(["BTC/USD", "DOGE/USD", "XRP/USD"])
    for sym, t in tickers.items():
        last_closed = market.candles(sym, "1m", NOW - timedelta(minutes=5), NOW)[-1]
        assert t.last == last_closed["close"][0] == market.price_at(sym, NOW)
        assert t.bid < t.last < t.ask and (t.ask - t.bid) / t.last < 0.002
        assert t.ts == NOW and t.symbol == sym
    clock.advance(timedelta(minutes=1))
    moved = market.tickers(["BTC/USD"])["BTC/USD"]
    newest = market.candles("BTC/USD", "1m", NOW - timedelta(minutes=1), clock.now())
    assert newest["ts"][-1] == floor_time(NOW, "1m") and moved.last == newest["close"][-1]


def test_minute_path_and_price_at(make_market) -> None:
    market, _ = make_market()
    path = market.minute_path("LTC/USD", NOW - timedelta(hours=2), NOW)
    assert_frame_equal(path, market.candles("LTC/USD", "1m", NOW - timedelta(hours=2), NOW))
    row = path[50]
    inside = row["ts"][0] + timedelta(seconds=42)
    assert market.price_at("LTC/USD", inside) == row["open"][0]
    with pytest.raises(ConfigError, match="future"):
        market.price_at("LTC/USD", NOW + timedelta(seconds=1))
    with pytest.raises(ConfigError, match="before"):
        market.price_at("LTC/USD", EPOCH - timedelta(microseconds=1))
    assert (
        market.price_at("LTC/USD", EPOCH)
        == market.candles("LTC/USD", "1m", EPOCH, EPOCH + timedelta(minutes=2))["open"][0]
    )


def test_asset_pairs_look_like_kraken(make_market) -> None:
    market, _ = make_market()
    pairs = market.asset_pairs(market.symbols)
    assert (pairs["BTC/USD"].venue_name, pairs["BTC/USD"].altname, pairs["BTC/USD"].wsname) == (
        "XXBTZUSD",
        "XBTUSD",
        "XBT/USD",
    )
    assert pairs["DOGE/USD"].venue_name == "XDGUSD" and pairs["SOL/USD"].venue_name == "SOLUSD"
    assert pairs["BTC/USD"].pair_decimals == 1 and pairs["BTC/USD"].ordermin == Decimal("0.00005")
    for sym, p in pairs.items():
        price = market.price_at(sym, NOW)
        assert p.lot_decimals == 8 and p.costmin == Decimal("0.5")
        assert (p.fee_taker, p.fee_maker) == (0.0026, 0.0016)
        assert (
            Decimal(1) <= p.ordermin * Decimal(str(market._procs[sym].char.anchor)) <= Decimal(10)
        )
        assert p.round_price(price) == Decimal(repr(price))  # candle prices sit on the tick grid
        assert p.meets_minimums(p.ordermin * 1000, Decimal(repr(price)))


def test_other_symbols_get_their_own_stable_character(make_market) -> None:
    market, _ = make_market(symbols=["FOO/EUR", "ZZZ/USD"])
    pairs = market.asset_pairs(["FOO/EUR", "ZZZ/USD"])
    assert pairs["FOO/EUR"].venue_name == "FOOEUR" and pairs["FOO/EUR"].quote == "EUR"
    for sym in ("FOO/EUR", "ZZZ/USD"):
        check_frame(market.candles(sym, "1h", NOW - DAY, NOW), sym, "1h")
    again, _ = make_market(symbols=["ZZZ/USD"])
    assert again.price_at("ZZZ/USD", NOW) == market.price_at("ZZZ/USD", NOW)
    assert market.price_at("FOO/EUR", NOW) != market.price_at("ZZZ/USD", NOW)


def test_regimes_cover_closed_days_only(make_market) -> None:
    market, _ = make_market()
    reg = market.regimes("BTC/USD", floor_time(NOW, "1d") - 60 * DAY, NOW + 60 * DAY)
    assert reg["ts"][-1] == floor_time(NOW, "1d") - DAY and reg.height == 60
    assert set(reg["regime"].unique().to_list()) <= {"range", "up", "down"}
    assert (reg["daily_vol"] > 0).all()


@pytest.mark.parametrize("tf", ["1m", "5m", "1h"])
def test_candle_rows_are_the_candles_as_tuples(make_market, tf: str) -> None:
    market, _ = make_market(["ETH/USD"])
    cols = ("ts", "open", "high", "low", "close", "volume")
    for start, end in [(NOW - timedelta(minutes=13, seconds=5), NOW + DAY),  # up to now
                       (NOW - 2 * DAY - timedelta(minutes=7), NOW - DAY),  # across midnights
                       (EPOCH - DAY, EPOCH + timedelta(minutes=7)), (NOW, NOW)]:
        rows = market.candle_rows("eth/usd", tf, start, end)
        frame = market.candles("ETH/USD", tf, start, end)
        assert rows == list(zip(*(frame[c].to_list() for c in cols), strict=True))
        assert all(r[0].utcoffset() == timedelta(0) for r in rows)
    day = floor_time(NOW, tf) - DAY
    assert len(market.candle_rows("ETH/USD", tf, day, NOW + DAY)) == DAY // delta(tf)
    with pytest.raises(ConfigError):
        market.candle_rows("BTC/USD", tf, NOW - DAY, NOW)
