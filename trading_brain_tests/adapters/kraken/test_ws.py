"""KrakenStream (WS v2) against the fake: updates, closed candles, reconnect, REST fallback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from trading_brain.adapters.clock import SimClock
from trading_brain.adapters.kraken.client import KrakenClient
from trading_brain.adapters.kraken.market import KrakenMarket
from trading_brain.adapters.kraken.ws import KrakenStream
from trading_brain.errors import ConfigError
from trading_brain.settings import KrakenSettings
from trading_brain_tests.fakes.kraken_server import FakeKraken

from .conftest import CAPTURE_TIME

WAIT = 5.0  # generous upper bound; every wait returns as soon as its condition holds
CANDLE_OPEN = datetime(2023, 10, 4, 16, 25, tzinfo=UTC)  # interval_begin of ws_ohlc_update.json


@pytest.fixture
def clock() -> SimClock:
    return SimClock(CANDLE_OPEN + timedelta(seconds=20))  # inside the captured 1m candle


def make_stream(fk: FakeKraken, clock: SimClock, **kw: object) -> KrakenStream:
    opts: dict = {"silence_s": 1.0, "backoff_base_s": 0.02, "backoff_max_s": 0.1,
                  "clock": clock, "open_timeout_s": 2.0}
    opts.update(kw)
    return KrakenStream(fk.ws_url, ["BTC/USD"], ["1m", "5m"], **opts)


@pytest.fixture
def stream(fake_kraken: FakeKraken, clock: SimClock) -> Iterator[KrakenStream]:
    s = make_stream(fake_kraken, clock).start()
    yield s
    s.stop()


def _ohlc_row(fk: FakeKraken, begin: datetime, close: float, interval: int = 1) -> dict:
    row = dict(fk.state.ws_ohlc["data"][0])
    row.update(interval=interval, close=close, high=max(close, row["high"]),
               interval_begin=begin.strftime("%Y-%m-%dT%H:%M:%S.000000000Z"))
    return row


def test_ticker_and_ohlc_updates_arrive(fake_kraken: FakeKraken, stream: KrakenStream) -> None:
    assert stream.wait_for(lambda s: s.latest_ticker("BTC/USD") is not None, WAIT)
    snap = stream.latest_ticker("BTC/USD")
    assert snap is not None and (snap.bid, snap.ask) == (105944.2, 105944.3)
    assert stream.source("BTC/USD") == "ws" and stream.mode == "ws"
    assert stream.system_status == "online"
    assert stream.wait_for(lambda s: len(fake_kraken.ws.subscribes) == 3, WAIT)
    assert {(c, p.get("interval")) for c, _, p in fake_kraken.ws.subscribes} == {
        ("ticker", None), ("ohlc", 1), ("ohlc", 5)}

    row = dict(fake_kraken.state.ws_ticker["data"][0], bid=106000.5, ask=106001.0)
    assert fake_kraken.ws.push("ticker", [row]) == 1
    assert stream.wait_for(lambda s: s.latest_ticker("BTC/USD").bid == 106000.5, WAIT)

    # the running candle is not closed until a later interval_begin arrives
    assert stream.latest_candle("BTC/USD", "1m") is None
    fake_kraken.ws.push("ohlc", [_ohlc_row(fake_kraken, CANDLE_OPEN, 106050.0)])
    fake_kraken.ws.push("ohlc", [_ohlc_row(fake_kraken, CANDLE_OPEN + timedelta(minutes=1), 1.5e5)])
    assert stream.wait_for(lambda s: s.latest_candle("BTC/USD", "1m") is not None, WAIT)
    closed = stream.latest_candle("BTC/USD", "1m")
    assert closed["ts"] == CANDLE_OPEN and closed["close"] == 106050.0  # last update of that bar
    assert stream.latest_candle("BTC/USD", "5m") is None  # other timeframe untouched


def test_candle_closes_by_the_clock_in_a_quiet_market(
    fake_kraken: FakeKraken, stream: KrakenStream, clock: SimClock
) -> None:
    assert stream.wait_for(lambda s: s._forming.get(("BTC/USD", "1m")) is not None, WAIT)
    assert stream.latest_candle("BTC/USD", "1m") is None
    clock.advance(timedelta(minutes=1))
    assert stream.latest_candle("BTC/USD", "1m")["ts"] == CANDLE_OPEN


def test_reconnects_and_resubscribes_after_drop(fake_kraken: FakeKraken,
                                                stream: KrakenStream) -> None:
    assert stream.wait_for(lambda s: len(fake_kraken.ws.subscribes) == 3, WAIT)
    assert fake_kraken.ws.drop() == 1
    assert stream.wait_for(lambda s: s.connects >= 2 and len(fake_kraken.ws.subscribes) == 6, WAIT)
    assert fake_kraken.ws.connections == 2
    row = dict(fake_kraken.state.ws_ticker["data"][0], bid=99999.0)
    assert stream.wait_for(lambda s: fake_kraken.ws.push("ticker", [row]) == 1 and
                           s.latest_ticker("BTC/USD").bid == 99999.0, WAIT)
    assert stream.mode == "ws"


def test_rest_fallback_when_the_stream_goes_silent(fake_kraken: FakeKraken) -> None:
    settings = KrakenSettings(rest_url=fake_kraken.rest_url, timeout_s=2.0, public_calls_per_s=20.0)
    clock = SimClock(CAPTURE_TIME)  # the REST payloads' time
    market = KrakenMarket(settings, clock, client=KrakenClient.from_settings(settings))
    s = make_stream(fake_kraken, clock, silence_s=0.4, rest_poll_s=0.2, fallback=market)
    with s:
        assert s.wait_for(lambda s: s.source("BTC/USD") == "ws", WAIT)
        fake_kraken.ws.silent = True
        assert s.wait_for(lambda s: s.mode == "rest" and s.source("BTC/USD") == "rest", WAIT)
        t = s.latest_ticker("BTC/USD")
        assert t is not None and t.last == 30303.2  # the REST ticker of XXBTZUSD
        rest_bar = datetime(2025, 11, 11, 0, 10, tzinfo=UTC)  # newest closed 5m bar at CAPTURE_TIME
        assert s.wait_for(lambda s: (s.latest_candle("BTC/USD", "5m") or {}).get("ts") == rest_bar,
                          WAIT)
        assert s.rest_polls >= 1 and s.connects >= 2  # it also kept trying to reconnect
        fake_kraken.ws.silent = False
        assert s.wait_for(lambda s: s.mode == "ws" and s.source("BTC/USD") == "ws", WAIT)
    assert s.mode == "stopped"


def test_silence_without_fallback_still_reconnects(fake_kraken: FakeKraken,
                                                   clock: SimClock) -> None:
    with make_stream(fake_kraken, clock, silence_s=0.3) as s:
        assert s.wait_for(lambda s: s.connects == 1 and s.latest_ticker("BTC/USD"), WAIT)
        fake_kraken.ws.silent = True
        assert s.wait_for(lambda s: s.mode == "rest" and s.connects >= 2, WAIT)
        assert s.source("BTC/USD") == "ws"  # nothing to poll: the cache keeps the WS value


def test_bad_messages_and_refused_symbols_do_not_kill_the_stream(
    fake_kraken: FakeKraken, clock: SimClock
) -> None:
    with KrakenStream(fake_kraken.ws_url, ["BTC/USD", "XBT/USD"], ["1m"], clock=clock,
                      silence_s=2.0, backoff_base_s=0.02) as s:
        assert s.wait_for(lambda s: len(s.errors) >= 2, WAIT)
        assert "Currency pair not supported XBT/USD" in s.errors[0]
        bad = dict(fake_kraken.state.ws_ticker["data"][0], bid="lots")
        fake_kraken.ws.push("ticker", [bad])
        assert s.wait_for(lambda s: s.parse_errors == 1, WAIT)
        good = dict(fake_kraken.state.ws_ticker["data"][0], bid=1.25)
        fake_kraken.ws.push("ticker", [good])
        assert s.wait_for(lambda s: s.latest_ticker("BTC/USD").bid == 1.25, WAIT)
        assert s.connects == 1


def test_unreachable_server_and_clean_stop(clock: SimClock) -> None:
    s = KrakenStream("ws://127.0.0.1:9/v2", ["BTC/USD"], ["5m"], clock=clock, silence_s=0.3,
                     backoff_base_s=0.02, backoff_max_s=0.05, open_timeout_s=0.5).start()
    assert s.wait_for(lambda s: s.mode == "rest", WAIT)
    assert s.latest_ticker("BTC/USD") is None and s.connects == 0
    s.stop()
    assert s._thread is not None and not s._thread.is_alive() and s.mode == "stopped"
    s.stop()  # idempotent


def test_from_settings_uses_the_kraken_section() -> None:
    settings = KrakenSettings(ws_url="ws://127.0.0.1:1/v2", ws_silence_s=7.5)
    s = KrakenStream.from_settings(settings, ["BTC/USD", "ETH/USD"], ["5m", "1h", "1d"])
    assert (s.ws_url, s.silence_s, s.timeframes) == ("ws://127.0.0.1:1/v2", 7.5, ["5m", "1h", "1d"])
    assert s.mode == "stopped" and s.latest_ticker("BTC/USD") is None
    with pytest.raises(ConfigError, match="4h"):
        KrakenStream("ws://127.0.0.1:1/v2", ["BTC/USD"], ["5m", "4h"])
