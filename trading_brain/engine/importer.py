"""Import candle files into a store: read → validate → quarantine the bad rows → upsert the good.

Contract (``import_files``; behind the CLI's ``import-ohlcv``):
- Two phases. First every file is read and the whole batch validated in memory; a whole-file
  error (unreadable file, missing column, unknown timeframe, spacing that does not match the
  timeframe) raises ``DataError`` before anything is written, so a bad load changes nothing
  already stored. Then ONE ``store.import_candles(good, "import:<first file>[ (+N files)]",
  replace=…, quarantine=[(bad rows, "import:<file name>") per file])`` writes everything in one
  transaction.
- Stored candles are evidence: a good row whose key is stored with other values (a conflict)
  makes the whole import a ``DataError`` naming the number of conflicts and the first one
  (stored vs file values) — nothing is written, not even the rows that do not conflict or the
  quarantined ones. With ``replace=True`` conflicting rows overwrite the stored ones and the old
  values are kept in ``candle_revisions``. Rows identical to stored ones are left untouched
  (``unchanged``): re-importing the same files is a no-op.
- Validation runs over all files together, so rows repeated across overlapping files collapse
  (identical) or are quarantined (conflicting), and outliers are judged with full context.
- Rows are keyed (symbol, timeframe, ts): importing the same files twice leaves the same
  candles (quarantined rows are recorded again on each import, for the record).
- ``progress(done, total, message)`` is called after each file is read, after quarantining and
  after storing (``total`` = files + 2); use it for a progress bar.

Reading files is I/O: the reader and the folder expansion are injectable (``reader=``,
``expand=``). When omitted they default to ``adapters.replay.files``, imported lazily inside the
call — the one place this engine module reaches an adapter, so the CLI can simply call
``adapters.replay.import_candle_files(paths, store)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from trading_brain.domain.candles import OHLCV
from trading_brain.engine.candles import validate
from trading_brain.errors import DataError

READ_THREADS = 2
WRITTEN = ("inserted", "unchanged", "replaced")
Progress = Callable[[int, int, str], None]
Reader = Callable[[Path, str | None, str | None], pl.DataFrame]


class ImportStore(Protocol):
    """What the importer needs from the warehouse (``adapters.duckdb.store.Store`` fits)."""

    def import_candles(
        self, df: pl.DataFrame, source: str, *, replace: bool = ...,
        quarantine: Sequence[tuple[pl.DataFrame, str]] = ..., reason: str = ...,
    ) -> tuple[pl.DataFrame, pl.DataFrame]: ...


@dataclass(frozen=True)
class SeriesReport:
    """Counts for one (symbol, timeframe) series of an import."""

    symbol: str
    timeframe: str
    rows_read: int
    imported: int
    quarantined: int
    first_ts: str | None
    last_ts: str | None
    inserted: int = 0
    unchanged: int = 0
    replaced: int = 0


@dataclass(frozen=True)
class ImportReport:
    """What an import did; ``rows_read - imported - quarantined`` identical duplicates collapsed.

    ``imported`` good rows = ``inserted`` (new keys) + ``unchanged`` (already stored, same
    values, untouched) + ``replaced`` (other values stored; only with ``replace``).
    """

    files: list[str]
    rows_read: int
    imported: int
    quarantined: int
    series: list[SeriesReport] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    inserted: int = 0
    unchanged: int = 0
    replaced: int = 0

    @property
    def collapsed(self) -> int:
        return self.rows_read - self.imported - self.quarantined

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for ``--json``)."""
        return {**asdict(self), "collapsed": self.collapsed}

    def __str__(self) -> str:
        """A short human summary (for the CLI)."""
        lines = [f"imported {self.imported} candle(s) from {len(self.files)} file(s) "
                 f"({self.inserted} new, {self.unchanged} unchanged, {self.replaced} replaced); "
                 f"quarantined {self.quarantined}; identical duplicates collapsed {self.collapsed}"]
        lines += [f"  {s.symbol} {s.timeframe}: read {s.rows_read}, imported {s.imported} "
                  f"({s.inserted} new, {s.unchanged} unchanged, {s.replaced} replaced), "
                  f"quarantined {s.quarantined} ({s.first_ts or '-'} .. {s.last_ts or '-'})"
                  for s in self.series]
        if self.reasons:
            lines.append("  reasons: " + ", ".join(f"{k}={v}" for k, v in self.reasons.items()))
        return "\n".join(lines)


def import_files(
    paths: Path | str | Iterable[Path | str],
    store: ImportStore,
    symbol: str | None = None,
    timeframe: str | None = None,
    progress: Progress | None = None,
    *,
    reader: Reader,
    expand: Callable[[Path | str | Iterable[Path | str]], list[Path]],
    replace: bool = False,
) -> ImportReport:
    """Import candle files (or folders of them) into ``store``; see the module docstring.

    ``reader``/``expand`` are the file adapter's functions (``adapters.replay.import_candle_files``
    passes them), so this engine code does no I/O of its own.
    """
    file_list = expand(paths)
    total = len(file_list) + 2
    tick = progress or (lambda done, total, msg: None)
    frames = []
    with ThreadPoolExecutor(max_workers=min(READ_THREADS, len(file_list))) as pool:
        # polars releases the GIL: gzip inflation of one file overlaps parsing of another
        results = pool.map(lambda f: reader(f, symbol, timeframe), file_list)
        for i, (f, df) in enumerate(zip(file_list, results, strict=True), 1):
            frames.append(df.with_columns(pl.lit(str(f)).alias("_file")))
            tick(i, total, f"read {f.name}")
    raw = pl.concat(frames)
    good, bad = validate(raw, keep=["_file"])
    counts = _write(store, good, bad, file_list, tick, replace)
    return _report(file_list, raw, good, bad, counts)


def _write(store: ImportStore, good: pl.DataFrame, bad: pl.DataFrame, files: Sequence[Path],
           tick: Progress, replace: bool) -> pl.DataFrame:
    """ONE transaction: every good row, and the bad rows quarantined per file (provenance)."""
    n = len(files)
    quarantine = [] if not bad.height else [
        (rows, f"import:{Path(str(path)).name}")
        for (path,), rows in bad.partition_by("_file", as_dict=True, include_key=False).items()]
    tick(n + 1, n + 2, f"checking {good.height} candle(s) against the stored ones")
    source = f"import:{files[0].name}" + (f" (+{n - 1} files)" if n > 1 else "")
    counts, conflicts = store.import_candles(good.drop("_file"), source, replace=replace,
                                             quarantine=quarantine)
    if conflicts.height and not replace:
        raise DataError(conflict_message(conflicts))
    tick(n + 2, n + 2, f"stored {good.height} candle(s), quarantined {bad.height} row(s)")
    return counts


def conflict_message(conflicts: pl.DataFrame) -> str:
    """One line: how many candles conflict, the first one (stored vs file values), the way out."""
    first = conflicts.row(0, named=True)
    diffs = [f"{c} {first[f'old_{c}']!r} vs {first[f'new_{c}']!r}" for c in OHLCV
             if first[f"old_{c}"] != first[f"new_{c}"]]
    return (f"{conflicts.height} candle(s) in the file(s) differ from stored ones; first: "
            f"{first['symbol']} {first['timeframe']} {first['ts'].isoformat()} stored "
            f"(from {first['old_source']}) vs file: {', '.join(diffs)}; nothing was imported "
            "(pass --replace to overwrite; the old values are kept in candle_revisions)")


def _report(files: Sequence[Path], raw: pl.DataFrame, good: pl.DataFrame,
            bad: pl.DataFrame, written: pl.DataFrame) -> ImportReport:
    key = ["symbol", "timeframe"]
    counts = raw.group_by(key).agg(pl.len().alias("rows_read")).join(
        good.group_by(key).agg(pl.len().alias("imported"), pl.col("ts").min().alias("first_ts"),
                               pl.col("ts").max().alias("last_ts")), on=key, how="left",
    ).join(bad.group_by(key).agg(pl.len().alias("quarantined")), on=key, how="left",
           nulls_equal=True,
    ).join(written.select(*key, *WRITTEN), on=key, how="left", nulls_equal=True)
    series = [
        SeriesReport(r["symbol"] or "", r["timeframe"] or "", r["rows_read"], r["imported"] or 0,
                     r["quarantined"] or 0,
                     r["first_ts"].isoformat() if r["first_ts"] else None,
                     r["last_ts"].isoformat() if r["last_ts"] else None,
                     *(r[c] or 0 for c in WRITTEN))
        for r in counts.sort(key).iter_rows(named=True)
    ]
    reasons = dict(bad.group_by("reason").len().sort("reason").iter_rows()) if bad.height else {}
    totals = {c: sum(getattr(s, c) for s in series) for c in WRITTEN}
    return ImportReport(files=[str(f) for f in files], rows_read=raw.height, imported=good.height,
                        quarantined=bad.height, series=series, reasons=reasons, **totals)
