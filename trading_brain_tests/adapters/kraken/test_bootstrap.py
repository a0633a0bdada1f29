"""A first Kraken run against a fake that serves like the venue (the 720 newest candles per
interval, whatever ``since`` asks): bootstrap costs one OHLC call per (symbol, interval), stores
exactly what the venue serves, warns once per (symbol, interval), and a resume costs at most one
call per interval."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from trading_brain.adapters.clock import SimClock
from trading_brain.adapters.kraken.client import KrakenClient
from trading_brain.adapters.kraken.market import KrakenMarket
from trading_brain.domain.timeframes import floor_time
from trading_brain.engine.bootstrap import bootstrap_history
from trading_brain.errors import ConfigError
from trading_brain.settings import KrakenSettings
from trading_brain_tests.fakes import kraken_data
from trading_brain_tests.fakes.kraken_server import FakeKraken

NOW = datetime(2025, 11, 11, 0, 17, 4, tzinfo=UTC)
DAYS = {"1d": 1095, "1h": 365, "5m": 30}  # the defaults: deeper than Kraken serves everywhere
INTERVALS = {"5m": 5, "1h": 60, "1d": 1440}
LENGTHS = {"5m": 3000, "1h": 1500, "1d": 900}  # more rows than the venue's window of 721
KEYS = {"BTC/USD": ("XXBTZUSD", 60_000.0), "BTC/USDT": ("XBTUSDT", 60_000.0),
        "ETH/BTC": ("XETHXXBT", 0.05)}


def venue(fk: FakeKraken, now: datetime = NOW) -> None:
    """Long synthetic series for every pair and interval, the forming candle at ``now``."""
    for i, (key, price) in enumerate(KEYS.values()):
        for tf, minutes in INTERVALS.items():
            forming = int(floor_time(now, tf).timestamp())
            fk.state.set_ohlc(key, minutes, kraken_data.synthetic_ohlc(
                forming, minutes, LENGTHS[tf], price=price, seed=i))


def make_market(fk: FakeKraken, clock: SimClock) -> KrakenMarket:
    settings = KrakenSettings(rest_url=fk.rest_url, timeout_s=2.0, max_retries=0,
                              public_calls_per_s=20.0)
    return KrakenMarket(settings, clock, client=KrakenClient.from_settings(settings))


def served(fk: FakeKraken, symbol: str, tf: str) -> list[tuple[datetime, float]]:
    """(open time, close) of the committed rows the venue serves."""
    rows = fk.state.ohlc[(KEYS[symbol][0], INTERVALS[tf])][-fk.state.ohlc_max_rows:-1]
    return [(datetime.fromtimestamp(r[0], UTC), float(r[4])) for r in rows]


def stored(store, symbol: str, tf: str) -> list[tuple[datetime, float]]:  # noqa: ANN001
    df = store.read_candles([symbol], tf).sort("ts")
    return list(zip(df["ts"].to_list(), df["close"].to_list(), strict=True))


def limit_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "import-ohlcv" in r.getMessage()]


@pytest.mark.parametrize("symbols", [["BTC/USD"], ["BTC/USD", "BTC/USDT", "ETH/BTC"]])
def test_first_run_fetches_each_interval_once_and_stores_what_the_venue_serves(
        fake_kraken: FakeKraken, store, caplog: pytest.LogCaptureFixture,  # noqa: ANN001
        symbols: list[str]) -> None:
    venue(fake_kraken)
    market = make_market(fake_kraken, SimClock(NOW))
    with caplog.at_level(logging.WARNING, logger="trading_brain"):
        reports = bootstrap_history(market, store, symbols, DAYS, now=NOW)
    calls = fake_kraken.state.calls("OHLC")
    assert len(calls) == 3 * len(symbols)  # was ~86 per symbol against a venue-like fake
    for s in symbols:
        for tf in INTERVALS:
            assert stored(store, s, tf) == served(fake_kraken, s, tf), (s, tf)
    assert all(r.quarantined == 0 and r.stored == 720 * len(symbols) for r in reports.values())
    warned = limit_warnings(caplog)
    assert len(warned) == 3 * len(symbols)  # once per (symbol, interval)
    assert {(s, tf) for s in symbols for tf in INTERVALS} == {
        (s, tf) for w in warned for s in symbols for tf in INTERVALS if f" {tf} " in w
        and f" of {s}:" in w}


def test_resume_asks_at_most_once_per_interval_and_writes_nothing_when_nothing_is_new(
        fake_kraken: FakeKraken, store, caplog: pytest.LogCaptureFixture) -> None:  # noqa: ANN001
    venue(fake_kraken)
    clock = SimClock(NOW)
    bootstrap_history(make_market(fake_kraken, clock), store, ["BTC/USD"], DAYS, now=NOW)
    before = store.candle_summary()
    first_calls = len(fake_kraken.state.calls("OHLC"))

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="trading_brain"):
        again = bootstrap_history(make_market(fake_kraken, clock), store, ["BTC/USD"], DAYS,
                                  now=NOW)
    assert len(fake_kraken.state.calls("OHLC")) == first_calls  # nothing closed since: no call
    assert all(r.stored == 0 and r.fetched == 0 for r in again.values())
    assert store.candle_summary().equals(before) and not limit_warnings(caplog)

    # one more 5m bar closes (the hour and the day do not): one call, for 5m only
    key, series = "XXBTZUSD", fake_kraken.state.ohlc[("XXBTZUSD", 5)]
    last = series[-1]
    fake_kraken.state.advance_ohlc(key, 5, [last[0] + 300, last[4], last[4], last[4], last[4],
                                            last[4], "1.00000000", 3])
    later = NOW + timedelta(minutes=5)
    clock.set(later)
    more = bootstrap_history(make_market(fake_kraken, clock), store, ["BTC/USD"], DAYS, now=later)
    sinces = [p for _, p, _ in fake_kraken.state.calls("OHLC")[first_calls:]]
    assert [p["interval"] for p in sinces] == ["5"]
    assert more["5m"].stored >= 1 and more["1h"].stored == more["1d"].stored == 0
    assert stored(store, "BTC/USD", "5m")[-1][0] == datetime.fromtimestamp(last[0], UTC)


def test_unknown_symbols_are_refused_before_any_candle_is_fetched(
        fake_kraken: FakeKraken, store) -> None:  # noqa: ANN001
    venue(fake_kraken)
    market = make_market(fake_kraken, SimClock(NOW))
    with pytest.raises(ConfigError, match="FOOBARZZ/USD, NOPE/EUR"):
        bootstrap_history(market, store, ["BTC/USD", "FOOBARZZ/USD", "NOPE/EUR"], DAYS, now=NOW)
    assert fake_kraken.state.calls("OHLC") == []
    assert store.candle_summary().height == 0


# ---- the CLI as a new Kraken user runs it (real time: the fake's candles end now) -------------

EXE = Path(sys.executable).with_name("trading-brain")


def _tb(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TRADING_BRAIN_HOME"}
    return subprocess.run([str(EXE), "--home", str(home), *args], capture_output=True, text=True,
                          env=env, timeout=300)


def _kraken_home(root: Path, fk: FakeKraken, symbols: list[str]) -> Path:
    root.mkdir()
    listed = ", ".join(f'"{s}"' for s in symbols)
    (root / "trading_brain.toml").write_text(
        f'market = "kraken"\nsymbols = [{listed}]\n[kraken]\nrest_url = "{fk.rest_url}"\n'
        "public_calls_per_s = 20\nmax_retries = 0\n")
    return root


def test_init_then_bootstrap_on_the_cli(fake_kraken: FakeKraken, tmp_path: Path) -> None:
    venue(fake_kraken, datetime.now(UTC))
    home = _kraken_home(tmp_path / "h", fake_kraken, ["BTC/USD"])
    init = _tb(home, "init", "--strategy", "none", "--json")
    assert init.returncode == 0, init.stderr
    assert json.loads(init.stdout)["candles_stored"] >= 3 * 718
    assert len(fake_kraken.state.calls("OHLC")) == 3
    warned = [line for line in init.stderr.splitlines() if "import-ohlcv" in line]
    assert len(warned) == 3, init.stderr  # once per interval, not once per chunk
    assert {tf for tf in INTERVALS for w in warned if f" {tf} candles of BTC/USD" in w} == set(
        INTERVALS)
    again = _tb(home, "bootstrap", "--json")
    assert again.returncode == 0, again.stderr
    assert len(fake_kraken.state.calls("OHLC")) <= 3 + 3  # at most one per interval
    assert "import-ohlcv" not in again.stderr


def test_init_refuses_symbols_kraken_does_not_list(fake_kraken: FakeKraken,
                                                   tmp_path: Path) -> None:
    home = _kraken_home(tmp_path / "h", fake_kraken, ["BTC/USD", "FOOBARZZ/USD"])
    proc = _tb(home, "init", "--strategy", "none")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "FOOBARZZ/USD" in lines[0]
    assert "BTC/USD" not in lines[0].split(":", 2)[-1]  # names only the unknown one
    assert fake_kraken.state.calls("OHLC") == []
    assert not (home / "var").exists()  # refused before anything was written
