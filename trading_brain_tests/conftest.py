"""Shared fixtures: temporary homes and warehouses (real DuckDB files), paths to ../shared/data.

Real-data tests get their files through ``require_shared(path)``: a missing file skips the test
locally, but FAILS it when the environment has ``CI=true`` (CI keeps ``shared/`` beside the
checkout, so a missing file there is a broken setup, not a reason to skip parity checks).

``built_once(tmp_path_factory, key, build)``: a directory (a simulated home…) that several
modules need identical is built once per test run, by whichever xdist worker asks first
(the others wait on a file lock), and each module copies it; nothing may write into it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def in_ci() -> bool:
    """True when the environment variable ``CI`` is ``true`` (any case)."""
    return os.environ.get("CI", "").strip().lower() == "true"


def require_shared(path: Path, what: str = "shared data") -> Path:
    """``path`` when it exists; else skip the test, or fail it under ``CI=true``."""
    if path.exists():
        return path
    msg = f"{what} not found at {path} (needs ../shared/data beside the checkout)"
    if in_ci():
        pytest.fail(f"{msg}; CI=true, so missing real data is a failure", pytrace=False)
    pytest.skip(msg)


def built_once(tmp_path_factory: pytest.TempPathFactory, key: str,
               build: Callable[[Path], None]) -> Path:
    """``<run's temp root>/built-once/<key>``, made by ``build(path)`` the first time any worker
    of this run asks for ``key`` (a failed build leaves nothing: the next caller tries again).
    Callers copy the result (``shutil.copytree``) and never change it."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of this run
    done = root / "built-once" / key
    done.parent.mkdir(parents=True, exist_ok=True)
    with (done.parent / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            tmp = done.with_name(f"{key}.building")
            shutil.rmtree(tmp, ignore_errors=True)
            build(tmp)
            tmp.rename(done)
    return done


SIM_2D = {"market": "sim", "days": 2, "seed": 7, "start": "2026-10-01T00:00:00+00:00"}


def two_day_sim(tmp_path_factory: pytest.TempPathFactory, dst: Path,
                symbols: tuple[str, ...]) -> Path:
    """``dst``: a copy of the home after ``simulate`` of ``SIM_2D`` over ``symbols`` (the
    default ema_cross@1 deployed), simulated once per run (``built_once``)."""
    from trading_brain.app.simulate.loop import Plan, simulate
    from trading_brain.settings import Home

    def build(home: Path) -> None:
        simulate(Home(home), Plan(**SIM_2D, symbols=symbols))

    src = built_once(tmp_path_factory, "sim-2d-" + "-".join(s.split("/")[0] for s in symbols),
                     build)
    shutil.copytree(src, dst)
    return dst


def register_released(home: Path) -> None:
    """Register every released strategy version of ``strategies/`` in ``home`` (sandboxed
    gates; the workers are closed afterwards)."""
    from trading_brain.app.research.register import register_files
    from trading_brain.app.runtime import build_runtime

    rt = build_runtime(home)
    try:
        register_files(rt.store, rt.settings, None, "released", workers=rt.workers)
    finally:
        rt.workers.close()


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the checkout (see ``require_shared``)."""
    return require_shared(SHARED_DATA, "shared data folder")


@pytest.fixture
def fk():
    """A loopback fake Kraken (REST + WebSocket) built from ``../shared/data/kraken_api``."""
    from trading_brain_tests.fakes import kraken_data
    from trading_brain_tests.fakes.kraken_server import FakeKraken

    require_shared(kraken_data.DATA_DIR / "rest" / "http_ohlc.json", "real Kraken payloads")
    with FakeKraken(heartbeat_s=0.05) as server:
        yield server


@pytest.fixture
def store(tmp_path):
    from trading_brain.adapters.duckdb import Store

    return Store.open(tmp_path / "warehouse.duckdb")


def make_candles(symbol: str = "BTC/USD", timeframe: str = "5m", n: int = 10,
                 start: datetime = datetime(2026, 1, 1, tzinfo=UTC), price: float = 100.0,
                 seed: int = 0) -> pl.DataFrame:
    """A valid synthetic candle frame (random walk) for tests."""
    step = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}[timeframe]
    rng = np.random.default_rng(seed)
    close = price * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.concatenate([[price], close[:-1]])
    high = np.maximum(open_, close) * 1.001
    low = np.minimum(open_, close) * 0.999
    return pl.DataFrame({
        "symbol": symbol, "timeframe": timeframe,
        "ts": [start + timedelta(seconds=step * i) for i in range(n)],
        "open": open_, "high": high, "low": low, "close": close, "volume": rng.uniform(1, 5, n),
    }).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))
