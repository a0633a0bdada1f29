"""Timestamp columns of candle files → UTC microsecond datetimes (``parse_ts``).

Contract: ISO-8601 (``Z``, an offset, or naive = UTC; the layouts may be mixed row by row, offsets
converted to UTC), epoch seconds, or by magnitude epoch milliseconds / microseconds / nanoseconds;
a native datetime (naive = UTC) or date is kept. Unparseable cells become null (the importer
quarantines them); a column with no parseable value at all is a ``DataError`` naming the file.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from trading_brain.domain.candles import UTC_TS
from trading_brain.errors import DataError

_ISO_Z = "%Y-%m-%dT%H:%M:%SZ"
_ISO_Z_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
NUMBER = re.compile(r"^\s*-?\d+(\.\d*)?([eE][-+]?\d+)?\s*$")


def parse_ts(s: pl.Series, p: Path) -> pl.Series:
    """Any supported timestamp column → UTC µs datetimes (unparseable → null)."""
    if isinstance(s.dtype, pl.Datetime):
        return (s.dt.replace_time_zone("UTC") if s.dtype.time_zone is None
                else s.dt.convert_time_zone("UTC")).cast(UTC_TS).rename("ts")
    if s.dtype == pl.Date:
        return s.cast(pl.Datetime("us")).dt.replace_time_zone("UTC").rename("ts")
    if s.dtype.is_numeric():
        return epoch_to_ts(s.cast(pl.Float64))
    s = s.cast(pl.String)
    sample = s.drop_nulls().head(1).to_list()
    if sample and NUMBER.match(sample[0]):
        return epoch_to_ts(s.str.strip_chars().cast(pl.Float64, strict=False))
    formats = [_ISO_Z, None] if sample and _ISO_Z_RE.match(sample[0]) else [None]
    for fmt in formats:  # the common "…T00:00:00Z" layout first: 3× faster than inference
        try:
            return s.str.to_datetime(fmt, time_unit="us", time_zone="UTC").cast(UTC_TS).rename("ts")
        except Exception:  # polars raises InvalidOperationError/ComputeError; try the next one
            continue
    out = _parse_iso_mixed(s.str.strip_chars())  # unparseable cells: null, quarantined later
    if out.null_count() < s.len():
        return out
    raise DataError(f"{p.name}: cannot parse column 'timestamp' (first value {sample[:1]})")


# ISO-8601 layouts of a file that mixes them (offset first: a naive layout never matches one)
_ISO_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%dT%H:%M", "%Y-%m-%d")


def _parse_iso_mixed(s: pl.Series) -> pl.Series:
    """Row by row: offsets converted to UTC, naive taken as UTC (unparseable → null).

    A single inferred format (polars) fits one layout only; a file mixing ``+02:00`` and naive
    rows would lose one kind. The separator (`` `` or ``T``) and ``Z`` are normalised first.
    """
    norm = (s.str.replace(r"^(\d{4}-\d\d-\d\d)[ T]", "${1}T")
            .str.replace(r"[zZ]$", "+00:00").str.replace(r" ?(UTC|GMT)$", "+00:00"))
    parsed = [norm.str.to_datetime(f, time_unit="us", time_zone="UTC", strict=False)
              for f in _ISO_FORMATS]
    for fmt in (None, "%+"):  # anything else polars can infer, as a last resort
        try:
            parsed.append(s.str.to_datetime(fmt, time_unit="us", time_zone="UTC", strict=False))
        except Exception:  # polars refused the layout for every value: nothing to add
            continue
    return pl.select(pl.coalesce(parsed)).to_series().cast(UTC_TS).rename("ts")


def epoch_to_ts(v: pl.Series) -> pl.Series:
    """Epoch numbers → UTC µs datetimes; seconds, ms, µs or ns chosen per value by magnitude."""
    a = v.abs()
    us = (
        pl.select(
            pl.when(a < 1e11).then(v * 1e6)
            .when(a < 1e14).then(v * 1e3)
            .when(a < 1e17).then(v)
            .otherwise(v / 1e3)
            .round(0).cast(pl.Int64, strict=False)
        ).to_series()
    )
    return us.cast(pl.Datetime("us")).dt.replace_time_zone("UTC").rename("ts")
