"""Signals of a parameter sweep: every distinct set generated once, in the version's worker.

Contract: ``generate_all(worker, bars, sets, progress)`` returns ``(params, signal_sets,
skipped)``: the sets the strategy's ``Params`` accept (input order, duplicates kept), their
signals per symbol, and the one-line reason of each refused set. Identical parameter sets
(e.g. a grid listing a value twice) share ONE signal frame object, which the sweep then
simulates once. All distinct sets go through ``VersionWorker.signal_sets`` in one sandbox round
trip per symbol, or in chunks of ``PROGRESS_CHUNK`` when a ``progress(done, total, item)``
callback is given (it is called after each chunk). No valid set at all is a ConfigError.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from trading_brain.app.research.backtest import Bars, VersionWorker
from trading_brain.errors import ConfigError

PROGRESS_CHUNK = 25
Progress = Callable[[int, int, str], None]


def generate_all(worker: VersionWorker, bars: Bars, sets: Sequence[dict[str, Any]],
                 progress: Progress | None = None
                 ) -> tuple[list[dict[str, Any]], list[dict[str, pl.DataFrame]], list[str]]:
    """(params, signal_sets, skipped) of ``sets`` (see the module docstring)."""
    index: dict[str, int] = {}
    distinct: list[dict[str, Any]] = []
    for p in sets:
        key = _key(p)
        if key not in index:
            index[key] = len(distinct)
            distinct.append(p)
    chunk = PROGRESS_CHUNK if progress is not None else max(len(distinct), 1)
    got: list[dict[str, pl.DataFrame] | ConfigError] = []
    for lo in range(0, len(distinct), chunk):
        got += worker.signal_sets(bars, distinct[lo:lo + chunk])
        if progress is not None:
            progress(len(got), len(distinct), "")
    params: list[dict[str, Any]] = []
    signal_sets: list[dict[str, pl.DataFrame]] = []
    skipped: list[str] = []
    for p in sets:
        one = got[index[_key(p)]]
        if isinstance(one, ConfigError):  # e.g. fast >= slow: a cross-field rule of Params
            skipped.append(str(one))
        else:
            signal_sets.append(one)
            params.append(p)
    if not params:
        raise ConfigError(f"no valid parameter combination in --grid; first: {skipped[0]}")
    return params, signal_sets, skipped


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)
