"""`init` tells the home's Dagster instance what it wrote: candle day partitions materialized,
strategy_versions materialized, backtest_job's version partitions added (so the README's
backfill works on a fresh home)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from trading_brain.adapters.dagster_catalog import (
    STRATEGY_VERSION_PARTITIONS,
    DagsterCatalog,
)
from trading_brain.app.home.init import candle_days, initialise, report_history
from trading_brain.app.runtime import build_runtime
from trading_brain.errors import TemporaryError
from trading_brain.settings import Home
from trading_brain_tests.defs.conftest import write_home


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Home:
    """One small sim home initialised by `init` (bootstrap + default strategy)."""
    h = write_home(tmp_path_factory.mktemp("catalog") / "home")
    summary = initialise(h)
    assert "error" not in summary["dagster_catalog"], summary
    return h


@pytest.fixture
def instance(home):
    inst = dg.DagsterInstance.from_config(str(home.dagster_home))
    try:
        yield inst
    finally:
        inst.dispose()


def test_init_reports_candle_partitions_and_strategy_versions(home, instance):
    rt = build_runtime(home)
    for tf, asset in [("5m", "candles_5m"), ("1h", "candles_1h"), ("1d", "candles_1d")]:
        days = candle_days(rt, tf)
        assert days, tf
        shown = set(instance.get_materialized_partitions(dg.AssetKey(asset)))
        assert shown == set(days), asset
    assert len(candle_days(rt, "1d")) >= 20  # history.days_1d of the test home
    event = instance.get_latest_materialization_event(dg.AssetKey("strategy_versions"))
    assert event is not None and event.asset_materialization is not None
    assert event.asset_materialization.metadata["versions"].value == 3
    keys = set(instance.get_dynamic_partitions(STRATEGY_VERSION_PARTITIONS))
    assert {"ema_cross@1", "ema_rsi_volume@1", "trend_pullback@1"} <= keys


def test_reporting_again_adds_nothing(home, instance):
    rt = build_runtime(home)
    catalog = DagsterCatalog(instance, "again")
    assert report_history(rt, catalog) == {"5m": 0, "1h": 0, "1d": 0}
    assert catalog.versions_registered(["ema_cross@1"], 0) == []


def test_days_before_the_partitions_start_are_left_out(tmp_path):
    with DagsterCatalog.open(_dagster_home(tmp_path), "test") as catalog:
        assert catalog.candle_days("1d", {"2016-12-31": 9, "2017-01-01": 9}) == 1
        assert catalog.instance.get_materialized_partitions(
            dg.AssetKey("candles_1d")) == {"2017-01-01"}


def test_the_sqlite_batch_reads_back_like_the_public_call(tmp_path):
    """The batch path (SQLite internals) is what report_runless_asset_event would store."""
    key = dg.AssetKey("candles_1d")
    days = {f"2020-01-{d:02d}": d for d in range(1, 31)}
    with DagsterCatalog.open(_dagster_home(tmp_path), "test") as catalog:
        inst = catalog.instance
        assert catalog.candle_days("1d", days) == 30
        assert inst.get_materialized_partitions(key) == set(days)
        got = inst.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=["2020-01-07"]), limit=1)
        mat = got.records[0].asset_materialization
        assert mat is not None and mat.metadata["rows"].value == 7
        assert got.records[0].run_id == ""  # runless, as the public call stores it
        record = inst.get_asset_records([key])[0].asset_entry.last_materialization_record
        assert record is not None and record.partition_key == "2020-01-30"
        inst.report_runless_asset_event(dg.AssetMaterialization(key, partition="2020-02-01"))
        assert inst.get_materialized_partitions(key) == set(days) | {"2020-02-01"}
        newest = inst.get_latest_materialization_event(key)
        assert newest is not None and newest.asset_materialization is not None
        assert newest.asset_materialization.partition == "2020-02-01"  # ids stay ordered


def test_a_broken_dagster_home_does_not_fail_init(tmp_path):
    h = write_home(tmp_path / "home")
    broken = h.dagster_home
    broken.mkdir(parents=True)
    with pytest.raises(TemporaryError, match="Dagster instance"):
        (broken / "dagster.yaml").write_text("storage: [not, a, mapping]\n")
        with DagsterCatalog.open(broken, "test"):
            pass
    # init rewrites dagster.yaml; a storage dir that cannot be a directory breaks the instance
    (broken / "history").write_text("not a directory")
    summary = initialise(h, strategy=None)
    assert summary["candles_stored"] > 0
    assert "Dagster" in summary["dagster_catalog"]["error"]


def test_nothing_to_tell_opens_no_instance(tmp_path):
    h = write_home(tmp_path / "home")
    summary = initialise(h, bootstrap=False, strategy=None)
    assert "dagster_catalog" not in summary
    assert not (h.dagster_home / "history").exists()


@pytest.mark.slow
def test_readme_backfill_of_backtest_job_works_on_a_fresh_home(home):
    """`dagster job backfill -j backtest_job --partitions ema_cross@1,trend_pullback@1` (the
    README) queues one run per version right after init (~15 s: the CLI loads definitions)."""
    dh = home.dagster_home
    env = {**os.environ, "DAGSTER_HOME": str(dh), "TRADING_BRAIN_HOME": str(home.root)}
    dagster = Path(sys.executable).with_name("dagster")
    proc = subprocess.run(
        [str(dagster), "job", "backfill", "-w", str(dh / "workspace.yaml"), "-j", "backtest_job",
         "--partitions", "ema_cross@1,trend_pullback@1", "--noprompt"],
        cwd=home.root, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    inst = dg.DagsterInstance.from_config(str(dh))
    try:
        runs = inst.get_runs()
    finally:
        inst.dispose()
    assert sorted(r.tags["dagster/partition"] for r in runs) == ["ema_cross@1",
                                                                "trend_pullback@1"]
    assert {r.job_name for r in runs} == {"backtest_job"}


def _dagster_home(tmp_path: Path) -> Path:
    dh = tmp_path / "dagster"
    dh.mkdir()
    (dh / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return dh


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[list[str], int]] = []

    def versions_registered(self, keys, registered_now, table_md=None) -> list[str]:
        self.calls.append((list(keys), registered_now))
        return []


def test_registration_tells_its_catalog_every_version(tmp_path):
    from trading_brain.adapters.duckdb import Store
    from trading_brain.app.research.register import register_files
    from trading_brain.app.research.strategy_files import find_strategies
    from trading_brain.settings import parse_settings

    store = Store.open(tmp_path / "w.duckdb")
    path = next(r.path for r in find_strategies() if r.strategy_id == "ema_cross")
    catalog = _Recorder()
    register_files(store, parse_settings({}), [path], "released", catalog=catalog)
    register_files(store, parse_settings({}), [path], "released", catalog=catalog)
    assert catalog.calls == [(["ema_cross@1"], 1), (["ema_cross@1"], 0)]


def test_strategies_register_adds_a_lost_partition_back(home, instance):
    """`trading-brain strategies register` tells the home's catalog too."""
    from trading_brain_tests.test_cli import tb

    instance.delete_dynamic_partition(STRATEGY_VERSION_PARTITIONS, "trend_pullback@1")
    assert "trend_pullback@1: unchanged" in tb(home.root, "strategies", "register").stdout
    assert "trend_pullback@1" in instance.get_dynamic_partitions(STRATEGY_VERSION_PARTITIONS)


def test_a_broken_catalog_never_fails_registration(tmp_path, caplog):
    from trading_brain.app.research.register import home_catalog

    h = write_home(tmp_path / "home")
    assert not h.dagster_home.exists()
    with home_catalog(h, "test") as catalog:
        assert catalog is None  # never prepared: nothing to tell
    h.dagster_home.mkdir(parents=True)
    (h.dagster_home / "dagster.yaml").write_text("storage: [not, a, mapping]\n")
    with home_catalog(h, "test") as catalog:
        assert catalog is None
    assert "versions not announced to Dagster" in caplog.text


def test_the_bootstrap_command_reports_the_days_it_added(home, instance):
    """`trading-brain bootstrap` (app.home.history.backfill) also tells Dagster."""
    from trading_brain.app.home.history import backfill

    rt = build_runtime(home)
    backfill(rt, {"1d": 30})
    days = candle_days(rt, "1d")
    assert len(days) >= 30
    assert set(instance.get_materialized_partitions(dg.AssetKey("candles_1d"))) == set(days)


def test_import_ohlcv_reports_the_days_it_filled(tmp_path):
    """`import-ohlcv` writes outside Dagster too: the days now holding candles of the configured
    symbols are materialized partitions afterwards; an import that changes nothing tells
    nothing."""
    from trading_brain.app.home.history import import_reported
    from trading_brain_tests.conftest import make_candles

    h = write_home(tmp_path / "home")
    initialise(h, bootstrap=False, strategy=None)
    src = tmp_path / "btc_5m.csv"
    bars = make_candles("BTC/USD", "5m", n=288 * 2, seed=3, price=100.0)
    bars.rename({"ts": "timestamp"}).select(
        "timestamp", "open", "high", "low", "close", "volume").write_csv(src)
    report, told = import_reported(h, [src], symbol="BTC/USD")
    assert report.inserted == 288 * 2
    assert "error" not in told, told
    inst = dg.DagsterInstance.from_config(str(h.dagster_home))
    try:
        shown = inst.get_materialized_partitions(dg.AssetKey("candles_5m"))
        assert shown == set(candle_days(build_runtime(h), "5m")) and len(shown) >= 2
    finally:
        inst.dispose()
    again, told = import_reported(h, [src], symbol="BTC/USD")
    assert again.unchanged == 288 * 2 and told == {}
