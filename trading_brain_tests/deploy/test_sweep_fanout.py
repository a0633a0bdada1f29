"""``sweep_job`` fans a sweep out as dynamic outputs: a REAL 4-way multiprocess run (a persistent
Dagster instance in a tmp dir, ``execute_job`` of a reconstructable job, each step its own
process) of a 400-set ema_cross grid over 2 symbols gives exactly the rows (every set's metrics)
of the in-process run (``execute_in_process``); the rows land in ``backtests`` once (the second
run replaces them). Plus the Parquet export's contract, chunks that run with the warehouse file
gone, and a failing chunk that writes nothing. (``fanout.sweep_in_process``, the no-Dagster
sweep, is checked equal as well by benchmarks/bench_sweep_fanout.py.)

Cost: 3 days of synthetic 5m bars (864 per symbol); the full sweep runs twice (in-process job,
multiprocess job: 4 chunks of 200 sets, 4 step processes and sandbox workers starting at once).
The module takes ~35 s on this 2-core machine when it is quiet, up to ~3 min under heavy load,
mostly Python, Dagster and sandbox start-up: it is the one test of a real multiprocess fan-out.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from trading_brain.adapters.duckdb import Store
from trading_brain.app.research.backtest import Costs
from trading_brain.app.research.fanout import (
    SweepRequest,
    plan_sweep,
    run_chunk,
)
from trading_brain.app.research.parquet_export import export_candles, open_export, read_export
from trading_brain.errors import DataError
from trading_brain.settings import HOME_ENV, Home, load_settings
from trading_brain_tests.conftest import make_candles
from trading_brain_tests.defs.conftest import write_home

pytestmark = pytest.mark.slow
SYMBOLS = ["BTC/USD", "ETH/USD"]
GRID = json.dumps({"fast": list(range(2, 22)), "slow": list(range(22, 42))})  # 20 x 20 = 400
OPS = {"sweep_plan": {"config": {"strategy": "ema_cross@1", "grid_json": GRID,
                                 "symbols": SYMBOLS, "chunk_size": 200}}}


def sweep_job_for_home() -> dg.JobDefinition:
    """``sweep_job`` bound to the home in ``TRADING_BRAIN_HOME`` (rebuilt in every step
    process: the target of ``reconstructable``)."""
    from trading_brain.defs.research.sweep import sweep_job
    from trading_brain.defs.resources import TradingBrainResource, WarehouseResource

    home = Home(os.environ[HOME_ENV])
    wh = WarehouseResource.for_home(home)
    defs = dg.Definitions(jobs=[sweep_job],
                          resources={"tb": TradingBrainResource(home=str(home.root),
                                                                warehouse=wh)})
    return defs.resolve_job_def("sweep_job")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    h = write_home(tmp_path_factory.mktemp("sweep") / "home")
    store = Store.open(h.warehouse)
    for i, sym in enumerate(SYMBOLS):
        store.upsert_candles(make_candles(sym, "5m", n=864, seed=i, price=100.0 * (i + 1)))
    return h


@pytest.fixture(scope="module")
def reference(home: Home) -> Iterator[list[dict]]:
    """The in-process run's rows (every step in this process, in turn)."""
    with pytest.MonkeyPatch.context() as mp, dg.instance_for_test() as inst:
        mp.setenv(HOME_ENV, str(home.root))
        res = sweep_job_for_home().execute_in_process(run_config={"ops": OPS}, instance=inst)
        assert res.success
        yield res.output_for_node("sweep_write")


@pytest.fixture
def home_env(home: Home, monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    monkeypatch.setenv(HOME_ENV, str(home.root))
    yield home


def test_multiprocess_fanout_equals_in_process_sweep(home_env: Home, reference: list[dict],
                                                     tmp_path: Path) -> None:
    assert len(reference) == 800 and all("metrics" in r for r in reference)
    assert [(r["symbol"], r["set"]) for r in reference[:2]] == [("BTC/USD", 0), ("BTC/USD", 1)]
    assert reference[0]["params"] == {"fast": 2, "slow": 22, "stop_loss": 0.02,
                                      "take_profit": 0.04, "size": 0.1}
    (tmp_path / "dh").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "dh")) as inst:
        run_config = {"ops": OPS, "execution": {"config": {"multiprocess": {"max_concurrent": 4}}}}
        with dg.execute_job(dg.reconstructable(sweep_job_for_home), instance=inst,
                            run_config=run_config) as res:
            assert res.success
            rows = res.output_for_node("sweep_write")
            run_id = res.run_id
        starts = [e.dagster_event for e in
                  inst.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)]
        pids = {e.pid for e in starts
                if e is not None and (e.step_key or "").startswith("sweep_chunk")}
    assert rows == reference  # every set's metrics, bit for bit
    assert len(pids) == 4 and os.getpid() not in pids  # four step processes, not this one
    stored = Store.open(home_env.warehouse).frame(
        "SELECT count(*) AS n, count(DISTINCT backtest_id) AS ids FROM backtests "
        "WHERE engine = 'fast' AND strategy_id = 'ema_cross'")
    assert stored.rows() == [(800, 800)]  # two runs, the same 800 rows (replaced, not added)


def test_chunks_never_open_the_warehouse(home: Home, reference: list[dict]) -> None:
    """Chunks run with the warehouse file moved away; their rows equal the reference's."""
    req = SweepRequest.parse("ema_cross@1", GRID, SYMBOLS, "5m", "", "", Costs(), 300)
    store = Store.open(home.warehouse)
    plan = plan_sweep(store, home, req)
    assert [c.key for c in plan.chunks] == ["BTC_USD_0000", "BTC_USD_0001",
                                            "ETH_USD_0000", "ETH_USD_0001"]
    moved = home.warehouse.with_suffix(".away")
    home.warehouse.rename(moved)
    try:
        out = [run_chunk(c, load_settings(home)) for c in plan.chunks[:2]]
        assert not home.warehouse.exists()  # nothing re-created the file
    finally:
        moved.rename(home.warehouse)
    rows = sorted((r for res in out for r in res.rows), key=lambda r: r["set"])
    assert rows == [r for r in reference if r["symbol"] == "BTC/USD"]


def test_export_manifest_reuse_and_tampering(home: Home, tmp_path: Path) -> None:
    store = Store.open(home.warehouse)
    root = tmp_path / "exports"
    exp = export_candles(store, root, SYMBOLS, "5m", None, None)
    entry = exp.manifest["files"]["BTC/USD"]
    assert entry["rows"] == 864 and len(entry["sha256"]) == 64
    bars = read_export(exp.path, "BTC/USD")
    assert bars.equals(store.read_candles(["BTC/USD"], "5m").select(bars.columns))
    again = export_candles(store, root, SYMBOLS, "5m", None, None)
    assert again.path == exp.path  # same candles: the same immutable snapshot
    assert [p.name for p in root.iterdir()] == [exp.snapshot_id]
    with pytest.raises(DataError, match="no 5m candles for SOL/USD"):
        export_candles(store, root, ["BTC/USD", "SOL/USD"], "5m", None, None)
    assert [p.name for p in root.iterdir()] == [exp.snapshot_id]  # nothing half-written
    tampered = tmp_path / "copy"
    shutil.copytree(exp.path, tampered)
    f = tampered / entry["file"]
    f.write_bytes(f.read_bytes()[:-9] + b"corrupted")
    with pytest.raises(DataError, match="does not match its manifest checksum"):
        read_export(tampered, "BTC/USD")
    (tampered / "manifest.json").unlink()
    with pytest.raises(DataError, match="no readable manifest.json"):
        open_export(tampered)


def test_a_refused_value_fails_the_run_and_writes_nothing(home_env: Home) -> None:
    before = Store.open(home_env.warehouse).frame("SELECT count(*) AS n FROM backtests")
    bad = {"sweep_plan": {"config": {**OPS["sweep_plan"]["config"],
                                     "grid_json": '{"fast": [1, 5], "slow": [30]}'}}}
    with dg.instance_for_test() as inst:
        res = sweep_job_for_home().execute_in_process(run_config={"ops": bad}, instance=inst,
                                                      raise_on_error=False)
    assert not res.success
    failure = next(e for e in res.all_events if e.is_step_failure)
    assert failure.step_key is not None and failure.step_key.startswith("sweep_chunk")
    assert "parameter 'fast' of ema_cross@1: 1 is outside the allowed range" in str(
        failure.event_specific_data)
    after = Store.open(home_env.warehouse).frame("SELECT count(*) AS n FROM backtests")
    assert after.rows() == before.rows()


def test_a_set_params_refuse_is_skipped_not_written(home: Home, tmp_path: Path) -> None:
    from trading_brain.app.research.fanout import write_results

    req = SweepRequest.parse("ema_cross@1", '{"fast": [5, 30], "slow": [21]}', ["BTC/USD"],
                             "5m", "", "", Costs(), 10)
    plan = plan_sweep(Store.open(home.warehouse), home, req)
    (res,) = [run_chunk(c, load_settings(home)) for c in plan.chunks]
    ok, refused = res.rows
    assert ok["set"] == 0 and ok["metrics"]["n_trades"] >= 0
    assert refused["set"] == 1 and "fast (30) must be < slow (21)" in refused["skipped"]
    shutil.copy(home.warehouse, tmp_path / "w.duckdb")
    assert write_results(Store.open(tmp_path / "w.duckdb"), [res]) == 1
