"""KrakenClient against the fake Kraken: envelope, retries, no-retry, errors, OHLC paging."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from trading_brain.adapters.kraken.client import KrakenClient
from trading_brain.errors import (
    AmbiguousOrderError,
    ConfigError,
    DataError,
    RateLimited,
    TemporaryError,
)
from trading_brain_tests.fakes import kraken_data
from trading_brain_tests.fakes.kraken_server import FakeKraken

from .conftest import FakeTime


def make_client(fk: FakeKraken, ft: FakeTime | None = None, **kw: object) -> KrakenClient:
    """Fast client: fake time (sleeps recorded, not slept) unless ``ft`` is None."""
    opts: dict = {"timeout_s": 2.0, "max_retries": 3, "public_calls_per_s": 1000.0,
                  "backoff_base_s": 0.1, "rng": random.Random(1)}
    if ft is not None:
        opts.update(monotonic=ft.monotonic, sleep=ft.sleep)
    opts.update(kw)
    return KrakenClient(fk.rest_url, **opts)


def test_public_calls(fake_kraken: FakeKraken) -> None:
    c = make_client(fake_kraken)
    assert c.server_time() == datetime(2025, 11, 11, 0, 17, 4, tzinfo=UTC)
    assert c.system_status() == "online"
    assert set(c.asset_pairs()) == {"XBTUSDT", "XETHXXBT", "XXBTZUSD"}
    assert list(c.asset_pairs(["BTC/USD"])) == ["XXBTZUSD"]
    assert list(c.ticker(["XBTUSD"])) == ["XXBTZUSD"]  # keyed by pair key, not the altname sent


@pytest.mark.parametrize(
    "fault",
    [{"errors": ["EService:Unavailable"]}, {"status": 502}, {"status": 520},
     {"errors": ["EService:Busy"]}, {"status": 429}, {"errors": ["EGeneral:Too many requests"]}],
)
def test_retry_then_success(fake_kraken: FakeKraken, fake_time: FakeTime, fault: dict) -> None:
    fake_kraken.state.add_fault("Time", times=2, **fault)
    c = make_client(fake_kraken, fake_time)
    assert c.server_time().year == 2025
    assert len(fake_kraken.state.calls("Time")) == 3
    backoffs = [s for s in fake_time.sleeps if s >= 0.05]
    assert len(backoffs) == 2
    assert 0.05 <= backoffs[0] <= 0.1 and 0.1 <= backoffs[1] <= 0.2  # exponential, jittered


def test_retry_after_timeout(fake_kraken: FakeKraken, fake_time: FakeTime) -> None:
    fake_kraken.state.add_fault("SystemStatus", delay_s=0.6)
    c = make_client(fake_kraken, fake_time, timeout_s=0.2)
    assert c.system_status() == "online"
    assert len(fake_kraken.state.calls("SystemStatus")) == 2


def test_retries_exhausted(fake_kraken: FakeKraken, fake_time: FakeTime) -> None:
    fake_kraken.state.add_fault("Time", status=503, times=None)
    c = make_client(fake_kraken, fake_time, max_retries=2)
    with pytest.raises(TemporaryError, match="HTTP 503"):
        c.server_time()
    assert len(fake_kraken.state.calls("Time")) == 3


@pytest.mark.parametrize(
    ("fault", "kind"),
    [({"errors": ["EGeneral:Invalid arguments"]}, ConfigError),
     ({"errors": ["EQuery:Unknown asset pair"]}, ConfigError),
     ({"body": b'{"error": [], "result": {"unixtime": 17'}, DataError),
     ({"body": b"<html>edge page</html>"}, DataError),
     ({"body": b"[1, 2]"}, DataError),
     ({"body": b'{"error": []}'}, DataError),
     ({"body": b'{"error": [], "result": {"unixtime": "soon"}}'}, DataError),
     ({"status": 404}, Exception)],
)
def test_no_retry(fake_kraken: FakeKraken, fake_time: FakeTime, fault: dict, kind: type) -> None:
    fake_kraken.state.add_fault("Time", times=None, **fault)
    c = make_client(fake_kraken, fake_time)
    with pytest.raises(kind) as info:
        c.server_time()
    assert not isinstance(info.value, TemporaryError)
    assert len(fake_kraken.state.calls("Time")) == 1
    assert fake_time.sleeps == []


def test_bad_rest_url_is_a_config_error(fake_time: FakeTime) -> None:
    c = KrakenClient("api.kraken.com", timeout_s=1, monotonic=fake_time.monotonic,
                     sleep=fake_time.sleep)
    with pytest.raises(ConfigError, match="kraken.rest_url"):
        c.server_time()
    assert fake_time.sleeps == []


def test_connection_refused_is_retried_then_temporary(fake_time: FakeTime) -> None:
    c = KrakenClient("http://127.0.0.1:9", timeout_s=1, max_retries=2, backoff_base_s=0.1,
                     public_calls_per_s=1000.0,
                     monotonic=fake_time.monotonic, sleep=fake_time.sleep)
    with pytest.raises(TemporaryError, match="network error"):
        c.server_time()
    assert len([s for s in fake_time.sleeps if s >= 0.05]) == 2


def test_unknown_pair_from_the_venue(fake_kraken: FakeKraken) -> None:
    with pytest.raises(ConfigError, match="Unknown asset pair"):
        make_client(fake_kraken).ohlc_page("NOPEUSD", 5)
    with pytest.raises(ValueError):
        make_client(fake_kraken).ohlc_page("XBTUSD", 7)


def test_throttled_waits_until_its_timestamp(fake_kraken: FakeKraken, fake_time: FakeTime) -> None:
    wall = 1_762_820_224.0
    fake_kraken.state.add_fault("Ticker", errors=[f"EService:Throttled: {int(wall) + 4}"])
    c = make_client(fake_kraken, fake_time, wall_time=lambda: wall)
    assert list(c.ticker(["XBTUSD"])) == ["XXBTZUSD"]
    assert sum(fake_time.sleeps) >= 4.0  # the limiter and the retry honoured the timestamp
    assert len(fake_kraken.state.calls("Ticker")) == 2


def test_rate_limited_without_retries_is_raised(fake_kraken: FakeKraken,
                                                fake_time: FakeTime) -> None:
    fake_kraken.state.add_fault("Time", errors=["EAPI:Rate limit exceeded"])
    with pytest.raises(RateLimited):
        make_client(fake_kraken, fake_time, max_retries=0).server_time()


def test_non_idempotent_call_is_never_retried(fake_kraken: FakeKraken, fake_time: FakeTime) -> None:
    fake_kraken.state.add_fault("Time", status=502, times=None)
    c = make_client(fake_kraken, fake_time)
    with pytest.raises(AmbiguousOrderError) as info:
        c._call("public", "Time", None, idempotent=False)
    assert isinstance(info.value.__cause__, TemporaryError)
    assert len(fake_kraken.state.calls("Time")) == 1


def test_ohlc_excludes_the_forming_candle(fake_kraken: FakeKraken) -> None:
    c = make_client(fake_kraken)
    raw = c.ohlc_page("XBTUSDT", 1)
    assert len(raw.rows) == 721 and raw.rows[-1][0] == 1762820220 and raw.last == 1762820160
    page = c.ohlc("XBTUSDT", 1)
    times = [r[0] for r in page.rows]
    assert len(times) == 720 and times == sorted(set(times))
    assert times[-1] == page.last == 1762820160 and 1762820220 not in times
    # one request each: asking again from `last` could never bring older rows
    assert [p.get("since") for _, p, _ in fake_kraken.state.calls("OHLC")] == [None, None]


def test_ohlc_polls_new_candles_with_last(fake_kraken: FakeKraken) -> None:
    c = make_client(fake_kraken)
    first = c.ohlc("XBTUSDT", 5)
    st = fake_kraken.state
    forming = st.ohlc_series("XBTUSDT", 5)[-1]
    st.advance_ohlc("XBTUSDT", 5)
    st.advance_ohlc("XBTUSDT", 5)
    second = c.ohlc("XBTUSDT", 5, since=first.last)
    assert [r[0] for r in second.rows] == [forming[0], forming[0] + 300]
    assert second.last == forming[0] + 300
    assert fake_kraken.state.calls("OHLC")[-1][1]["since"] == str(first.last)


def test_ohlc_serves_the_newest_window_whatever_since_says(fake_kraken: FakeKraken) -> None:
    """Like the venue: 720 newest committed rows (+ the forming one), however old ``since`` is;
    ``since`` inside the window only filters it; the client makes exactly one request."""
    st = fake_kraken.state
    forming = 1762819200
    rows = kraken_data.synthetic_ohlc(forming, 5, 2000)
    st.set_ohlc("XBTUSDT", 5, rows)
    c = make_client(fake_kraken)
    page = c.ohlc("XBTUSDT", 5, since=rows[0][0])  # asks for 2000 rows of history
    assert [r[0] for r in page.rows] == [r[0] for r in rows[-721:-1]]  # the newest 720 only
    assert page.last == rows[-2][0] and len(st.calls("OHLC")) == 1
    tail = c.ohlc("XBTUSDT", 5, since=rows[-11][0])  # inside the window: rows after since
    assert [r[0] for r in tail.rows] == [r[0] for r in rows[-10:-1]]
    assert len(st.calls("OHLC")) == 2


def test_ohlc_rejects_malformed_shapes(fake_kraken: FakeKraken) -> None:
    c = make_client(fake_kraken)
    for body in (b'{"error": [], "result": {"XBTUSDT": [[1, "1"]]}}',
                 b'{"error": [], "result": {"XBTUSDT": [["t"]], "last": 1}}',
                 b'{"error": [], "result": {"A": [], "B": [], "last": 1}}',
                 b'{"error": [], "result": {"XBTUSDT": "rows", "last": 1}}'):
        fake_kraken.state.add_fault("OHLC", body=body)
        with pytest.raises(DataError):
            c.ohlc("XBTUSDT", 1)
