"""The strategy contract (DESIGN §7) and the validation of what a strategy returns.

A strategy is a module ``strategies/<family>/v<N>.py`` exporting:

- ``STRATEGY_ID: str`` (the family, ``[a-z][a-z0-9_]*``), ``VERSION: int`` (N), ``WARMUP_BARS: int``
  (the history the live scan passes; decisions must not change with more history);
- ``Params``: a frozen pydantic model; every field has a default and declares its search space
  (``ge``/``le`` bounds, ``Literal`` choices, or ``json_schema_extra={"space": [...]}``);
- ``generate(bars: pl.DataFrame, params: Params) -> pl.DataFrame``: pure and vectorised.

``bars`` holds one symbol: columns ``ts`` (UTC), ``open, high, low, close, volume`` (float64),
sorted by ``ts``. The result has exactly one row per input bar, in the same order, with the
columns of ``SIGNAL_SCHEMA`` (``ts`` may be omitted; when present it must equal the input's):

=============  ======================================================================
action         ``"enter"`` (open a long), ``"exit"`` (close it) or ``"hold"``
size           fraction of available cash an entry spends, in [0, 1]; ignored unless enter
stop_loss      distance below the entry fill as a fraction (0.02 = 2 %), > 0, or null = none
take_profit    distance above the entry fill as a fraction, > 0, or null = none
intent         ``"day"``, ``"swing"`` or ``"position"``
confidence     in [0, 1]
regime         optional free label of the market state the strategy sees (≤ 32 chars) or null
=============  ======================================================================

A decision on bar ``t`` may use only bars with open time ≤ t (checked by the look-ahead check);
it is executed at the open of bar ``t+1`` (see engine/fills.py).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from trading_brain.errors import StrategyError

ACTIONS = ("enter", "exit", "hold")
INTENTS = ("day", "swing", "position")
SIGNAL_SCHEMA: dict[str, pl.DataType] = {
    "action": pl.String(),
    "size": pl.Float64(),
    "stop_loss": pl.Float64(),
    "take_profit": pl.Float64(),
    "intent": pl.String(),
    "confidence": pl.Float64(),
    "regime": pl.String(),
}
REQUIRED = ("action", "size", "stop_loss", "take_profit", "intent", "confidence")
MAX_ROWS = 2_000_000


def validate_signals(out: object, bars: pl.DataFrame) -> pl.DataFrame:
    """Check a strategy's output against the contract; return it with ``ts`` from ``bars``.

    Raises StrategyError with a message precise enough to hand back to an (AI) author.
    """
    if not isinstance(out, pl.DataFrame):
        raise StrategyError(f"generate must return a polars DataFrame, got {type(out).__name__}")
    if out.height != bars.height:
        raise StrategyError(f"generate returned {out.height} rows for {bars.height} bars")
    if out.height > MAX_ROWS:
        raise StrategyError(f"generate returned {out.height} rows; the limit is {MAX_ROWS}")
    missing = [c for c in REQUIRED if c not in out.columns]
    if missing:
        raise StrategyError(f"generate output is missing column(s): {', '.join(missing)}")
    extra = [c for c in out.columns if c not in SIGNAL_SCHEMA and c != "ts"]
    if extra:
        raise StrategyError(f"generate output has unexpected column(s): {', '.join(extra)}")
    if "ts" in out.columns and not out["ts"].cast(pl.Int64, strict=False).equals(
        bars["ts"].cast(pl.Int64, strict=False)
    ):
        raise StrategyError("generate output 'ts' does not match the input bars")
    cols: dict[str, pl.Series] = {"ts": bars.get_column("ts")}
    try:
        for c, t in SIGNAL_SCHEMA.items():
            if c not in out.columns:
                cols[c] = pl.Series(c, [None] * out.height, dtype=t)  # only ``regime``
                continue
            s = out.get_column(c)
            cols[c] = s if s.dtype == t else s.cast(t, strict=True)
    except Exception as e:  # polars raises several exception types for bad casts
        raise StrategyError(f"generate output has a column of the wrong type: {e}") from None
    sig = pl.DataFrame(cols)
    _check_values(sig)
    return sig


_RANGES = (  # column, low, high, nullable
    ("size", 0.0, 1.0, False),
    ("confidence", 0.0, 1.0, False),
    ("stop_loss", 0.0, 1.0, True),
    ("take_profit", 0.0, math.inf, True),
)


def _clean(sig: pl.DataFrame) -> bool:
    """True when no value breaks the contract. numpy and set checks only: Series methods that
    polars runs as expressions (``unique``, ``drop_nulls``, ``str.len_chars``…) each cost a
    lazy-frame collect (~0.1–0.5 ms). Any doubt goes to the counting pass of ``_check_values``."""
    for col, allowed in (("action", ACTIONS), ("intent", INTENTS)):
        s = sig.get_column(col)
        if s.null_count():
            return False
        seen = s.unique() if s.len() >= 4096 else s  # one collect beats a long Python list
        if not set(seen.to_list()) <= set(allowed):
            return False
    regime = sig.get_column("regime")
    if regime.null_count() < regime.len():
        labels = regime.unique() if regime.len() >= 4096 else regime
        if max(len(v) for v in labels.to_list() if v is not None) > 32:
            return False
    for col, lo, hi, nullable in _RANGES:
        s = sig.get_column(col)
        a = s.to_numpy()  # float64; a null becomes NaN
        if s.null_count():
            if not nullable:
                return False
            nan = np.isnan(a)
            if int(nan.sum()) != s.null_count():  # a NaN that is not a null
                return False
            a = a[~nan]
        if not np.isfinite(a).all() or (a < lo).any() or (a > hi).any() \
                or (nullable and (a <= 0).any()):
            return False
    return True


def _check_values(sig: pl.DataFrame) -> None:
    """Raise StrategyError naming the first violation (one counting pass over every rule)."""
    if _clean(sig):
        return
    exprs = [
        (~pl.col("action").is_in(ACTIONS)).fill_null(True).sum().alias("action"),
        (~pl.col("intent").is_in(INTENTS)).fill_null(True).sum().alias("intent"),
        (pl.col("regime").str.len_chars() > 32).fill_null(False).sum().alias("regime"),
    ]
    for col, lo, hi, nullable in _RANGES:
        c = pl.col(col)
        exprs += [
            c.null_count().alias(f"{col}:null") if not nullable else pl.lit(0).alias(f"{col}:null"),
            (c.is_nan() | c.is_infinite()).fill_null(False).sum().alias(f"{col}:nonfinite"),
            ((c < lo) | (c > hi) | ((c <= 0) if nullable else pl.lit(False)))
            .fill_null(False).sum().alias(f"{col}:range"),
        ]
    counts = sig.select(exprs).row(0, named=True)
    if not any(counts.values()):
        return
    if counts["action"]:
        first = sig.filter(~pl.col("action").is_in(ACTIONS) | pl.col("action").is_null())
        raise StrategyError(f"column 'action' has {counts['action']} value(s) outside "
                            f"{list(ACTIONS)}, first: {first['action'][0]!r}")
    if counts["intent"]:
        raise StrategyError(f"column 'intent' has value(s) outside {list(INTENTS)}")
    for col, *_ in _RANGES:
        if counts[f"{col}:null"]:
            raise StrategyError(f"column '{col}' has {counts[f'{col}:null']} null value(s)")
        if counts[f"{col}:nonfinite"]:
            raise StrategyError(f"column '{col}' has NaN or infinite values")
        if counts[f"{col}:range"]:
            raise StrategyError(f"column '{col}' has values outside the allowed range")
    raise StrategyError("column 'regime' has labels longer than 32 characters")
