"""engine.importer: files → validate → quarantine/upsert, into a real DuckDB store in tmp_path."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain.app.runtime import import_candle_files as import_files
from trading_brain.errors import DataError
from trading_brain_tests.conftest import require_shared

CANDLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "candles"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def real_file(name: str) -> Path:
    return require_shared(CANDLES / name, "real candle file")


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
    quar = store.frame("SELECT symbol, ts, reason, source FROM candles_quarantine "
                       "ORDER BY ALL").rows()
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
    stored = store.execute("SELECT * FROM candles ORDER BY ts")
    again = import_files(path, store)
    assert again.imported == 52_416
    assert (again.inserted, again.unchanged, again.replaced) == (0, 52_416, 0)  # a no-op
    assert store.execute("SELECT * FROM candles ORDER BY ts") == stored  # same ingested_at
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
    assert (report.rows_read, report.imported, report.quarantined, report.collapsed) == (
        21, 17, 3, 1)
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


# -- issue 9: stored candles are evidence -----------------------------------------------------
def revisions(store: Store) -> list:
    return store.execute("SELECT * EXCLUDE (revised_at) FROM candle_revisions ORDER BY ALL")


def test_conflicts_are_refused_all_or_nothing_unless_replace(tmp_path, store):
    import_files(write_csv(tmp_path / "BTCUSD_5m.csv", bars(30)), store)
    before = snapshot(store), revisions(store)
    rows = bars(40)  # 10 new bars after the stored 30
    for i in (4, 9, 17):
        ts, o, h, lo, c, v = rows[i]
        rows[i] = (ts, o, h + 1, lo, c + 1, v)  # close moved up, still a valid bar
    rows.append((bars(41)[40][0], 100, 101, 99, 100, -1))  # a bad row, quarantined if written
    path = write_csv(tmp_path / "BTCUSD_5m_fixed.csv", rows)
    with pytest.raises(DataError) as err:
        import_files(path, store)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("3 candle(s) in the file(s) differ from stored ones")
    assert "first: BTC/USD 5m 2024-01-01T00:20:00+00:00" in msg
    assert f"close {bars(30)[4][4]!r} vs {bars(30)[4][4] + 1!r}" in msg and "--replace" in msg
    assert (snapshot(store), revisions(store)) == before  # nothing: no new bar, no quarantine

    report = import_files(path, store, replace=True)
    assert (report.inserted, report.unchanged, report.replaced, report.quarantined) == (
        10, 27, 3, 1)
    [series] = report.series
    assert (series.inserted, series.unchanged, series.replaced) == (10, 27, 3)
    assert report.to_dict()["replaced"] == 3 and "3 replaced" in str(report)
    revs = store.execute("""SELECT ts, old_close, new_close, old_source, source, reason
        FROM candle_revisions ORDER BY ts""")
    assert [(r[0], r[1], r[2]) for r in revs] == [
        (T0 + timedelta(minutes=5 * i), bars(30)[i][4], bars(30)[i][4] + 1) for i in (4, 9, 17)]
    assert {r[3:] for r in revs} == {
        ("import:BTCUSD_5m.csv", "import:BTCUSD_5m_fixed.csv", "import --replace")}
    closes = dict(store.execute("SELECT ts, close FROM candles"))
    assert len(closes) == 40 and closes[T0 + timedelta(minutes=20)] == bars(30)[4][4] + 1


def test_float_representation_is_not_a_conflict(tmp_path, store):
    import_files(write_csv(tmp_path / "ETHUSD_1h.csv", bars(5, step_min=60)), store)
    noisy = [(ts, repr(o + 1e-13), h, lo, c, v) for ts, o, h, lo, c, v in bars(5, step_min=60)]
    assert float(noisy[0][1]) != bars(1)[0][1]  # a different double, the same price
    report = import_files(write_csv(tmp_path / "ETHUSD_1h_b.csv", noisy), store)
    assert (report.inserted, report.unchanged, report.replaced) == (0, 5, 0)
    moved = [(ts, o + 0.01, h, lo, c, v) for ts, o, h, lo, c, v in bars(5, step_min=60)]
    with pytest.raises(DataError, match="5 candle"):
        import_files(write_csv(tmp_path / "ETHUSD_1h_c.csv", moved), store)


def test_sync_upserts_still_overwrite_and_keep_the_old_bar(tmp_path, store):
    """The live sync's overlap stores a revised bar again (no refusal), now with a record."""
    from trading_brain_tests.conftest import make_candles

    first = make_candles("BTC/USD", "5m", 6, start=T0)
    store.upsert_candles(first, source="kraken")
    store.upsert_candles(first.tail(1), source="kraken")  # overlap, same values: no revision
    assert revisions(store) == []
    revised = first.tail(1).with_columns(pl.col("close") * 1.001, pl.col("high") * 1.002)
    assert store.upsert_candles(revised, source="kraken") == 1
    stored = store.read_candles(["BTC/USD"], "5m")
    assert stored.row(5) == revised.row(0)
    [rev] = store.execute("""SELECT ts, old_close, new_close, old_source, source, reason
        FROM candle_revisions""")
    assert rev == (revised["ts"][0], first["close"][5], revised["close"][0], "kraken", "kraken",
                   "sync")
    # an import agreeing with what the sync stored is a no-op
    rows = [(t.strftime("%Y-%m-%dT%H:%M:%SZ"), *map(repr, r)) for t, *r in
            stored.select("ts", "open", "high", "low", "close", "volume").iter_rows()]
    report = import_files(write_csv(tmp_path / "BTCUSD_5m.csv", rows), store)
    assert (report.inserted, report.unchanged) == (0, 6)


def test_spacing_must_match_the_timeframe(tmp_path, store):
    hourly = bars(48, step_min=60)
    with pytest.raises(DataError, match=r"1h apart .* timeframe asked is 5m"):
        import_files(write_csv(tmp_path / "data.csv", hourly), store, timeframe="5m")
    with pytest.raises(DataError, match=r"1h apart .* timeframe in the file name is 5m"):
        import_files(write_csv(tmp_path / "BTCUSD_5m.csv", hourly), store)
    with pytest.raises(DataError, match=r"5m apart .* timeframe asked is 1h"):
        import_files(write_csv(tmp_path / "fine.csv", bars(48)), store, timeframe="1h")
    assert store.execute("SELECT count(*) FROM candles") == [(0,)]
    # a sparse venue export (most gaps one bar, some longer) is still hourly
    sparse = [r for i, r in enumerate(hourly) if i % 5 not in (2, 3)]
    report = import_files(write_csv(tmp_path / "XBTUSD_60.csv", sparse), store, timeframe="1h")
    assert report.imported == len(sparse) and report.series[0].timeframe == "1h"


def test_mixed_offset_and_naive_timestamps_are_utc(tmp_path, store):
    rows = []
    for i, (ts, *values) in enumerate(bars(24, step_min=60)):
        t = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        rows.append(((t + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00") if i % 2
                     else t.strftime("%Y-%m-%d %H:%M:%S"), *values))
    report = import_files(write_csv(tmp_path / "mixed.csv", rows), store, symbol="BTC/USD")
    assert (report.imported, report.quarantined) == (24, 0)
    assert report.series[0].timeframe == "1h"
    stamps = [t for (t,) in store.execute("SELECT ts FROM candles ORDER BY ts")]
    assert stamps == [T0 + timedelta(hours=i) for i in range(24)]
