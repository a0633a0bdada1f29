"""Legitimate corpus: passes the gate and gives IDENTICAL results in the sandbox and in-process.

One persistent worker per strategy module serves every call (load once, many calls). Real bars
from ../shared/data (skipped when absent). The shipped strategies under strategies/ are included.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from trading_brain.adapters.sandbox.host import SandboxedStrategy
from trading_brain.errors import StrategyError
from trading_brain_tests.adapters.sandbox.helpers import (
    LEGIT,
    REPO,
    in_process_generate,
    load_in_process,
    real_bars,
)

pytestmark = pytest.mark.slow
CORPUS = sorted(LEGIT.glob("*.py")) + sorted((REPO / "strategies").glob("*/v*.py"))
PARAMS = {
    "l1_numpy_dataclass": [{}, {"lookback": 10, "band": 0.5, "intent": "day"}],
    "l2_polars_tz": [{}, {"span": 30, "window": 48, "session_start": 6}],
    "l3_indicators": [{}, {"rsi_n": 7, "oversold": 40.0}],
}


def _id(p: Path) -> str:
    return p.stem if p.parent == LEGIT else p.parent.name


@pytest.fixture(scope="module", params=CORPUS, ids=_id)
def pair(request):
    path: Path = request.param
    source = path.read_text()
    sandboxed = SandboxedStrategy(source, timeout_s=30.0)
    yield _id(path), sandboxed, load_in_process(source, f"legit_{_id(path)}")
    sandboxed.close()


def test_identical_results_inside_and_outside(pair):
    name, sandboxed, module = pair
    bars = real_bars(1600)
    pid = None
    for params in PARAMS.get(name, [{}]):
        for window in (bars, bars.tail(300)):
            inside = sandboxed.generate(window, params)
            outside = in_process_generate(module, window, params)
            assert inside.schema == outside.schema
            assert inside.equals(outside), f"{name} {params} differs"
            pid = pid or sandboxed._proc.pid
            assert sandboxed._proc.pid == pid  # one persistent worker for every call
    assert sandboxed.strategy_id == module.STRATEGY_ID and sandboxed.version == module.VERSION
    if name == "l2_polars_tz":  # a named time zone works inside: entries only at Berlin 23h
        out = sandboxed.generate(bars, {"session_start": 23})
        berlin = bars["ts"].dt.convert_time_zone("Europe/Berlin").dt.hour()
        hours = set(berlin.filter(out["action"] == "enter").to_list())
        assert hours == {23}, hours


def test_layer_report_as_root(pair):
    import os

    _, sandboxed, _ = pair
    layers = sandboxed.layers
    assert layers.seccomp and layers.landlock_abi >= 1 and layers.rlimits and layers.no_new_privs
    assert layers.missing_required() == []
    if os.geteuid() == 0:
        assert layers.uid_drop and layers.uid == 65534 and layers.netns, layers


def test_params_schema_defaults_and_validation(pair):
    name, sandboxed, module = pair
    schema, defaults = sandboxed.params_schema()
    assert defaults == module.Params().model_dump(mode="json")
    assert schema == module.Params.model_json_schema()
    if name == "l1_numpy_dataclass":
        pid = sandboxed._proc.pid
        with pytest.raises(StrategyError, match="lookback") as e:
            sandboxed.generate(real_bars(100), {"lookback": 1})
        assert "greater than or equal to 5" in str(e.value)
        out = sandboxed.generate(real_bars(100), {})  # a clean error keeps the worker
        assert sandboxed._proc.pid == pid and out.height == 100
        with pytest.raises(StrategyError, match="JSON"):
            sandboxed.generate(real_bars(100), {"lookback": object()})


def test_reused_bars_give_the_same_signals_and_survive_a_worker_recycle():
    """A parameter sweep sends the bars once; a recycled worker gets them again."""
    from trading_brain.adapters.sandbox import SandboxedStrategy
    from trading_brain.app.research.strategy_files import InProcessStrategy
    from trading_brain_tests.conftest import REPO, make_candles

    path = REPO / "strategies" / "ema_cross" / "v1.py"
    bars = make_candles(n=2000, seed=5).drop("symbol", "timeframe")
    trusted = InProcessStrategy(path)
    with SandboxedStrategy(path=path) as sandboxed:
        for fast in (5, 7, 9):
            params = {"fast": fast, "slow": 21}
            assert sandboxed.generate(bars, params).equals(trusted.generate(bars, params))
        assert sandboxed._sent_bars is bars
        sandboxed.close()  # e.g. recycled after an error
        assert sandboxed.generate(bars, {"fast": 6}).equals(trusted.generate(bars, {"fast": 6}))
        other = bars.head(1500)
        assert sandboxed.generate(other).equals(trusted.generate(other))
