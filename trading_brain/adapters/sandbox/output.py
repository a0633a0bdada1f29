"""Worker-side shaping of a strategy's output into the JSON ``SignalsReply`` (runs in the sandbox).

``encode_signals(out, bars)`` checks the structure cheaply (a DataFrame, one row per bar, the
contract's columns, castable types, finite floats, labels <= 32 chars) and encodes the columns of
``SIGNAL_SCHEMA``; on any problem it calls ``domain.strategy.validate_signals`` so the author gets
the contract's precise message. Each column is sent as ``{"values": [...]}`` or, when it has few
runs (the usual case: a signal column is mostly "hold"), run-length encoded with ``"lengths"``.
Value ranges are left to the host, which validates every reply
again (this code runs inside the untrusted worker, so the host never relies on it).
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from trading_brain.domain.strategy import SIGNAL_SCHEMA, validate_signals

FLOATS = [c for c, t in SIGNAL_SCHEMA.items() if t == pl.Float64()]
LABELS = ("action", "intent", "regime")


def encode_signals(out: Any, bars: pl.DataFrame) -> bytes:
    """The ``SignalsReply`` JSON for ``out``; raises StrategyError (or TypeError) if it is bad."""
    sig = _conform(out, bars)
    cols = ",".join(f'"{c}":{_json_column(sig[c])}' for c in SIGNAL_SCHEMA)
    return ('{"ok":true,"kind":"signals","columns":{' + cols + "}}").encode()


RLE_MIN_ROWS = 4096  # below this a plain list is small and cheaper to build than runs


def _json_column(series: pl.Series) -> str:
    """``{"values": [...]}``, run-length encoded (``"lengths"``) for long columns with few runs."""
    if series.len() < RLE_MIN_ROWS:
        return '{"values":' + _json_array(series) + "}"
    runs = series.rle()
    if runs.len() * 2 > series.len():
        return '{"values":' + _json_array(series) + "}"
    parts = runs.struct.unnest()
    return ('{"values":' + _json_array(parts["value"]) + ',"lengths":'
            + _json_array(parts["len"]) + "}")


def _conform(out: Any, bars: pl.DataFrame) -> pl.DataFrame:
    """Cheap structural check and cast of ``out``; values are checked by the host.

    On any structural problem ``validate_signals`` produces the message.
    """
    ok = (
        isinstance(out, pl.DataFrame)
        and out.height == bars.height
        and set(out.columns) <= {*SIGNAL_SCHEMA, "ts"}
        and set(SIGNAL_SCHEMA) - {"regime"} <= set(out.columns)
        and (
            "ts" not in out.columns
            or out["ts"]
            .cast(pl.Int64, strict=False)
            .equals(bars["ts"].cast(pl.Int64, strict=False))
        )
    )
    if ok:
        try:
            sig = out.select(
                [
                    pl.col(c).cast(t, strict=True) if c in out.columns else pl.lit(None, t).alias(c)
                    for c, t in SIGNAL_SCHEMA.items()
                ]
            )
            bad = sig.select(
                pl.any_horizontal([pl.col(c).is_nan() | pl.col(c).is_infinite() for c in FLOATS])
                .any()
                .alias("nonfinite"),
                pl.max_horizontal([pl.col(c).str.len_chars().max() for c in LABELS]).alias("len"),
            ).row(0)
            if not bad[0] and (bad[1] or 0) <= 32:
                return sig
        except Exception:
            pass
    validate_signals(out, bars)
    raise TypeError("generate output does not match the signal contract")


def _json_array(series: Any) -> str:
    """A JSON array of a column; floats are formatted by polars (shortest round-trip form, ~5x
    faster than ``json.dumps``; non-finite values were rejected by ``_conform``)."""

    if series.dtype.is_numeric():
        return "[" + (series.cast(pl.String).fill_null("null").str.join(",").item() or "") + "]"
    return json.dumps(series.to_list())
