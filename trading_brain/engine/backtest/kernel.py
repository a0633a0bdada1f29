"""vectorbt's Rust ``simulate_from_signals`` kernel, called directly (no vectorbt, no pandas).

Contract: ``simulate_from_signals(target_shape, group_lens, init_cash, call_seq, **flex)`` returns
``(order_records, log_records)`` exactly as ``vectorbt.portfolio.dispatch.simulate_from_signals(
..., engine="rust")`` of vectorbt 1.2.0 does for the same arguments (a test compares the records
field by field on real candles). Importing this module costs ~1 ms (``vectorbt_rust`` is a
compiled extension); importing ``vectorbt`` to reach the same kernel costs ~2.5 s (pandas and
all), which the fast engine and ``optimize`` no longer pay.

What is replicated from vectorbt 1.2.0 (``portfolio/dispatch.py`` and ``_engine.py``), minimally:
- the defaults of every flexible argument (``FLEX``: name, dtype, default, in the kernel's
  positional order) and of the keyword options;
- ``prepare_flex_array_for_rust``: each flexible argument becomes a numpy array of its exact
  dtype (0-d, 1-d or 2-d, never broadcast: the kernel indexes it flexibly); it must be 0-2
  dimensional, of the same kind as that dtype (ints for int64, floats for float64, bools for
  bool) and broadcastable to ``target_shape`` (a 1-d array is a row when ``flex_2d``);
- ``prepare_array_for_rust`` for ``group_lens`` (int64) and ``init_cash`` (float64), and the
  exact int64 ``call_seq`` the kernel mutates;
- the record dtypes ``order_dt``/``log_dt``, which the kernel itself looks up by importing
  ``vectorbt.portfolio.enums`` (kernel_records.py serves them without vectorbt).
The dispatcher's numba fallback (for ``reject_prob > 0``, random rejections) is not replicated:
``reject_prob`` must stay 0. The enum values used by the engines are named below (``LONG_ONLY``
...); they are vectorbt's ``portfolio.enums`` values.

The kernel's own signature is checked on first use, so a vectorbt-rust upgrade that reorders or
renames arguments fails loudly (DataError) instead of simulating garbage.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module

import numpy as np

from trading_brain.engine.backtest.kernel_records import record_dtypes
from trading_brain.errors import DataError

# vectorbt.portfolio.enums values (Direction, SizeType, AccumulationMode, OppositeEntryMode,
# StopEntryPrice, StopExitPrice)
LONG_ONLY = 0
SIZE_PERCENT = 2
ACCUMULATE_DISABLED = 0
OPPOSITE_ENTRY_IGNORE = 0
STOP_ENTRY_FILL_PRICE = 2
STOP_EXIT_STOP_LIMIT = 0

# (name, dtype, vectorbt's default), in the kernel's positional order after call_seq
FLEX: tuple[tuple[str, type, bool | int | float], ...] = (
    ("entries", np.bool_, False),
    ("exits", np.bool_, False),
    ("direction", np.int64, 0),
    ("long_entries", np.bool_, False),
    ("long_exits", np.bool_, False),
    ("short_entries", np.bool_, False),
    ("short_exits", np.bool_, False),
    ("size", np.float64, np.inf),
    ("price", np.float64, np.inf),
    ("size_type", np.int64, 0),
    ("fees", np.float64, 0.0),
    ("fixed_fees", np.float64, 0.0),
    ("slippage", np.float64, 0.0),
    ("min_size", np.float64, 0.0),
    ("max_size", np.float64, np.inf),
    ("size_granularity", np.float64, np.nan),
    ("reject_prob", np.float64, 0.0),
    ("lock_cash", np.bool_, False),
    ("allow_partial", np.bool_, True),
    ("raise_reject", np.bool_, False),
    ("log", np.bool_, False),
    ("accumulate", np.int64, 0),
    ("upon_long_conflict", np.int64, 0),
    ("upon_short_conflict", np.int64, 0),
    ("upon_dir_conflict", np.int64, 0),
    ("upon_opposite_entry", np.int64, 4),
    ("val_price", np.float64, np.inf),
    ("open", np.float64, np.nan),
    ("high", np.float64, np.nan),
    ("low", np.float64, np.nan),
    ("close", np.float64, np.nan),
    ("sl_stop", np.float64, np.nan),
    ("sl_trail", np.bool_, False),
    ("tp_stop", np.float64, np.nan),
    ("stop_entry_price", np.int64, 3),
    ("stop_exit_price", np.int64, 0),
    ("upon_stop_exit", np.int64, 0),
    ("upon_stop_update", np.int64, 1),
)
OPTIONS = ("use_stops", "auto_call_seq", "ffill_val_price", "update_value", "max_orders",
           "max_logs", "init_temp_records", "seed", "flex_2d")
SIGNATURE = ("(target_shape, group_lens, init_cash, call_seq, "
             + ", ".join(name for name, _, _ in FLEX)
             + ", use_stops=True, auto_call_seq=False, ffill_val_price=True, update_value=False, "
               "max_orders=None, max_logs=0, init_temp_records=False, seed=None, flex_2d=True)")
_NAMES = {name for name, _, _ in FLEX}


def simulate_from_signals(
    target_shape: tuple[int, int],
    group_lens: np.ndarray,
    init_cash: np.ndarray,
    call_seq: np.ndarray,
    *,
    use_stops: bool = True,
    auto_call_seq: bool = False,
    ffill_val_price: bool = True,
    update_value: bool = False,
    max_orders: int | None = None,
    max_logs: int = 0,
    init_temp_records: bool = False,
    seed: int | None = None,
    flex_2d: bool = True,
    **flex: np.ndarray | float | int | bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Order and log records of the Rust kernel (see the module docstring for the contract)."""
    unknown = set(flex) - _NAMES
    if unknown:
        raise DataError(f"unknown simulate_from_signals argument(s): {', '.join(sorted(unknown))}")
    if np.any(np.asarray(flex.get("reject_prob", 0.0)) > 0):
        raise DataError("reject_prob > 0 needs vectorbt's numba engine; not supported here")
    kernel = _kernel()
    args = [_flex(name, flex.get(name, default), dtype, target_shape, flex_2d)
            for name, dtype, default in FLEX]
    with record_dtypes():
        return kernel(
            tuple(target_shape),
            _exact(group_lens, np.int64, "group_lens", mutable=False),
            _exact(init_cash, np.float64, "init_cash", mutable=False),
            _exact(call_seq, np.int64, "call_seq", mutable=True),
            *args,
            use_stops=use_stops,
            auto_call_seq=auto_call_seq,
            ffill_val_price=ffill_val_price,
            update_value=update_value,
            max_orders=max_orders,
            max_logs=max_logs,
            init_temp_records=init_temp_records,
            seed=seed,
            flex_2d=flex_2d,
        )


Kernel = Callable[..., tuple[np.ndarray, np.ndarray]]
_KERNEL: list[Kernel] = []


def _kernel() -> Kernel:
    """The Rust function, its signature checked once against ``SIGNATURE``."""
    if not _KERNEL:
        # a submodule of the compiled extension (no stubs, invisible to static analysis)
        simulate_from_signals_rs = import_module("vectorbt_rust.portfolio").simulate_from_signals_rs
        got = getattr(simulate_from_signals_rs, "__text_signature__", None)
        if got != SIGNATURE:
            raise DataError(f"vectorbt_rust.portfolio.simulate_from_signals_rs has signature "
                            f"{got}; the fast engine was written for {SIGNATURE}")
        _KERNEL.append(simulate_from_signals_rs)
    return _KERNEL[0]


def _same_kind(have: np.dtype, want: np.dtype) -> bool:
    """vectorbt's ``array_compatible_with_rust`` rule: same kind and a safe cast."""
    kind_ok = have.kind == want.kind or (have.kind in "iu" and want.kind in "iu")
    return kind_ok and bool(np.can_cast(have, want, casting="safe"))


def _flex(name: str, value: object, dtype: type, shape: tuple[int, int],
          flex_2d: bool) -> np.ndarray:
    """``prepare_flex_array_for_rust``: the exact dtype, 0-2 dims, broadcastable to ``shape``."""
    arr = np.asarray(value)
    want = np.dtype(dtype)
    if arr.ndim == 0:
        try:
            out = np.asarray(value, dtype=want)
        except (TypeError, ValueError):
            raise DataError(f"{name} is not convertible to {want.name}") from None
        return out
    if arr.ndim > 2 or (arr.dtype != want and not _same_kind(arr.dtype, want)):
        raise DataError(f"{name} must be a 0-2 dimensional {want.name}-compatible array")
    view = arr.reshape((1, -1) if flex_2d else (-1, 1)) if arr.ndim == 1 else arr
    try:
        np.broadcast_shapes(view.shape, tuple(shape))
    except ValueError:
        raise DataError(f"{name} of shape {arr.shape} does not broadcast to {shape}") from None
    return arr if arr.dtype == want else np.asarray(arr, dtype=want)


def _exact(a: np.ndarray, dtype: type, name: str, mutable: bool) -> np.ndarray:
    """``prepare_array_for_rust`` (a safe cast), or the exact dtype for a mutated array."""
    want = np.dtype(dtype)
    if not isinstance(a, np.ndarray) or a.ndim not in (1, 2):
        raise DataError(f"{name} must be a 1-d or 2-d numpy array")
    if a.dtype == want:
        return a
    if mutable or not _same_kind(a.dtype, want):
        raise DataError(f"{name} must be a {want.name} array, got {a.dtype.name}")
    return np.asarray(a, dtype=want)


def defaults() -> Mapping[str, bool | int | float]:
    """vectorbt's default of every flexible argument (for tests and documentation)."""
    return {name: default for name, _, default in FLEX}
