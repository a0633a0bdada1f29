"""The warehouse: migrations, idempotent upserts, and two processes sharing one file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime

import duckdb
import polars as pl
import pytest

from trading_brain.adapters.duckdb import Store, migrations
from trading_brain.adapters.duckdb.connection import connect, in_transaction, run, transaction
from trading_brain.errors import DataError, OperationalError, WarehouseLocked
from trading_brain_tests.conftest import make_candles


def test_migrations_applied_once_and_recorded(tmp_path):
    path = tmp_path / "w.duckdb"
    store = Store(path)
    first = store.migrate()
    assert first == [v for v, _, _ in migrations.available()]
    assert store.migrate() == []  # idempotent at every start
    tables = {r[0] for r in store.execute("SELECT table_name FROM information_schema.tables")}
    assert {"candles", "indicators", "asset_pairs", "system_meta", "schema_migrations"} <= tables


def test_old_database_is_upgraded(tmp_path):
    path = tmp_path / "w.duckdb"
    with connect(path) as con:  # a database from before migration 1 existed
        con.execute("CREATE TABLE legacy(x INT)").fetchall()
    assert Store(path).migrate() == [v for v, _, _ in migrations.available()]


def test_newer_database_is_refused_and_left_unchanged(tmp_path):
    path = tmp_path / "w.duckdb"
    Store(path).migrate()
    newest = migrations.available()[-1][0]
    with connect(path) as con:
        con.execute("INSERT INTO schema_migrations VALUES (?, 'future', now())",
                    [newest + 1]).fetchall()
    with pytest.raises(OperationalError, match=f"version {newest + 1}.*upgrade trading-brain"):
        Store(path).migrate()
    assert Store(path).schema_version() == newest + 1


def test_upsert_is_idempotent_and_replaces(store):
    df = make_candles(n=50)
    assert store.upsert_candles(df, "t") == 50
    assert store.upsert_candles(df, "t") == 50
    changed = df.with_columns(pl.when(pl.int_range(50) == 3).then(pl.col("close") * 1.0001)
                              .otherwise(pl.col("close")).alias("close"))
    store.upsert_candles(changed.slice(3, 1), "t")
    back = store.read_candles(["BTC/USD"], "5m")
    assert back.height == 50
    assert back["close"][3] == pytest.approx(changed["close"][3], rel=0, abs=0)
    assert store.candle_audit("5m", datetime(2025, 1, 1, tzinfo=UTC),
                              datetime(2027, 1, 1, tzinfo=UTC))["duplicates"] == 0


def test_batch_with_duplicate_keys_writes_nothing(store):
    df = make_candles(n=5)
    with pytest.raises(DataError, match="duplicate"):
        store.upsert_candles(pl.concat([df, df.slice(0, 1)]), "t")
    assert store.read_candles(None, "5m").is_empty()


def test_failed_write_rolls_back(store, monkeypatch):
    store.upsert_candles(make_candles(n=5), "t")
    bad = make_candles(n=5).with_columns(pl.lit(None, pl.Float64).alias("open"))  # NOT NULL
    with pytest.raises(duckdb.Error):
        store.upsert_candles(bad, "t")
    assert store.read_candles(None, "5m").height == 5  # the delete was rolled back too


def test_session_shares_one_connection(store):
    with store.session():
        store.set_meta("k", "1")
        with store.connect() as a, store.connect() as b:
            assert a is b
        assert store.get_meta("k") == "1"



def test_nested_transaction_is_part_of_the_outer_one(store):
    """A nested ``transaction`` neither commits nor rolls back: the outermost decides."""
    with store.session(), store.connect() as con:
        with transaction(con):
            store.set_meta("a", "1")
            with transaction(con):  # what a ledger write does inside simulate's chunk
                store.set_meta("b", "2")
            assert in_transaction(con)
        assert not in_transaction(con)
        assert store.get_meta("b") == "2"
        with pytest.raises(RuntimeError), transaction(con):
            store.set_meta("c", "3")
            with transaction(con):
                store.set_meta("d", "4")
                raise RuntimeError("boom")
        assert store.get_meta("c") is None and store.get_meta("d") is None  # all rolled back
        assert not in_transaction(con)
        with pytest.raises(duckdb.Error), transaction(con):  # a swallowed failure aborts the
            store.set_meta("f", "6")  # transaction: the end raises, no silent rollback
            with pytest.raises(duckdb.Error):
                run(con, "BEGIN TRANSACTION")
        assert store.get_meta("f") is None and not in_transaction(con)
        with transaction(con):  # usable again
            store.set_meta("e", "5")
    assert store.get_meta("e") == "5"

HOLDER = textwrap.dedent("""
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    con.execute("INSERT INTO system_meta VALUES ('holder', 'x', now())").fetchall()
    print("locked", flush=True)
    if sys.argv[2] == "stdin":  # hold until the test says so
        sys.stdin.readline()
    else:
        time.sleep(float(sys.argv[2]))
    con.close()
""")


def _hold(path, seconds):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_process_waits_for_the_lock_instead_of_failing(tmp_path):
    path = tmp_path / "w.duckdb"
    Store(path).migrate()
    proc = _hold(path, "stdin")
    store = Store(path, lock_budget_s=60)
    done, errors = threading.Event(), []

    def write() -> None:
        try:
            store.upsert_candles(make_candles(n=3), "t")  # blocks, then succeeds
        except BaseException as e:  # reported by the assertion below
            errors.append(e)
        finally:
            done.set()

    writer = threading.Thread(target=write)
    writer.start()
    assert not done.wait(0.5)  # it cannot finish while the lock is held: it waits, no error
    proc.stdin.write("release\n")
    proc.stdin.flush()
    writer.join(60)
    assert done.is_set() and errors == []
    proc.wait(5)
    assert store.read_candles(None, "5m").height == 3
    assert store.get_meta("holder") == "x"


def test_lock_budget_exhausted_is_a_clear_temporary_error(tmp_path):
    path = tmp_path / "w.duckdb"
    Store(path).migrate()
    proc = _hold(path, 3)
    try:
        with pytest.raises(WarehouseLocked, match="locked by another process; gave up after"):
            Store(path, lock_budget_s=0.3).get_meta("x")
    finally:
        proc.wait(10)


CONCURRENT_WRITER = textwrap.dedent("""
    import sys
    from datetime import UTC, datetime, timedelta
    import polars as pl
    from trading_brain.adapters.duckdb import Store
    store = Store(sys.argv[1], lock_budget_s=60)
    sym = sys.argv[2]
    for i in range(15):
        t = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=5 * i)
        df = pl.DataFrame({"symbol": [sym], "timeframe": ["5m"], "ts": [t], "open": [1.0],
                           "high": [2.0], "low": [0.5], "close": [1.5], "volume": [1.0]})
        store.upsert_candles(df.with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC"))), "p")
        store.read_candles([sym], "5m")
    print("ok")
""")


def test_two_processes_write_concurrently_without_lock_errors(tmp_path):
    path = tmp_path / "w.duckdb"
    Store(path).migrate()
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT_WRITER, str(path), s],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for s in ("AAA/USD", "BBB/USD")]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert out.strip() == "ok"
    counts = Store(path).candle_summary()
    assert sorted(counts["candles"].to_list()) == [15, 15]
