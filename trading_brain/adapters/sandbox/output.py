"""Worker-side shaping of a strategy's output into the JSON ``SignalsReply`` (runs in the sandbox).

``encode_signals(out, bars)`` returns the whole reply; ``encode_columns(out, bars)`` only the JSON
object of its ``columns`` (``generate_many`` embeds one per symbol). Both check the structure
cheaply — a DataFrame, one row per bar, the contract's columns, castable types, no null where the
contract forbids one, finite floats, labels <= 32 chars — and on any problem call
``domain.strategy.validate_signals`` so the author gets the contract's precise message.

Encoding: each column is ``{"values": [...]}`` or, when it has at most half as many runs as rows
(the usual case: a signal column is mostly "hold" and the sizes are constants), run-length encoded
with ``"lengths"``. Runs are found with numpy on the raw float bits (exact: ``-0.0`` stays distinct
from ``0.0``) and floats are written by ``json`` or polars' native cast (shortest round-trip form),
so one 600-row reply costs about a millisecond. No Series method that polars implements as an
expression (``is_null``, ``fill_null``, ``str.join``, ``unique``, ``drop_nulls``…) is used: each
is a lazy-frame collect costing ~0.5 ms inside the worker — the previous encoder cost 3.5 ms
in-process and 4.5–6.6 ms in the worker mostly because of them.
Value ranges are left to the host, which validates every reply again (this code runs inside the
untrusted worker, so the host never relies on it).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import polars as pl

from trading_brain.domain.strategy import REQUIRED, SIGNAL_SCHEMA, validate_signals

FLOATS = frozenset(c for c, t in SIGNAL_SCHEMA.items() if t == pl.Float64())
NULLABLE = frozenset(("stop_loss", "take_profit", "regime"))
ALLOWED = frozenset((*SIGNAL_SCHEMA, "ts"))
MAX_LABEL = 32
LARGE = 4096  # from this many rows a native polars pass beats Python loops over the values


class _Bad(Exception):
    """The fast path found a problem: ``validate_signals`` will explain it."""


def encode_signals(out: Any, bars: pl.DataFrame) -> bytes:
    """The ``SignalsReply`` JSON for ``out``; raises StrategyError (or TypeError) if it is bad."""
    return ('{"ok":true,"kind":"signals","columns":' + encode_columns(out, bars) + "}").encode()


def encode_columns(out: Any, bars: pl.DataFrame) -> str:
    """The JSON object of the ``SignalColumns`` for ``out`` (see the module docstring)."""
    try:
        parts = [f'"{c}":{_column(out, c, t)}' for c, t in _checked(out, bars)]
    except (_Bad, pl.exceptions.PolarsError, TypeError, ValueError, OverflowError):
        validate_signals(out, bars)  # raises StrategyError with the precise message
        raise TypeError("generate output does not match the signal contract") from None
    return "{" + ",".join(parts) + "}"


def _checked(out: Any, bars: pl.DataFrame) -> list[tuple[str, pl.DataType]]:
    """The (column, dtype) pairs to encode after the structural checks; raises ``_Bad``."""
    if not isinstance(out, pl.DataFrame) or out.height != bars.height:
        raise _Bad
    cols = set(out.columns)
    if not cols <= ALLOWED or not set(REQUIRED) <= cols:
        raise _Bad
    if "ts" in cols:
        ts, ref = out["ts"], bars["ts"]
        same = ts.equals(ref) if ts.dtype == ref.dtype else \
            ts.cast(pl.Int64, strict=False).equals(ref.cast(pl.Int64, strict=False))
        if not same:
            raise _Bad
    return [(c, t) for c, t in SIGNAL_SCHEMA.items() if c in cols]


def _column(out: pl.DataFrame, name: str, dtype: pl.DataType) -> str:
    s = out.get_column(name)
    if s.dtype != dtype:
        s = s.cast(dtype, strict=True)
    if s.null_count() and name not in NULLABLE:
        raise _Bad
    if name in FLOATS:
        return _floats(s)
    if s.len() >= LARGE:
        return _long_labels(s)
    return _labels(s.to_list())


def _long_labels(s: pl.Series) -> str:
    """Label runs of a long column with polars' native ``rle`` (one collect, no Python loop)."""
    runs = s.rle().struct.unnest()
    values, lengths = runs["value"].to_list(), runs["len"].to_list()
    if any(v is not None and len(v) > MAX_LABEL for v in set(values)):
        raise _Bad
    if len(values) * 2 > s.len():
        return '{"values":' + json.dumps(s.to_list()) + "}"
    return '{"values":' + json.dumps(values) + ',"lengths":' + json.dumps(lengths) + "}"


def _floats(s: pl.Series) -> str:
    a = s.to_numpy()  # float64; a null becomes NaN
    nulls = None
    if s.null_count():
        nulls = np.isnan(a)
        if int(nulls.sum()) != s.null_count():  # a NaN that is not a null
            raise _Bad
        if not np.isfinite(a[~nulls]).all():
            raise _Bad
    elif not np.isfinite(a).all():
        raise _Bad
    n = a.shape[0]
    bits = a.view(np.int64).copy() if nulls is not None else a.view(np.int64)
    if nulls is not None:
        bits[nulls] = _NULL_BITS  # one pattern for every null: they form runs
    starts = np.flatnonzero(bits[1:] != bits[:-1]) + 1
    if n < 2 or (starts.shape[0] + 1) * 2 > n:  # polars writes floats ~3x faster than json
        text = (s.cast(pl.String).fill_null("null").str.join(",").item() if n >= LARGE
                else ",".join("null" if v is None else v for v in s.cast(pl.String).to_list()))
        return '{"values":[' + text + "]}"
    idx = np.concatenate(([0], starts))
    lengths = np.diff(np.append(idx, n))
    values = _with_nulls(a[idx], None if nulls is None else nulls[idx])
    return ('{"values":' + json.dumps(values) + ',"lengths":'
            + json.dumps(lengths.tolist()) + "}")


_NULL_BITS = np.array([np.nan]).view(np.int64)[0]


def _with_nulls(a: np.ndarray, nulls: np.ndarray | None) -> list[float | None]:
    values = a.tolist()
    if nulls is not None:
        for i in np.flatnonzero(nulls).tolist():
            values[i] = None
    return values


def _labels(values: list[str | None]) -> str:
    if any(v is not None and len(v) > MAX_LABEL for v in set(values)):
        raise _Bad
    return _runs(values)


def _runs(values: list[str | None]) -> str:
    runs = [(v, sum(1 for _ in g)) for v, g in itertools.groupby(values)]
    if len(runs) * 2 > len(values):
        return '{"values":' + json.dumps(values) + "}"
    return ('{"values":' + json.dumps([v for v, _ in runs]) + ',"lengths":'
            + json.dumps([k for _, k in runs]) + "}")
