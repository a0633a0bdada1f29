"""engine.importer: files → validate → quarantine/upsert, into a real DuckDB store in tmp_path."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain.errors import DataError
from trading_brain.runtime import import_candle_files as import_files

CANDLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "candles"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def real_file(name: str) -> Path:
    path = CANDLES / name
    if not path.exists():
        pytest.skip(f"real candle file {path} not found (needs ../shared/data beside the checkout)")
    return path


def write_csv(path: Path, rows: list[tuple], header: str = "timestamp,open,high,low,close,volume"
              ) -> Path:
    text = "\n".join([header, *(",".join(str(v) for v in r) for r in rows)]) + "\n"
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def bars(n: int, start: datetime = T0, price: float = 100.0, step_min: int = 5) -> list[tuple]:
    out = []
    for i in range(n):
        o = price + i * 0.1
        c = o + 0.05
        ts = (start + timedelta(minutes=step_min * i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append((ts, o, c + 0.1, o - 0.1, c, 1.0 + i))
    return out


def snapshot(store: Store) -> tuple[list, list]:
    cands = store.frame("SELECT symbol, timeframe, ts, open, high, low, close, volume, source "
                        "FROM candles ORDER BY ALL").rows()
    quar = store.frame("SELECT symbol, ts, reason, source FROM candles_quarantine ORDER BY ALL").rows()
    return cands, quar


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "wh" / "warehouse.duckdb")


def test_real_binance_btc_5m_imports_cleanly_and_idempotently(store):
    path = real_file("binance_BTCUSDT_5m_2024H1.csv.gz")
    report = import_files(path, store)
    assert (report.rows_read, report.imported, report.quarantined) == (52_416, 52_416, 0)
    [series] = report.series
    assert (series.symbol, series.timeframe, series.imported) == ("BTC/USDT", "5m", 52_416)
    assert series.first_ts == "2024-01-01T00:00:00+00:00"
    summary = store.candle_summary()
    assert summary.select("symbol", "timeframe", "candles").rows() == [("BTC/USDT", "5m", 52_416)]
    first = store.read_candles(["BTC/USDT"], "5m", T0, T0 + timedelta(minutes=5))
    assert first.row(0)[3:] == (42283.58, 42397.23, 42261.02, 42397.23, 155.25731)
    again = import_files(path, store)
    assert again.imported == 52_416
    assert store.candle_summary()["candles"].to_list() == [52_416]
    assert store.execute("SELECT DISTINCT source FROM candles") == [
        ("import:binance_BTCUSDT_5m_2024H1.csv.gz",)]


def test_real_kraken_eth_outliers_go_to_quarantine(store):
    report = import_files(real_file("kraken_ETHUSD_1h_2015-2023.csv.gz"), store)
    assert report.rows_read == 63_568 and report.imported + report.quarantined == 63_568
    assert 2 <= report.quarantined <= 8
    quarantined = {t.isoformat(): r for t, r in store.execute(
        "SELECT ts, reason FROM candles_quarantine WHERE symbol = 'ETH/USD'")}
    assert "2015-08-08T17:00:00+00:00" in quarantined
    assert "2017-05-07T22:00:00+00:00" in quarantined
    stored = store.execute("SELECT count(*), min(low) FROM candles WHERE symbol = 'ETH/USD'")[0]
    assert stored[0] == report.imported and stored[1] > 0.15
    sources = store.execute("SELECT DISTINCT source FROM candles_quarantine")
    assert sources == [("import:kraken_ETHUSD_1h_2015-2023.csv.gz",)]


def test_bad_rows_are_quarantined_and_good_rows_stored(tmp_path, store):
    rows = bars(20)
    rows[3] = (rows[3][0], "nan", 1, 1, 1, 1)
    rows[7] = (rows[7][0], 100, 99, 101, 100, 1)  # high < low
    rows[11] = (rows[11][0], 100, 101, 99, 100, -3)  # negative volume
    rows.append(rows[15])  # identical duplicate
    report = import_files(write_csv(tmp_path / "ETHUSD_5.csv", rows), store)
    assert (report.rows_read, report.imported, report.quarantined, report.collapsed) == (21, 17, 3, 1)
    assert report.reasons == {"high_below_low": 1, "negative_volume": 1, "non_finite": 1}
    text = str(report)
    assert "imported 17 candle(s)" in text and "ETH/USD 5m: read 21" in text
    assert "non_finite=1" in text
    _, quar = snapshot(store)
    assert sorted(r[2] for r in quar) == ["high_below_low", "negative_volume", "non_finite"]
    assert {r[0] for r in quar} == {"ETH/USD"}
    assert store.candle_summary().select("symbol", "timeframe", "candles").rows() == [
        ("ETH/USD", "5m", 17)]


def test_a_bad_load_changes_nothing(tmp_path, store):
    import_files(write_csv(tmp_path / "BTCUSD_5m.csv", bars(30)), store)
    before = snapshot(store)
    (tmp_path / "new").mkdir()
    changed = write_csv(tmp_path / "new" / "BTCUSD_5m.csv", bars(30, price=200))
    broken = write_csv(tmp_path / "new" / "XBTUSD_1h.csv", [r[:5] for r in bars(5, step_min=60)],
                       header="timestamp,open,high,low,close")  # no volume column
    with pytest.raises(DataError, match="'volume'"):
        import_files([changed, broken], store)
    garbage = tmp_path / "new" / "ETHUSD_5m.csv"
    garbage.write_text("timestamp,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,oops,1,1\n")
    with pytest.raises(DataError, match="ETHUSD_5m.csv"):
        import_files([changed, garbage], store)
    with pytest.raises(DataError):
        import_files(tmp_path / "does-not-exist", store)
    assert snapshot(store) == before


def test_overlapping_files_collapse_or_quarantine_conflicts(tmp_path, store):
    (tmp_path / "a").mkdir()
    a = write_csv(tmp_path / "a" / "SOLUSD_5m.csv", bars(20))
    overlap = bars(30)[10:]  # rows 10..19 identical to a's
    overlap[5] = (overlap[5][0], 101.5, 102.0, 101.0, 101.6, 7.0)  # row 15 conflicts
    b = write_csv(tmp_path / "a" / "SOLUSD_5m_part2.csv", overlap)
    report = import_files(tmp_path / "a", store)
    assert report.rows_read == 40 and report.quarantined == 2 and report.imported == 29
    assert report.reasons == {"conflicting_duplicate": 2}
    assert {s for *_, s in store.execute("SELECT reason, source FROM candles_quarantine")} == {
        f"import:{a.name}", f"import:{b.name}"}
    assert store.candle_summary()["candles"].to_list() == [29]


def test_explicit_symbol_and_timeframe_override_the_name(tmp_path, store):
    path = write_csv(tmp_path / "mydata.csv.gz", bars(24, step_min=60))
    report = import_files(path, store, symbol="doge-usd", timeframe="1h")
    assert [(s.symbol, s.timeframe, s.imported) for s in report.series] == [("DOGE/USD", "1h", 24)]
    plain = import_files(write_csv(tmp_path / "other.csv", bars(24, step_min=60)), store)
    assert [(s.symbol, s.timeframe) for s in plain.series] == [("OTHER/USD", "1h")]


def test_progress_is_reported_and_report_is_json_ready(tmp_path, store):
    folder = tmp_path / "many"
    folder.mkdir()
    for name in ("BTCUSD_5m.csv", "ETHUSD_5m.csv", "SOLUSD_5m.csv.gz"):
        write_csv(folder / name, bars(12))
    (folder / "notes.txt").write_text("ignored: not a candle file")
    calls: list[tuple[int, int, str]] = []
    report = import_files(folder, store, progress=lambda d, t, m: calls.append((d, t, m)))
    assert [c[0] for c in calls] == [1, 2, 3, 4, 5] and {c[1] for c in calls} == {5}
    assert "SOLUSD_5m.csv.gz" in calls[2][2]
    doc = json.loads(json.dumps(report.to_dict()))
    assert doc["imported"] == 36 and len(doc["series"]) == 3 and doc["collapsed"] == 0
    assert store.candle_summary()["candles"].to_list() == [12, 12, 12]


def test_empty_result_writes_nothing(tmp_path, store):
    rows = [(t, 0, 0, 0, 0, 1) for t, *_ in bars(3)]  # all zero prices
    report = import_files(write_csv(tmp_path / "BTCUSD_5m.csv", rows), store)
    assert report.imported == 0 and report.quarantined == 3
    assert store.execute("SELECT count(*) FROM candles") == [(0,)]
    assert pl.DataFrame(report.to_dict()["series"])["quarantined"].to_list() == [3]
