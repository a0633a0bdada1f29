"""Look-ahead and warm-up checks for strategies (pure; receives a ``ports.SignalSource``).

``check_lookahead(source, bars, cut_points=30)``: a decision on bar t may use only bars with open
time <= t. The strategy is run on the full history and on ``cut_points`` truncated histories
``bars[:L]`` (lengths spread evenly from about n/cut_points to n-1). Every row of each truncated
output must equal the same row of the full output; the report names, for each failing cut, the
first differing bar and column, and overall the earliest such bar.

``check_warmup(source, bars, warmup_bars, samples=30)``: the live scan passes only the last
``warmup_bars`` bars, so for ``samples`` bars t (spread evenly over the history) the LAST row of
``generate(bars[t-warmup_bars+1 : t+1])`` must equal row t of the full-history output (like
freqtrade's recursive analysis). ``warmup_bars`` < 1 fails the check at once: the scan would pass
no bars and get no decision (the contract in strategies/README.md asks for >= 1).

Comparison: ``action``, ``intent`` and ``regime`` must be identical (nulls equal nulls); float
columns must both be null or satisfy ``|a - b| <= atol + rtol * |a|`` (default rtol 1e-9, atol
1e-12), because indicators with infinite memory (EMA, Wilder) converge but never become
bit-identical when started later. Truncation alone (look-ahead) should give exact equality; the
tolerance only forgives rounding. A ``StrategyError`` from ``generate`` fails the check with the
message in ``error``. Cost: about ``cut_points`` full-size and ``samples`` window-size generate
calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from trading_brain.domain.strategy import SIGNAL_SCHEMA
from trading_brain.errors import DataError, StrategyError
from trading_brain.ports import SignalSource

_FLOATS = tuple(c for c, t in SIGNAL_SCHEMA.items() if t == pl.Float64())
_EXACT = tuple(c for c in SIGNAL_SCHEMA if c not in _FLOATS)


@dataclass(frozen=True)
class Difference:
    """First disagreement found for one cut (look-ahead) or one sampled bar (warm-up)."""

    cut: int  # look-ahead: length of the truncated history; warm-up: the sampled bar index
    bar: int  # index in the full history of the differing row
    ts: Any  # the row's timestamp as polars gives it
    column: str
    full: Any  # the cell values (any column type) on the full and truncated history
    truncated: Any

    def describe(self) -> str:
        """One line for logs and asset-check metadata."""
        return (
            f"bar {self.bar} ({self.ts}) column {self.column!r}: full history gives "
            f"{self.full!r}, truncated/window gives {self.truncated!r} (cut {self.cut})"
        )


@dataclass(frozen=True)
class CheckReport:
    """Outcome of a look-ahead or warm-up check."""

    kind: str  # "lookahead" | "warmup"
    passed: bool
    n_bars: int
    points: tuple[int, ...]  # cut lengths (look-ahead) or sampled bar indices (warm-up)
    rows_compared: int
    failures: tuple[Difference, ...] = ()
    error: str | None = None

    @property
    def first(self) -> Difference | None:
        """The failure at the earliest bar, if any."""
        return min(self.failures, key=lambda d: (d.bar, d.cut)) if self.failures else None

    def summary(self) -> str:
        """One line: passed, or the earliest difference / the error."""
        if self.error:
            return f"{self.kind} check failed: {self.error}"
        if self.first is not None:
            return (
                f"{self.kind} check failed at {len(self.failures)}/{len(self.points)} points; "
                f"first: {self.first.describe()}"
            )
        return f"{self.kind} check passed ({len(self.points)} points, {self.rows_compared} rows)"

    def to_metadata(self) -> dict[str, Any]:
        """JSON-friendly dict for asset-check metadata and stored reports."""
        first = self.first
        return {
            "kind": self.kind, "passed": self.passed, "n_bars": self.n_bars,
            "points": len(self.points), "rows_compared": self.rows_compared,
            "failures": len(self.failures), "error": self.error, "summary": self.summary(),
            "first_bar": first.bar if first else None,
            "first_column": first.column if first else None,
        }  # fmt: skip


LookaheadReport = CheckReport
WarmupReport = CheckReport


def first_difference(
    full: pl.DataFrame, other: pl.DataFrame, rtol: float = 1e-9, atol: float = 1e-12
) -> tuple[int, str] | None:
    """(row, column) of the first disagreement between two signal frames of equal height."""
    if full.height != other.height:
        raise ValueError(f"cannot compare {full.height} rows with {other.height} rows")
    masks = {}
    for c in _EXACT:
        masks[c] = full[c].ne_missing(other[c])
    for c in _FLOATS:
        a, b = full[c], other[c]
        both_null = a.is_null() & b.is_null()
        close = (a - b).abs() <= atol + rtol * a.abs()
        masks[c] = ~(both_null | close.fill_null(False))
    frame = pl.DataFrame(masks)
    any_bad = frame.select(pl.any_horizontal(pl.all()).arg_true().first()).item()
    if any_bad is None:
        return None
    row = frame.row(any_bad, named=True)
    column = next(c for c in SIGNAL_SCHEMA if row[c])
    return int(any_bad), column


def _difference(
    full: pl.DataFrame, other: pl.DataFrame, offset: int, cut: int, rtol: float, atol: float
) -> Difference | None:
    found = first_difference(full, other, rtol, atol)
    if found is None:
        return None
    row, column = found
    bar = offset + row
    ts = full["ts"][row] if "ts" in full.columns else None
    return Difference(cut, bar, ts, column, full[column][row], other[column][row])


def lookahead_cuts(n: int, count: int) -> list[int]:
    """``count`` truncation lengths spread evenly over [~n/count, n-1] (distinct, ascending)."""
    if n < 2:
        return []
    lengths = np.linspace(max(1, n // max(count, 1)), n - 1, num=max(count, 1))
    return sorted({int(round(x)) for x in lengths})


def check_lookahead(
    source: SignalSource,
    bars: pl.DataFrame,
    cut_points: int = 30,
    params: dict | None = None,
    rtol: float = 1e-9,
    atol: float = 1e-12,
    full: pl.DataFrame | None = None,
) -> CheckReport:
    """Compare outputs on truncated histories with the full-history output (see module doc);
    ``full``: that output when the caller already has it (saves one call)."""
    n = bars.height
    cuts = lookahead_cuts(n, cut_points)
    try:
        full = source.generate(bars, params) if full is None else full
    except StrategyError as e:
        return CheckReport("lookahead", False, n, tuple(cuts), 0, error=f"full history: {e}")
    failures: list[Difference] = []
    compared = 0
    for length in cuts:
        try:
            part = source.generate(bars.head(length), params)
        except StrategyError as e:
            return CheckReport(
                "lookahead", False, n, tuple(cuts), compared, tuple(failures),
                error=f"history of {length} bars: {e}",
            )  # fmt: skip
        compared += length
        diff = _difference(full.head(length), part, 0, length, rtol, atol)
        if diff is not None:
            failures.append(diff)
    return CheckReport("lookahead", not failures, n, tuple(cuts), compared, tuple(failures))


def warmup_samples(n: int, warmup_bars: int, count: int) -> list[int]:
    """``count`` bar indices spread evenly over [warmup_bars, n-1] (distinct, ascending)."""
    if n <= warmup_bars:
        raise DataError(f"check_warmup needs more than warmup_bars={warmup_bars} bars, got {n}")
    points = np.linspace(warmup_bars, n - 1, num=max(count, 1))
    return sorted({int(round(x)) for x in points})


def check_warmup(
    source: SignalSource,
    bars: pl.DataFrame,
    warmup_bars: int,
    samples: int = 30,
    params: dict | None = None,
    rtol: float = 1e-9,
    atol: float = 1e-12,
) -> CheckReport:
    """Compare the last row on windows of ``warmup_bars`` bars with the full history (module
    doc)."""
    n = bars.height
    if warmup_bars < 1:
        return CheckReport(
            "warmup", False, n, (), 0,
            error=f"WARMUP_BARS = {warmup_bars}: it must be at least 1, because the live scan "
                  "passes only the last WARMUP_BARS bars and decides on the last row; set it to "
                  "the history your indicators need",
        )  # fmt: skip
    points = warmup_samples(n, warmup_bars, samples)
    try:
        full = source.generate(bars, params)
    except StrategyError as e:
        return CheckReport("warmup", False, n, tuple(points), 0, error=f"full history: {e}")
    failures: list[Difference] = []
    for done, t in enumerate(points):
        window = bars.slice(t - warmup_bars + 1, warmup_bars)
        try:
            last = source.generate(window, params).tail(1)
        except StrategyError as e:
            return CheckReport(
                "warmup", False, n, tuple(points), done, tuple(failures),
                error=f"window ending at bar {t}: {e}",
            )  # fmt: skip
        diff = _difference(full.slice(t, 1), last, t, t, rtol, atol)
        if diff is not None:
            failures.append(diff)
    return CheckReport("warmup", not failures, n, tuple(points), len(points), tuple(failures))
