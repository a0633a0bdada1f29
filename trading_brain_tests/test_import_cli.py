"""`trading-brain import-ohlcv` never silently overwrites stored candles (issue 9, part 3).

Run as a user runs it (the console script in a subprocess, a real home and warehouse): every
refusal is one line ``error: …`` with exit 2 and leaves the warehouse exactly as it was.
"""

from __future__ import annotations

import csv
import gzip
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain_tests.test_cli import assert_one_line_error, initialised_small_home, tb


def warehouse(home: Path) -> Store:
    return Store.open(home / "var" / "warehouse.duckdb")


def snapshot(home: Path) -> tuple[list, list, list]:
    """Every stored candle (values, source, ingested_at), quarantined row and revision."""
    store = warehouse(home)
    return (store.execute("SELECT * FROM candles ORDER BY symbol, timeframe, ts"),
            store.execute("SELECT symbol, ts, reason, source FROM candles_quarantine ORDER BY ALL"),
            store.execute("SELECT * EXCLUDE (revised_at) FROM candle_revisions ORDER BY ALL"))


@pytest.fixture
def home(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return initialised_small_home(tmp_path_factory, tmp_path / "h")


def read_rows(path: Path) -> list[list[str]]:
    with gzip.open(path, "rt") as fh:
        return list(csv.reader(fh))


def write_rows(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_hourly_file_as_5m_is_refused_and_changes_nothing(home, shared_data):
    five = shared_data / "candles" / "binance_BTCUSDT_5m_2024H1.csv.gz"
    hourly = shared_data / "candles" / "binance_BTCUSDT_1h_2024H1.csv.gz"
    out = json.loads(tb(home, "import-ohlcv", str(five), "--json").stdout)
    before = snapshot(home)
    assert len(before[0]) == out["imported"] == 52_416
    proc = tb(home, "import-ohlcv", str(hourly), "--timeframe", "5m", check=False)
    assert_one_line_error(proc, "binance_BTCUSDT_1h_2024H1.csv.gz: the candles are 1h apart")
    assert "timeframe asked is 5m" in proc.stderr
    assert snapshot(home) == before
    # a 5m file asked as 1h (finer than the timeframe) is refused the same way
    proc = tb(home, "import-ohlcv", str(five), "--timeframe", "1h", check=False)
    assert_one_line_error(proc, "the candles are 5m apart")
    assert snapshot(home) == before
    assert (out["inserted"], out["unchanged"], out["replaced"]) == (52_416, 0, 0)


def test_conflicting_import_is_refused_then_replaced_with_revisions(home, shared_data, tmp_path):
    real = shared_data / "candles" / "binance_BTCUSDT_1h_2024H1.csv.gz"
    header, *rows = read_rows(real)
    assert header == ["timestamp", "open", "high", "low", "close", "volume"]
    cols = {c: i for i, c in enumerate(header)}
    tb(home, "import-ohlcv", str(real))
    before = snapshot(home)
    assert len(before[0]) == 4_368
    # the same hours, 20 of them with close +20% (high raised to stay valid), plus 5 new hours,
    # plus one bad row that would be quarantined
    changed = [list(r) for r in rows]
    for r in changed[100:120]:
        close = float(r[cols["close"]]) * 1.2
        r[cols["close"]] = repr(close)
        r[cols["high"]] = repr(max(float(r[cols["high"]]), close))
    extra = [[_later(rows[-1][0], k), *rows[-1][1:]] for k in range(1, 6)]
    bad = [_later(rows[-1][0], 6), *rows[-1][1:5], "-1"]  # negative volume
    edited = write_rows(tmp_path / "binance_BTCUSDT_1h_edited.csv", [header, *changed, *extra, bad])

    proc = tb(home, "import-ohlcv", str(edited), check=False)
    assert_one_line_error(proc, "20 candle(s) in the file(s) differ from stored ones")
    first = changed[100]
    assert f"close {float(rows[100][cols['close']])!r} vs {float(first[cols['close']])!r}" \
        in proc.stderr
    assert "BTC/USDT 1h 2024-01-05T04:00:00+00:00" in proc.stderr and "--replace" in proc.stderr
    assert snapshot(home) == before  # not even the 5 new rows or the quarantined one

    out = json.loads(tb(home, "import-ohlcv", str(edited), "--replace", "--json").stdout)
    assert (out["inserted"], out["unchanged"], out["replaced"], out["quarantined"]) == (
        5, 4_348, 20, 1)
    [series] = out["series"]
    assert (series["inserted"], series["unchanged"], series["replaced"]) == (5, 4_348, 20)
    store = warehouse(home)
    revs = store.execute("""SELECT ts, old_close, new_close, old_source, source, reason
        FROM candle_revisions ORDER BY ts""")
    assert len(revs) == 20
    assert [round(n / o, 12) for _, o, n, *_ in revs] == [1.2] * 20
    assert {r[3:] for r in revs} == {(
        "import:binance_BTCUSDT_1h_2024H1.csv.gz", "import:binance_BTCUSDT_1h_edited.csv",
        "import --replace")}
    stored = dict(store.execute("SELECT ts, close FROM candles WHERE timeframe = '1h'"))
    assert len(stored) == 4_373
    assert stored[revs[0][0]] == revs[0][2]
    unchanged_before = {r[2]: r for r in before[0]}
    untouched = store.execute("SELECT * FROM candles WHERE ts < ? ORDER BY ts", [revs[0][0]])
    assert untouched == [unchanged_before[r[2]] for r in untouched]  # same source, same time

    # re-importing the file now stored is a no-op, reported as unchanged
    again = json.loads(tb(home, "import-ohlcv", str(edited), "--json").stdout)
    assert (again["inserted"], again["unchanged"], again["replaced"]) == (0, 4_373, 0)
    assert len(store.execute("SELECT * FROM candle_revisions")) == 20
    assert "0 new, 4373 unchanged, 0 replaced" in tb(home, "import-ohlcv", str(edited)).stdout


def _later(stamp: str, hours: int) -> str:
    """``stamp`` (``…T…Z``) plus ``hours``, in the same layout."""
    value = datetime.fromisoformat(stamp.replace("Z", "+00:00")) + timedelta(hours=hours)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_mixed_offset_and_naive_timestamps_are_all_kept_as_utc(home, tmp_path):
    rows = [["timestamp", "open", "high", "low", "close", "volume"]]
    start = datetime(2024, 3, 1)
    for i in range(48):
        t = start + timedelta(hours=i)
        stamp = ((t + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00") if i % 2
                 else t.strftime("%Y-%m-%d %H:%M:%S"))
        rows.append([stamp, "100", "110", "99", str(100 + i / 10), "2"])
    path = write_rows(tmp_path / "mixedzones.csv", rows)
    for args in ((), ("--timeframe", "1h")):
        out = json.loads(tb(home, "import-ohlcv", str(path), "--symbol", "BTC/USD", *args,
                            "--json").stdout)
        assert out["quarantined"] == 0 and out["imported"] == 48
        [series] = out["series"]
        assert (series["timeframe"], series["first_ts"], series["last_ts"]) == (
            "1h", "2024-03-01T00:00:00+00:00", "2024-03-02T23:00:00+00:00")
    closes = warehouse(home).execute(
        "SELECT ts, close FROM candles WHERE symbol = 'BTC/USD' AND timeframe = '1h' ORDER BY ts")
    assert [c for _, c in closes] == [100 + i / 10 for i in range(48)]
