"""adapters.replay.market.ReplayMarket: closed bars up to the clock, derived timeframes, tickers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trading_brain.adapters.clock import SimClock
from trading_brain.adapters.replay import ReplayMarket
from trading_brain.adapters.replay.files import read_candle_file
from trading_brain.domain.candles import CANDLE_SCHEMA, UTC_TS, conform
from trading_brain.errors import ConfigError, DataError
from trading_brain.ports import MarketData
from trading_brain_tests.conftest import require_shared

CANDLES = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "candles"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
FAR = datetime(2030, 1, 1, tzinfo=UTC)


def five_minute(n: int, symbol: str = "BTC/USD", price: float = 100.0, step: float = 1.0
                ) -> pl.DataFrame:
    close = price + step * np.arange(n, dtype=float)
    return conform(pl.DataFrame({
        "symbol": symbol, "timeframe": "5m",
        "ts": [T0 + timedelta(minutes=5 * i) for i in range(n)],
        "open": close - step / 2, "high": close + step, "low": close - step, "close": close,
        "volume": np.ones(n),
    }))


@pytest.fixture
def clock() -> SimClock:
    return SimClock(T0)


def test_is_a_market_data_port(clock):
    m = ReplayMarket(five_minute(3), clock)
    assert isinstance(m, MarketData) and m.name == "replay" and m.symbols == ("BTC/USD",)


def test_only_closed_bars_up_to_the_clock(clock):
    m = ReplayMarket(five_minute(24), clock)
    assert m.candles("BTC/USD", "5m", T0, FAR).is_empty()  # nothing closed at T0
    clock.set(T0 + timedelta(minutes=14, seconds=59))
    got = m.candles("BTC/USD", "5m", T0, FAR)
    assert got["ts"].to_list() == [T0, T0 + timedelta(minutes=5)]  # 00:10 still forming
    clock.set(T0 + timedelta(minutes=15))
    assert m.candles("BTC/USD", "5m", T0, FAR).height == 3
    window = m.candles("btc/usd", "5m", T0 + timedelta(minutes=5), T0 + timedelta(minutes=10))
    assert window["ts"].to_list() == [T0 + timedelta(minutes=5)]  # [start, end)
    assert window.schema == pl.Schema(CANDLE_SCHEMA)
    assert m.candles("BTC/USD", "5m", FAR, FAR + timedelta(days=1)).is_empty()


def test_longer_timeframes_are_aggregated_complete_buckets_only(clock):
    data = five_minute(36).filter(pl.col("ts") != T0 + timedelta(minutes=70))  # hour 1 holed
    m = ReplayMarket(data, clock)
    clock.set(T0 + timedelta(hours=2, minutes=55))
    assert m.candles("BTC/USD", "1h", T0, FAR)["ts"].to_list() == [T0]  # hour 2 not closed
    clock.set(T0 + timedelta(hours=3))
    hours = m.candles("BTC/USD", "1h", T0, FAR)
    assert hours["ts"].to_list() == [T0, T0 + timedelta(hours=2)]
    assert hours.row(0)[3:] == (99.5, 112.0, 99.0, 111.0, 12.0)
    hourly = five_minute(3).with_columns(
        pl.lit("1h").alias("timeframe"),
        pl.Series("ts", [T0 + timedelta(hours=i) for i in range(3)]).cast(UTC_TS))
    with pytest.raises(ConfigError, match="no 5m bars"):
        ReplayMarket(hourly, clock).candles("BTC/USD", "5m", T0, FAR)


def test_bad_rows_are_left_out_and_kept_for_inspection(clock):
    data = five_minute(6).with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(float("nan")).otherwise(pl.col("close"))
        .alias("close"))
    m = ReplayMarket(data, clock)
    clock.set(T0 + timedelta(hours=1))
    assert m.candles("BTC/USD", "5m", T0, FAR).height == 5
    assert m.quarantined["reason"].to_list() == ["non_finite"]


def test_tickers_quote_the_last_closed_close(clock):
    m = ReplayMarket(pl.concat([five_minute(12), five_minute(12, "ETH/USD", 2000.0)]), clock)
    with pytest.raises(DataError, match="no closed"):
        m.tickers(["BTC/USD"])
    clock.set(T0 + timedelta(minutes=17))
    t = m.tickers(["BTC/USD", "ETH/USD"])
    assert t["BTC/USD"].last == 102.0 and t["BTC/USD"].bid == t["BTC/USD"].ask == 102.0
    assert t["BTC/USD"].ts == T0 + timedelta(minutes=15)
    assert t["ETH/USD"].last == 2002.0


def test_asset_pairs_defaults(clock):
    m = ReplayMarket(pl.concat([five_minute(3, "BTC/USD", 60000.0),
                                five_minute(3, "DOGE/USD", 0.1, step=0.0001)]), clock)
    clock.set(T0 + timedelta(minutes=10))
    pairs = m.asset_pairs(["BTC/USD", "DOGE/USD"])
    btc = pairs["BTC/USD"]
    assert (btc.base, btc.quote, btc.lot_decimals, btc.pair_decimals) == ("BTC", "USD", 8, 1)
    assert (btc.fee_taker, btc.fee_maker) == (0.0026, 0.0016)
    assert Decimal(0) < btc.ordermin <= Decimal("0.001")
    assert pairs["DOGE/USD"].pair_decimals == 6


def test_unknown_symbol_is_a_config_error(clock):
    m = ReplayMarket(five_minute(3), clock)
    for call in (lambda: m.candles("ETH/USD", "5m", T0, FAR), lambda: m.tickers(["ETH/USD"]),
                 lambda: m.asset_pairs(["ETH/USD"])):
        with pytest.raises(ConfigError, match="ETH/USD"):
            call()
    with pytest.raises(ConfigError):
        m.candles("BTC/USD", "7m", T0, FAR)  # type: ignore[arg-type]


def test_real_5m_file_replays_to_the_real_1h_file(clock):
    five, hourly = (CANDLES / f"binance_BTCUSDT_{tf}_2024H1.csv.gz" for tf in ("5m", "1h"))
    require_shared(five, "real candle file")
    m = ReplayMarket(five, clock)
    clock.set(datetime(2024, 3, 1, 12, 3, tzinfo=UTC))
    day = datetime(2024, 3, 1, tzinfo=UTC)
    got = m.candles("BTC/USDT", "1h", day, day + timedelta(days=1))
    ref = read_candle_file(hourly).filter(pl.col("ts") >= day,
                                          pl.col("ts") < day + timedelta(hours=12))
    assert got.height == 12 and got.drop("volume").equals(ref.drop("volume"))
    assert np.allclose(got["volume"].to_numpy(), ref["volume"].to_numpy(), rtol=1e-9)
    last5 = m.candles("BTC/USDT", "5m", day, FAR)["ts"].max()
    assert last5 == datetime(2024, 3, 1, 11, 55, tzinfo=UTC)
