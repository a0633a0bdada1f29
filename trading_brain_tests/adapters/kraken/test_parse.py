"""Strict parsing of real Kraken payloads into domain types; malformed input -> DataError."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal

import polars as pl
import pytest

from trading_brain.adapters.kraken import parse
from trading_brain.domain.candles import CANDLE_SCHEMA
from trading_brain.errors import DataError
from trading_brain_tests.fakes import kraken_data

from .conftest import CAPTURE_TIME, require_data


@pytest.fixture
def market() -> dict:
    require_data()
    return kraken_data.default_market()


def test_asset_pair_from_real_rows(market: dict) -> None:
    btc = parse.asset_pair("XXBTZUSD", market["pairs"]["XXBTZUSD"])
    assert (btc.symbol, btc.venue_name, btc.altname, btc.wsname) == (
        "BTC/USD", "XXBTZUSD", "XBTUSD", "XBT/USD")
    assert btc.fee_taker == pytest.approx(0.0026) and btc.fee_maker == pytest.approx(0.0016)
    assert btc.ordermin == Decimal("0.0001") and btc.costmin == Decimal("0.5")
    assert btc.tick_size == Decimal("0.1")
    assert (btc.pair_decimals, btc.lot_decimals) == (1, 8)
    usdt = parse.asset_pair("XBTUSDT", market["pairs"]["XBTUSDT"])
    assert usdt.symbol == "BTC/USDT"
    assert usdt.fee_taker == pytest.approx(0.004) and usdt.fee_maker == pytest.approx(0.0025)
    assert usdt.ordermin == Decimal("0.00005")


def test_asset_pair_empty_fees_use_base_schedule(market: dict) -> None:
    row = {**market["pairs"]["XXBTZUSD"], "fees": [], "fees_maker": []}
    p = parse.asset_pair("XXBTZUSD", row)
    assert p.fee_taker == pytest.approx(0.0026) and p.fee_maker == pytest.approx(0.0016)


@pytest.mark.parametrize(
    ("change", "message"),
    [({"ordermin": None}, "ordermin"), ({"ordermin": "abc"}, "ordermin"),
     ({"lot_decimals": "8"}, "lot_decimals"), ({"fees": [0.26]}, "fees"),
     ({"fees": [[0, "NaN"]]}, "fees"), ({"costmin": "-1"}, "costmin"),
     ({"fees": [[0, 26.0]]}, "fee_taker")],
)
def test_asset_pair_malformed(market: dict, change: dict, message: str) -> None:
    row = {**market["pairs"]["XXBTZUSD"], **change}
    row = {k: v for k, v in row.items() if v is not None}
    with pytest.raises(DataError, match=message):
        parse.asset_pair("XXBTZUSD", row)


def test_ohlc_rows_from_real_capture(market: dict) -> None:
    rows = market["ohlc_1m"]["XBTUSDT"]
    df = parse.ohlc_rows(rows, "BTC/USDT", "1m")
    assert dict(df.schema) == CANDLE_SCHEMA
    assert df.height == len(rows) == 721
    assert df["ts"].is_sorted() and df["ts"].n_unique() == df.height
    assert df["ts"][0] == datetime.fromtimestamp(rows[0][0], tz=UTC)
    assert df["close"][-1] == float(rows[-1][4])
    assert df.filter(pl.col("low") > pl.col("high")).height == 0


def test_ohlc_rows_dedupes_and_sorts() -> None:
    rows = [[120, "2", "3", "1", "2", "2", "1", 1], [60, "1", "2", "1", "1", "1", "1", 1],
            [120, "5", "6", "4", "5", "5", "2", 1]]
    df = parse.ohlc_rows(rows, "BTC/USD", "1m")
    assert df["ts"].dt.epoch("s").to_list() == [60, 120]
    assert df["open"].to_list() == [1.0, 5.0]  # the later duplicate wins
    assert parse.ohlc_rows([], "BTC/USD", "1m").height == 0


@pytest.mark.parametrize(
    "bad",
    [[60, "1", "2", "1", "1", "1", "1"], [60, "NaN", "2", "1", "1", "1", "1", 1],
     [60, "1", "2", "-1", "1", "1", "1", 1], [60, "1", "2", "1", "1", "1", "-3", 1],
     ["60", "1", "2", "1", "1", "1", "1", 1], [60, "1", "inf", "1", "1", "1", "1", 1],
     [60, None, "2", "1", "1", "1", "1", 1], {"time": 60}],
)
def test_ohlc_rows_malformed(bad: list) -> None:
    with pytest.raises(DataError, match="row 1"):
        parse.ohlc_rows([[0, "1", "1", "1", "1", "1", "1", 1], bad], "BTC/USD", "1m")


def test_rest_ticker(market: dict) -> None:
    t = parse.rest_ticker("BTC/USD", market["tickers"]["XXBTZUSD"], CAPTURE_TIME)
    assert (t.bid, t.ask, t.last) == (30300.0, 30300.1, 30303.2)
    assert t.ts == CAPTURE_TIME
    for bad in ({"a": [], "b": ["1"], "c": ["1"]}, {"b": ["1"], "c": ["1"]},
                {"a": ["x"], "b": ["1"], "c": ["1"]}, {"a": ["0"], "b": ["1"], "c": ["1"]}):
        with pytest.raises(DataError):
            parse.rest_ticker("BTC/USD", bad, CAPTURE_TIME)


def test_ws_ticker_and_ohlc(market: dict) -> None:
    t = parse.ws_ticker(market["ws_ticker"]["data"][0], CAPTURE_TIME)
    assert (t.symbol, t.bid, t.ask, t.last) == ("BTC/USD", 105944.2, 105944.3, 105899.4)
    assert t.ts == datetime(2022, 12, 25, 9, 30, 59, 123456, tzinfo=UTC)
    no_ts = {k: v for k, v in market["ws_ticker"]["data"][0].items() if k != "timestamp"}
    assert parse.ws_ticker(no_ts, CAPTURE_TIME).ts == CAPTURE_TIME
    c = parse.ws_ohlc(market["ws_ohlc"]["data"][0], "1m")
    assert c["ts"] == datetime(2023, 10, 4, 16, 25, tzinfo=UTC)  # nanosecond text truncated
    assert set(c) == set(CANDLE_SCHEMA)
    assert math.isclose(c["volume"], 30927.68066226)
    with pytest.raises(DataError, match="interval_begin"):
        parse.ws_ohlc({**market["ws_ohlc"]["data"][0], "interval_begin": "yesterday"}, "1m")
    with pytest.raises(DataError, match="bid"):
        parse.ws_ticker({**market["ws_ticker"]["data"][0], "bid": -1}, CAPTURE_TIME)
