"""vectorbt's record dtypes, served to the Rust kernel without importing vectorbt.

Contract: ``ORDER_DT`` and ``LOG_DT`` equal ``vectorbt.portfolio.enums.order_dt`` / ``log_dt`` of
vectorbt 1.2.0 (a test compares them). ``record_dtypes()`` is a context manager around one kernel
call: vectorbt-rust reads those two dtypes by running ``import vectorbt.portfolio.enums`` on every
call, which would import all of vectorbt (pandas, numba, plotly: ~2.5 s). When no part of vectorbt
is loaded, three placeholder modules (``vectorbt``, ``vectorbt.portfolio``,
``vectorbt.portfolio.enums``) carrying only the two dtypes are put in ``sys.modules`` for the call
and removed after it (reference-counted, so concurrent calls from the sweep's threads share them).
When vectorbt is loaded (or loading), nothing is installed and the kernel uses the real module.

A placeholder asked for any other attribute (a real ``import vectorbt`` that races with a kernel
call) withdraws all placeholders and answers from the real, freshly imported module: slower, never
wrong. Nothing in ``trading_brain`` imports vectorbt; tests that do compare records with it.
"""

from __future__ import annotations

import importlib
import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

ORDER_DT = np.dtype(
    [(name, np.float64 if name in ("size", "price", "fees") else np.int64)
     for name in ("id", "col", "idx", "size", "price", "fees", "side")],
    align=True,
)
_LOG_INT = {"id", "group", "col", "idx", "req_size_type", "req_direction", "res_side",
            "res_status", "res_status_info", "order_id"}
_LOG_BOOL = {"req_lock_cash", "req_allow_partial", "req_raise_reject", "req_log"}
_LOG_FIELDS = (
    "id group col idx cash position debt free_cash val_price value req_size req_price "
    "req_size_type req_direction req_fees req_fixed_fees req_slippage req_min_size req_max_size "
    "req_size_granularity req_reject_prob req_lock_cash req_allow_partial req_raise_reject req_log "
    "new_cash new_position new_debt new_free_cash new_val_price new_value res_size res_price "
    "res_fees res_side res_status res_status_info order_id"
).split()
LOG_DT = np.dtype(
    [(name, np.int64 if name in _LOG_INT else np.bool_ if name in _LOG_BOOL else np.float64)
     for name in _LOG_FIELDS],
    align=True,
)

NAMES = ("vectorbt", "vectorbt.portfolio", "vectorbt.portfolio.enums")
_lock = threading.Lock()
_users = 0
_installed: list[types.ModuleType] = []


class Placeholder(types.ModuleType):
    """A stand-in module; any attribute it lacks comes from the real vectorbt (see above)."""

    def __getattr__(self, attr: str) -> object:
        if attr.startswith("__"):
            raise AttributeError(attr)
        withdraw()
        return getattr(importlib.import_module(self.__name__), attr)


@contextmanager
def record_dtypes() -> Iterator[None]:
    """Placeholders with the record dtypes around one kernel call (when vectorbt is absent)."""
    global _users
    with _lock:
        if _users == 0 and not _installed and not any(n in sys.modules for n in NAMES):
            _install()
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                _remove()


def _install() -> None:
    mods = [Placeholder(n, "placeholder of trading_brain.engine.backtest.kernel_records")
            for n in NAMES]
    top, portfolio, enums = mods
    vars(top).update(portfolio=portfolio)  # the stand-ins' namespaces, as `import` fills them
    vars(portfolio).update(enums=enums)
    vars(enums).update(order_dt=ORDER_DT, log_dt=LOG_DT)
    for m in mods:
        sys.modules[m.__name__] = m
    _installed.extend(mods)


def _remove() -> None:
    for m in _installed:
        if sys.modules.get(m.__name__) is m:
            del sys.modules[m.__name__]
    _installed.clear()


def withdraw() -> None:
    """Remove the placeholders now (a real vectorbt import is about to happen)."""
    with _lock:
        _remove()
