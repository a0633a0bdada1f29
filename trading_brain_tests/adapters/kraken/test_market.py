"""KrakenMarket (ports.MarketData) against the fake Kraken built from the real payloads."""

from __future__ import annotations

from datetime import timedelta

import pytest

from trading_brain.adapters.clock import SimClock
from trading_brain.adapters.kraken.client import KrakenClient
from trading_brain.adapters.kraken.market import KrakenMarket
from trading_brain.domain.candles import CANDLE_SCHEMA
from trading_brain.domain.timeframes import floor_time
from trading_brain.errors import ConfigError, DataError
from trading_brain.ports import MarketData
from trading_brain.settings import KrakenSettings
from trading_brain_tests.fakes.kraken_server import FakeKraken

from .conftest import CAPTURE_TIME


def make_market(fk: FakeKraken, clock: SimClock | None = None) -> KrakenMarket:
    settings = KrakenSettings(rest_url=fk.rest_url, ws_url=fk.ws_url, timeout_s=2.0,
                              max_retries=1, public_calls_per_s=20.0)
    client = KrakenClient.from_settings(settings, backoff_base_s=0.01)
    return KrakenMarket(settings, clock or SimClock(CAPTURE_TIME), client=client)


def test_is_a_market_data_port(fake_kraken: FakeKraken) -> None:
    m = make_market(fake_kraken)
    assert isinstance(m, MarketData) and m.name == "kraken"


def test_asset_pairs(fake_kraken: FakeKraken) -> None:
    pairs = make_market(fake_kraken).asset_pairs(["BTC/USD", "BTC/USDT"])
    assert pairs["BTC/USD"].venue_name == "XXBTZUSD" and pairs["BTC/USD"].altname == "XBTUSD"
    assert pairs["BTC/USD"].fee_taker == pytest.approx(0.0026)
    assert pairs["BTC/USDT"].venue_name == "XBTUSDT"
    assert pairs["BTC/USDT"].fee_maker == pytest.approx(0.0025)


@pytest.mark.parametrize(("tf", "step"), [("5m", 300), ("1h", 3600), ("1d", 86400)])
def test_candles_only_closed_bars_in_range(fake_kraken: FakeKraken, tf: str, step: int) -> None:
    m = make_market(fake_kraken)
    start, end = CAPTURE_TIME - timedelta(days=2), CAPTURE_TIME + timedelta(days=1)
    df = m.candles("BTC/USD", tf, start, end)  # type: ignore[arg-type]
    assert dict(df.schema) == CANDLE_SCHEMA
    assert df.height > 0 and df["ts"].is_sorted() and df["ts"].n_unique() == df.height
    assert set(df["symbol"]) == {"BTC/USD"} and set(df["timeframe"]) == {tf}
    forming = floor_time(CAPTURE_TIME, tf)
    assert df["ts"].max() == forming - timedelta(seconds=step)  # newest closed bar, no more
    assert (df["ts"].dt.epoch("s") % step == 0).all()
    sent = fake_kraken.state.calls("OHLC")[0][1]
    assert sent["pair"] == "XBTUSD" and sent["interval"] == str(step // 60)


def test_candles_respect_the_adapter_clock_and_range(fake_kraken: FakeKraken) -> None:
    clock = SimClock(CAPTURE_TIME - timedelta(hours=4, minutes=2))
    m = make_market(fake_kraken, clock)
    df = m.candles("BTC/USD", "5m", CAPTURE_TIME - timedelta(hours=6), CAPTURE_TIME)
    assert df["ts"].max() == floor_time(clock.now(), "5m") - timedelta(minutes=5)
    assert df["ts"].min() >= CAPTURE_TIME - timedelta(hours=6)
    end = CAPTURE_TIME - timedelta(hours=5)
    narrow = m.candles("BTC/USD", "5m", CAPTURE_TIME - timedelta(hours=6), end)
    assert narrow.height == 12 and narrow["ts"].max() < end


def test_candles_match_the_raw_capture(fake_kraken: FakeKraken) -> None:
    m = make_market(fake_kraken)
    df = m.candles("BTC/USDT", "1m", CAPTURE_TIME - timedelta(days=1), CAPTURE_TIME)
    raw = {r[0]: r for r in fake_kraken.state.ohlc_1m["XBTUSDT"][:-1]}
    assert df.height == len(raw) == 720
    row = df.row(100, named=True)
    src = raw[int(row["ts"].timestamp())]
    assert (row["open"], row["high"], row["low"], row["close"], row["volume"]) == tuple(
        float(x) for x in (src[1], src[2], src[3], src[4], src[6]))


def test_tickers(fake_kraken: FakeKraken) -> None:
    clock = SimClock(CAPTURE_TIME)
    t = make_market(fake_kraken, clock).tickers(["BTC/USD", "BTC/USDT"])
    assert (t["BTC/USD"].bid, t["BTC/USD"].ask, t["BTC/USD"].last) == (30300.0, 30300.1, 30303.2)
    assert t["BTC/USDT"].last == 105899.4 and t["BTC/USD"].ts == CAPTURE_TIME
    assert fake_kraken.state.calls("Ticker")[0][1]["pair"] == "XBTUSD,XBTUSDT"


def test_unknown_symbol_and_timeframe(fake_kraken: FakeKraken) -> None:
    m = make_market(fake_kraken)
    with pytest.raises(ConfigError, match="FOO/USD"):
        m.candles("FOO/USD", "5m", CAPTURE_TIME - timedelta(hours=1), CAPTURE_TIME)
    with pytest.raises(ConfigError, match="FOO/USD"):
        m.tickers(["FOO/USD"])
    with pytest.raises(ConfigError):
        m.candles("BTC/USD", "4h", CAPTURE_TIME, CAPTURE_TIME)  # type: ignore[arg-type]


def test_malformed_venue_data_stores_nothing(fake_kraken: FakeKraken) -> None:
    m = make_market(fake_kraken)
    m.asset_pairs(["BTC/USD"])  # pair map cached
    fake_kraken.state.add_fault("OHLC", body=b'{"error": [], "result": {"XXBTZUSD": '
                                             b'[[1762819800, "NaN", "1", "1", "1", "1", "1", 1], '
                                             b'[1762820100, "1", "1", "1", "1", "1", "1", 1]], '
                                             b'"last": 1762819800}}')
    with pytest.raises(DataError, match="open"):
        m.candles("BTC/USD", "5m", CAPTURE_TIME - timedelta(hours=1), CAPTURE_TIME)
    fake_kraken.state.add_fault("Ticker", body=b"not json at all")
    with pytest.raises(DataError, match="JSON"):
        m.tickers(["BTC/USD"])
    bad = dict(fake_kraken.state.tickers["XXBTZUSD"], b=["-5", "1", "1"])
    fake_kraken.state.tickers["XXBTZUSD"] = bad
    with pytest.raises(DataError, match="b"):
        m.tickers(["BTC/USD"])


def test_pair_metadata_is_cached(fake_kraken: FakeKraken) -> None:
    m = make_market(fake_kraken)
    m.asset_pairs(["BTC/USD"])
    m.tickers(["BTC/USD"])
    m.candles("BTC/USD", "1h", CAPTURE_TIME - timedelta(hours=3), CAPTURE_TIME)
    assert len(fake_kraken.state.calls("AssetPairs")) == 1
