"""The direct Rust kernel call (kernel.py) equals vectorbt's own dispatcher, without its imports."""

from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from trading_brain.engine.backtest import kernel
from trading_brain.engine.backtest.fast import Bars, Orders, shifted_orders, simulate
from trading_brain.errors import DataError
from trading_brain_tests.engine.backtest.helpers import ema_cross, load_candles

FILES = {s: f"binance_{s}USDT_5m_2024H1.csv.gz" for s in ("BTC", "ETH", "SOL")}
FIELDS = ("id", "col", "idx", "size", "price", "fees", "side")
# (fast, slow, size, stop_loss, take_profit, fee, slippage)
PARAM_SETS = [
    (12, 26, 0.1, 0.02, 0.04, 0.0026, 0.0005),
    (5, 40, 1.0, 0.005, 0.01, 0.0026, 0.0005),
    (3, 21, 0.5, None, None, 0.0, 0.0),
    (9, 50, 0.25, 0.01, None, 0.004, 0.001),
]


def dispatch_reference(b, o: Orders, cash: float, fee: float, slippage: float,
                       shared: bool = False) -> np.ndarray:
    """``simulate``'s arguments through vectorbt's own engine-neutral dispatcher (Rust)."""
    from vectorbt.portfolio import dispatch

    bl = b if isinstance(b, list) else [b]
    n, k = o.entries.shape

    def col(name: str) -> np.ndarray:
        return np.ascontiguousarray(np.column_stack([getattr(x, name) for x in bl]))

    call_seq = np.zeros((n, k), dtype=np.int64)
    if shared:
        call_seq[:] = np.arange(k, dtype=np.int64)
    group_lens = np.array([k] if shared else [1] * k, dtype=np.int64)
    records, _ = dispatch.simulate_from_signals(
        (n, k), group_lens, np.full(len(group_lens), float(cash)), call_seq,
        entries=o.entries, exits=o.exits, direction=np.asarray(0), size=o.size,
        price=col("open"), size_type=np.asarray(2), fees=np.asarray(fee),
        slippage=np.asarray(slippage), accumulate=np.asarray(0),
        upon_opposite_entry=np.asarray(0), open=col("open"), high=col("high"), low=col("low"),
        close=col("close"), sl_stop=o.sl, tp_stop=o.tp, stop_entry_price=np.asarray(2),
        stop_exit_price=np.asarray(0), max_orders=n * k, max_logs=1, flex_2d=True,
        engine="rust",
    )
    return records


def assert_same_records(ours: np.ndarray, ref: np.ndarray) -> None:
    assert ours.dtype.names == ref.dtype.names
    assert len(ours) == len(ref)
    for field in FIELDS:
        assert np.array_equal(ours[field], ref[field]), field


@pytest.mark.parametrize("symbol", ["BTC", "SOL"])
def test_kernel_records_equal_vectorbt_dispatch_for_several_param_sets(symbol):
    bars = load_candles(FILES[symbol])
    b = Bars.of(bars)
    for fast, slow, size, sl, tp, fee, slip in PARAM_SETS:
        sig = ema_cross(bars, fast, slow, size=size, stop_loss=sl, take_profit=tp)
        o = shifted_orders(bars, [sig])
        ours = simulate(b, o, 10_000.0, fee, slip)
        assert len(ours) > 100
        assert_same_records(ours, dispatch_reference(b, o, 10_000.0, fee, slip))


def test_kernel_equals_dispatch_on_many_columns_per_bar_arrays_and_shared_cash():
    bars = load_candles(FILES["ETH"], rows=15_000)
    rng = np.random.default_rng(3)
    sets = [ema_cross(bars, f, s, size=0.3, stop_loss=0.01, take_profit=0.02)
            for f, s in ((4, 22), (7, 35), (11, 60))]
    sets[1] = sets[1].with_columns(  # per-bar values force the full (n x k) arrays
        pl.Series("size", rng.uniform(0.05, 1.0, bars.height)),
        pl.Series("take_profit", rng.choice([0.01, 0.03, np.nan], bars.height)).fill_nan(None),
    )
    b, o = Bars.of(bars), shifted_orders(bars, sets)
    assert o.size.shape == (bars.height, 3)
    ours = simulate(b, o, 5_000.0, 0.0026, 0.0005)
    assert set(ours["col"]) == {0, 1, 2}
    assert_same_records(ours, dispatch_reference(b, o, 5_000.0, 0.0026, 0.0005))
    frames = [load_candles(f, rows=6_000) for f in FILES.values()]
    bl = [Bars.of(f) for f in frames]
    per = [shifted_orders(f, [ema_cross(f, 6, 30, size=0.6, stop_loss=0.01)]) for f in frames]
    shared = Orders(*(np.hstack([getattr(p, a) for p in per]) for a in Orders.__slots__))
    ours = simulate(bl, shared, 10_000.0, 0.0026, 0.0005, shared=True)
    assert set(ours["col"]) == {0, 1, 2}
    assert_same_records(ours, dispatch_reference(bl, shared, 10_000.0, 0.0026, 0.0005, True))


def test_replicated_defaults_and_signature_are_vectorbts():
    from vectorbt.portfolio import dispatch
    from vectorbt_rust.portfolio import simulate_from_signals_rs

    params = inspect.signature(dispatch.simulate_from_signals).parameters
    flex = [p for p in params.values() if isinstance(p.default, np.ndarray)]
    assert [p.name for p in flex] == [name for name, _, _ in kernel.FLEX]
    for p in flex:
        mine = kernel.defaults()[p.name]
        assert np.asarray(mine).dtype.kind == p.default.dtype.kind, p.name
        assert np.array_equal(np.asarray(mine), p.default, equal_nan=True), p.name
    for name in kernel.OPTIONS:
        if name != "seed":
            assert inspect.signature(kernel.simulate_from_signals).parameters[name].default \
                == params[name].default, name
    assert simulate_from_signals_rs.__text_signature__ == kernel.SIGNATURE


def test_kernel_refuses_bad_arguments():
    shape, one = (3, 1), np.array([1], dtype=np.int64)
    cash, seq = np.array([100.0]), np.zeros(shape, dtype=np.int64)
    with pytest.raises(DataError, match="unknown"):
        kernel.simulate_from_signals(shape, one, cash, seq, entires=np.ones(shape, bool))
    with pytest.raises(DataError, match="reject_prob"):
        kernel.simulate_from_signals(shape, one, cash, seq, reject_prob=0.5)
    with pytest.raises(DataError, match="broadcast"):
        kernel.simulate_from_signals(shape, one, cash, seq, close=np.ones((4, 1)))
    with pytest.raises(DataError, match="float64-compatible"):
        kernel.simulate_from_signals(shape, one, cash, seq, close=np.array([["a"], ["b"], ["c"]]))
    with pytest.raises(DataError, match="call_seq"):
        kernel.simulate_from_signals(shape, one, cash, seq.astype(np.int32))
    close = np.array([[1.0], [2.0], [3.0]])
    orders, _ = kernel.simulate_from_signals(
        shape, one.astype(np.int32), cash, seq, entries=np.array([True, False, False])[:, None],
        price=close, close=close, max_orders=3)
    assert orders["price"].tolist() == [1.0]  # a safe cast of group_lens is accepted


def test_a_changed_kernel_signature_fails_loudly(monkeypatch):
    import vectorbt_rust.portfolio as rs

    def other(target_shape, group_lens):  # noqa: ANN001, ANN202 - stands in for a new kernel
        raise AssertionError("must not be called")

    monkeypatch.setattr(rs, "simulate_from_signals_rs", other)
    monkeypatch.setattr(kernel, "_KERNEL", [])
    with pytest.raises(DataError, match="signature"):
        kernel.simulate_from_signals((2, 1), np.array([1]), np.array([1.0]),
                                     np.zeros((2, 1), dtype=np.int64))


def test_fast_engine_imports_neither_vectorbt_nor_pandas():
    """Importing AND running the fast engine and a sweep leaves vectorbt/pandas unimported."""
    code = (
        "import sys\n"
        "from trading_brain.engine.backtest.fast import run_fast\n"
        "from trading_brain.engine.backtest.sweep import run_sweep\n"
        "import trading_brain.app.research.optimize\n"
        "from trading_brain_tests.engine.backtest.helpers import frame, signals\n"
        "bars = frame([(100.0, 101.0, 99.0, 100.5)] * 6)\n"
        "sig = signals(bars, {0: 'enter', 3: 'exit'})\n"
        "assert run_fast(bars, sig).metrics.n_trades == 1\n"
        "assert run_sweep(bars, [sig, sig])['n_trades'].to_list() == [1, 1]\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'vectorbt', 'pandas', 'numba'})\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_record_dtypes_are_vectorbts():
    from vectorbt.portfolio import enums

    from trading_brain.engine.backtest.kernel_records import LOG_DT, ORDER_DT

    assert ORDER_DT == enums.order_dt and ORDER_DT.itemsize == enums.order_dt.itemsize
    assert LOG_DT == enums.log_dt and LOG_DT.itemsize == enums.log_dt.itemsize


def test_placeholders_leave_no_trace_and_yield_to_a_real_vectorbt_import():
    """In a fresh process: no placeholder survives a call; a real import inside a call works."""
    code = (
        "import sys\n"
        "from trading_brain.engine.backtest import kernel_records as kr\n"
        "from trading_brain.engine.backtest.fast import run_fast\n"
        "from trading_brain_tests.engine.backtest.helpers import frame, signals\n"
        "bars = frame([(100.0, 101.0, 99.0, 100.5)] * 6)\n"
        "sig = signals(bars, {0: 'enter', 3: 'exit'})\n"
        "run_fast(bars, sig)\n"
        "assert not any(n in sys.modules for n in kr.NAMES), 'placeholder left behind'\n"
        "with kr.record_dtypes():\n"
        "    assert isinstance(sys.modules['vectorbt'], kr.Placeholder)\n"
        "    import vectorbt\n"
        "    pf = vectorbt.Portfolio\n"  # a real import racing with a call: the real module
        "    assert not isinstance(sys.modules['vectorbt'], kr.Placeholder)\n"
        "from vectorbt.portfolio.enums import order_dt\n"
        "assert 'pandas' in sys.modules and order_dt == kr.ORDER_DT\n"
        "assert run_fast(bars, sig).metrics.n_trades == 1\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
