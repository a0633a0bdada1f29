"""adapters.replay.files: formats, timestamps, names, and whole-file errors (files in tmp_path)."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from trading_brain.adapters.replay.files import (
    read_candle_file,
    read_candles,
    symbol_from_name,
    timeframe_from_name,
)
from trading_brain.domain.candles import CANDLE_SCHEMA
from trading_brain.engine.candles import validate
from trading_brain.errors import ConfigError, DataError
from trading_brain_tests.conftest import require_shared

CANDLES = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "candles"
HEADER = "timestamp,open,high,low,close,volume"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
T1 = datetime(2024, 1, 1, 1, tzinfo=UTC)


def write(path: Path, text: str) -> Path:
    path.write_bytes(gzip.compress(text.encode()) if path.name.endswith(".gz") else text.encode())
    return path


def two_rows(t0: str, t1: str, header: str = HEADER) -> str:
    return f"{header}\n{t0},1.0,2.0,0.5,1.5,10\n{t1},1.5,2.5,1.0,2.0,11\n"


@pytest.mark.parametrize("t0, t1", [
    ("2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z"),
    ("2024-01-01T02:00:00+02:00", "2024-01-01T01:00:00+00:00"),
    ("2024-01-01 00:00:00", "2024-01-01 01:00:00"),  # naive = UTC
    ("1704067200", "1704070800"),  # epoch seconds
    ("1704067200000", "1704070800000"),  # epoch milliseconds
    ("1704067200.0", "1704070800.0"),
])
def test_timestamp_layouts(tmp_path, t0, t1):
    df = read_candle_file(write(tmp_path / "BTCUSD_1h.csv", two_rows(t0, t1)))
    assert df.schema == pl.Schema(CANDLE_SCHEMA)
    assert df["ts"].to_list() == [T0, T1]
    assert df.row(0) == ("BTC/USD", "1h", T0, 1.0, 2.0, 0.5, 1.5, 10.0)


def test_csv_gz_and_header_variants(tmp_path):
    text = "Time,Open,High,Low,Close,Volume,Trades\n2024-01-01T00:00:00Z,1,2,0.5,1.5,10,3\n" \
           "2024-01-01T00:05:00Z,1.5,2.5,1,2,11,4\n"
    df = read_candle_file(write(tmp_path / "binance_ETHUSDT_5m_2024.csv.gz", text))
    assert df.columns == list(CANDLE_SCHEMA)
    assert df.select("symbol", "timeframe").unique().rows() == [("ETH/USDT", "5m")]
    assert df["close"].to_list() == [1.5, 2.0]


def test_kraken_headerless_ohlcvt(tmp_path):
    text = "1381095000,122.0,122.0,122.0,122.0,0.1,1\n1381098600,123.61,124.0,123.0,123.5,2.5,4\n"
    df = read_candle_file(write(tmp_path / "XBTUSD_60.csv", text))
    assert df.select("symbol", "timeframe").unique().rows() == [("BTC/USD", "1h")]
    assert df["ts"].to_list() == [datetime(2013, 10, 6, 21, 30, tzinfo=UTC),
                                  datetime(2013, 10, 6, 22, 30, tzinfo=UTC)]
    assert df["volume"].to_list() == [0.1, 2.5]
    six = read_candle_file(write(tmp_path / "XDGUSD_1440.csv", "1704067200,1,2,0.5,1.5,10\n"))
    assert six.row(0)[:3] == ("DOGE/USD", "1d", T0)


def test_parquet_native_and_epoch_timestamps(tmp_path):
    base = pl.DataFrame({"open": [1.0, 1.5], "high": [2.0, 2.5], "low": [0.5, 1.0],
                         "close": [1.5, 2.0], "volume": [10.0, 11.0]})
    cases = {
        "naive": pl.Series([datetime(2024, 1, 1), datetime(2024, 1, 1, 1)]),
        "aware": pl.Series([T0, T1]).dt.convert_time_zone("Europe/Paris"),
        "ms": pl.Series([1704067200000, 1704070800000]),
        "iso": pl.Series(["2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z"]),
    }
    for name, ts in cases.items():
        path = tmp_path / f"SOLUSD_1h_{name}.parquet"
        pl.DataFrame([ts.alias("timestamp")]).hstack(base).write_parquet(path)
        df = read_candle_file(path)
        assert df["ts"].to_list() == [T0, T1], name
        assert df.schema == pl.Schema(CANDLE_SCHEMA)


@pytest.mark.parametrize("name, symbol, tf", [
    ("binance_BTCUSDT_5m_2024H1.csv.gz", "BTC/USDT", "5m"),
    ("kraken_XBTUSD_1h_2013-2023.csv.gz", "BTC/USD", "1h"),
    ("XBTUSD_1440.csv", "BTC/USD", "1d"),
    ("ETHUSD_60.csv", "ETH/USD", "1h"),
    ("XXBTZUSD_5.csv", "BTC/USD", "5m"),
    ("XDGUSD_1.csv", "DOGE/USD", "1m"),
    ("btc-usd-1h.parquet", "BTC/USD", "1h"),
    ("ETHBTC_daily.csv", "ETH/BTC", "1d"),
    ("ARBUSD.csv", "ARB/USD", None),
    ("binance_BTC_USDT_5m.csv", "BTC/USDT", "5m"),
    ("binance_ETH_BTC_1h.csv", "ETH/BTC", "1h"),
    ("kraken_FOO_USD_1h.csv", "FOO/USD", "1h"),
    ("mydata.csv", "MYDATA/USD", None),
    ("my data (2024)!.csv", "MYDATA2024/USD", None),
    ("x.csv", "UNKNOWN/USD", None),
])
def test_names(name, symbol, tf):
    assert symbol_from_name(name) == symbol
    assert timeframe_from_name(name) == tf


def test_timeframe_is_inferred_from_spacing_or_refused(tmp_path):
    rows = "\n".join(f"2024-01-0{d}T00:00:00Z,1,2,0.5,1.5,1" for d in range(1, 6))
    got = read_candle_file(write(tmp_path / "data.csv", f"{HEADER}\n{rows}\n"))
    assert got["timeframe"][0] == "1d"
    odd = two_rows("2024-01-01T00:00:00Z", "2024-01-01T00:15:00Z")
    with pytest.raises(DataError, match="timeframe"):
        read_candle_file(write(tmp_path / "odd.csv", odd))
    with pytest.raises(DataError, match="15m apart .* timeframe asked is 5m"):  # issue 9
        read_candle_file(tmp_path / "odd.csv", timeframe="5m")
    with pytest.raises(ConfigError):
        read_candle_file(tmp_path / "odd.csv", timeframe="15m")


def test_explicit_symbol_wins_and_is_checked(tmp_path):
    path = write(tmp_path / "binance_BTCUSDT_5m.csv", two_rows("1704067200", "1704067500"))
    assert read_candle_file(path, symbol="eth-usd")["symbol"][0] == "ETH/USD"
    with pytest.raises(ConfigError):
        read_candle_file(path, symbol="not a symbol")


@pytest.mark.parametrize("name, text, match", [
    ("BTCUSD_5m.csv", "timestamp,open,high,low,close\n2024-01-01T00:00:00Z,1,2,0.5,1.5\n",
     "'volume'"),
    ("BTCUSD_5m.csv", "when,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,1.5,1\n",
     "'timestamp'"),
    ("BTCUSD_5m.csv", "", "empty"),
    ("BTCUSD_5m.csv", "1704067200,1,2,0.5,1.5\n", "5 columns"),
    ("BTCUSD_5m.csv", f"{HEADER}\n2024-01-01T00:00:00Z,1,2,x,1.5,1\n", "BTCUSD_5m.csv"),
    ("BTCUSD_5m.csv.gz", None, "BTCUSD_5m.csv.gz"),  # not really gzip
    ("BTCUSD_5m.parquet", "not parquet", "Parquet"),
])
def test_whole_file_errors_name_the_problem(tmp_path, name, text, match):
    path = tmp_path / name
    if text is None:
        path.write_bytes(b"\x1f\x8bgarbage")
    else:
        path.write_text(text)
    with pytest.raises(DataError, match=match):
        read_candle_file(path)


def test_unparseable_timestamp_cells_become_nulls_for_quarantine(tmp_path):
    text = f"{HEADER}\n2024-01-01 00:00:00,1,2,0.5,1.5,1\nlater,1,2,0.5,1.5,1\n"
    df = read_candle_file(write(tmp_path / "BTCUSD_5m.csv", text))
    good, bad = validate(df)
    assert good.height == 1 and bad["reason"].to_list() == ["null_value"]


def test_folders_and_missing_paths(tmp_path):
    (tmp_path / "d").mkdir()
    write(tmp_path / "d" / "BTCUSD_1h.csv", two_rows("1704067200", "1704070800"))
    write(tmp_path / "d" / "ETHUSD_1h.csv.gz", two_rows("1704067200", "1704070800"))
    write(tmp_path / "d" / "README.md", "not candles")
    df = read_candles(tmp_path / "d")
    assert sorted(df["symbol"].unique().to_list()) == ["BTC/USD", "ETH/USD"] and df.height == 4
    with pytest.raises(DataError, match="not found"):
        read_candles(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no candle files"):
        read_candles(tmp_path / "empty")


def test_real_files_read_to_the_schema():
    path = require_shared(CANDLES / "binance_BTCUSDT_5m_2024H1.csv.gz", "real candle file")
    df = read_candle_file(path)
    assert df.height == 52_416 and df.schema == pl.Schema(CANDLE_SCHEMA)
    assert df.select("symbol", "timeframe").unique().rows() == [("BTC/USDT", "5m")]
    assert df["ts"].min() == T0 and df["ts"].is_sorted()
    kraken = read_candle_file(CANDLES / "kraken_XBTUSD_1d_2013-2022.csv.gz")
    assert kraken.select("symbol", "timeframe").unique().rows() == [("BTC/USD", "1d")]
    assert kraken.height == 3_178
