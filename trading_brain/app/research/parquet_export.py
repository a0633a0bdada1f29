"""A read-only Parquet export of warehouse candles, for research workers that must not open DuckDB.

Contract:
- ``export_candles(store, root, symbols, timeframe, start, end)`` is run by ONE step (the
  warehouse's single reader/writer): it reads the candles of each symbol in ``[start, end)`` and
  writes one Parquet file per (symbol, timeframe) plus ``manifest.json`` (per file: rows, sha256
  of its bytes, first and last open time; and the window). The snapshot is built in a hidden
  temporary folder under ``root``, fsync'd, then renamed in one step to ``root/<snapshot_id>``
  (``snapshot_id``: a digest of the manifest), so a reader sees a complete snapshot or none.
  Snapshots are immutable and content-addressed: exporting the same candles again reuses the
  existing one. The newest ``KEEP`` snapshots are kept (older ones are removed, and so is
  the temporary folder of an export killed over ``STALE_TMP_S`` ago). A symbol with no
  candles in the window is a DataError and nothing is written.
- ``read_export(snapshot, symbol)`` is what workers call (polars only, no DuckDB): the symbol's
  bars (``domain.candles.BARS_COLUMNS``, sorted by ``ts``) after checking the file's sha256 and
  row count against the manifest; a missing or altered file is a one-line DataError.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from trading_brain.domain.candles import BARS_COLUMNS
from trading_brain.errors import DataError

if TYPE_CHECKING:
    from trading_brain.adapters.duckdb import Store

KEEP = 3
STALE_TMP_S = 3600.0  # a killed export's temporary folder older than this is removed
MANIFEST = "manifest.json"
FORMAT = "trading-brain-candles/1"


@dataclass(frozen=True, slots=True)
class Export:
    """One snapshot folder and its manifest (``files``: symbol -> entry)."""

    path: Path
    manifest: dict[str, Any]

    @property
    def snapshot_id(self) -> str:
        return self.path.name

    def entry(self, symbol: str) -> dict[str, Any]:
        files = self.manifest["files"]
        if symbol not in files:
            raise DataError(f"{symbol} is not in the candle export {self.path} "
                            f"(has {', '.join(sorted(files))})")
        return files[symbol]


def file_name(symbol: str, timeframe: str) -> str:
    """``BTC/USD`` + ``5m`` -> ``BTC-USD_5m.parquet``."""
    return f"{symbol.replace('/', '-')}_{timeframe}.parquet"


def export_candles(store: Store, root: Path, symbols: Sequence[str], timeframe: str,
                   start: datetime | None, end: datetime | None) -> Export:
    """Write (or reuse) the snapshot of ``symbols``' candles (see the module docstring)."""
    frames = {}
    for sym in symbols:  # read everything first: an empty symbol writes nothing
        df = store.read_candles([sym], timeframe, start, end)
        if df.is_empty():
            raise DataError(f"no {timeframe} candles for {sym} in the warehouse for that "
                            "window; nothing was exported")
        frames[sym] = df.sort("ts").select(BARS_COLUMNS)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        files = {}
        for sym, df in frames.items():
            name = file_name(sym, timeframe)
            df.write_parquet(tmp / name, statistics=False)
            files[sym] = {"file": name, "rows": df.height, "sha256": _sha256(tmp / name),
                          "first_ts": _iso(df["ts"][0]), "last_ts": _iso(df["ts"][-1])}
        manifest = {"format": FORMAT, "timeframe": timeframe,
                    "start": _iso(start) if start else None, "end": _iso(end) if end else None,
                    "files": files}
        body = json.dumps(manifest, sort_keys=True, indent=1)
        (tmp / MANIFEST).write_text(body, encoding="utf-8")
        _fsync_dir(tmp)
        final = root / hashlib.sha256(body.encode()).hexdigest()[:16]
        if final.exists():  # the same candles were exported before: reuse that snapshot
            shutil.rmtree(tmp)
            os.utime(final)
        else:
            os.rename(tmp, final)
            _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _prune(root, keep=final)
    return Export(final, manifest)


def open_export(path: Path | str) -> Export:
    """The snapshot at ``path`` (its manifest parsed); a missing manifest is a DataError."""
    p = Path(path)
    try:
        manifest = json.loads((p / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"candle export {p} has no readable {MANIFEST}: {e}") from None
    if manifest.get("format") != FORMAT:
        raise DataError(f"candle export {p} has format {manifest.get('format')!r}, "
                        f"expected {FORMAT!r}")
    return Export(p, manifest)


def read_export(snapshot: Export | Path | str, symbol: str) -> pl.DataFrame:
    """The checked bars of ``symbol`` from a snapshot (see the module docstring)."""
    exp = snapshot if isinstance(snapshot, Export) else open_export(snapshot)
    entry = exp.entry(symbol)
    path = exp.path / entry["file"]
    if not path.exists():
        raise DataError(f"candle export file {path} is missing")
    digest = _sha256(path)
    if digest != entry["sha256"]:
        raise DataError(f"candle export file {path} does not match its manifest checksum "
                        f"({digest[:12]} != {entry['sha256'][:12]}); re-run the export")
    df = pl.read_parquet(path)
    if df.height != entry["rows"] or df.columns != list(BARS_COLUMNS):
        raise DataError(f"candle export file {path} has {df.height} rows / columns "
                        f"{df.columns}, manifest says {entry['rows']} rows")
    return df


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _iso(t: datetime) -> str:
    return t.isoformat()


def _fsync_dir(folder: Path) -> None:
    for p in folder.iterdir():
        if p.is_file():
            with p.open("rb") as f:
                os.fsync(f.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _prune(root: Path, keep: Path) -> None:
    """Remove all but the newest ``KEEP`` snapshots (never ``keep``), and the temporary folders
    of exports killed mid-way: a ``.tmp-*`` folder untouched for ``STALE_TMP_S`` (a live export
    writes its folder within seconds; a younger one may be another export in flight)."""
    snaps = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    for old in snaps[KEEP:]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)
    cutoff = time.time() - STALE_TMP_S
    for tmp in root.glob(".tmp-*"):
        try:
            stale = tmp.stat().st_mtime < cutoff
        except OSError:  # finished or removed meanwhile
            continue
        if stale:
            shutil.rmtree(tmp, ignore_errors=True)
