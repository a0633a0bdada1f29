"""Where research bars come from: candle files or the home's warehouse (`backtest`/`optimize`).

Contract (no click here; every failure is a one-line ConfigError / DataError):
- ``BarsRequest.parse`` checks the data options cheaply, before any sandbox worker starts:
  ``--start``/``--end`` are ISO-8601 (naive = UTC), ``--symbols`` items may be comma lists,
  exactly one of ``--data`` (existing paths) and ``--symbols`` is given.
- ``load_bars_for`` returns bars per symbol from the files (``register.load_bars``: symbol from
  ``--symbol``, else the file name, else its stem) or from the warehouse (timeframe 5m by
  default), windowed to ``[start, end)`` and gap-checked (``backtest.check_gaps``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from trading_brain.app.research.backtest import check_gaps, parse_time, window
from trading_brain.app.warehouse import not_a_home
from trading_brain.errors import ConfigError, DataError

if TYPE_CHECKING:
    from trading_brain.ports import CandleStore
    from trading_brain.settings import Home


@dataclass(frozen=True, slots=True)
class BarsRequest:
    """Which bars to load: files (``data``, ``symbol``) or warehouse ``symbols``."""

    data: tuple[str, ...]
    symbol: str | None
    symbols: tuple[str, ...]
    start: datetime | None
    end: datetime | None
    timeframe: str | None

    @classmethod
    def parse(cls, data: Sequence[str], symbol: str | None, symbols: Sequence[str],
              start: str | None, end: str | None, timeframe: str | None) -> BarsRequest:
        """Validate the raw options (see the module docstring)."""
        req = cls(tuple(data), symbol,
                  tuple(s for item in symbols for s in item.split(",") if s.strip()),
                  parse_time(start, "--start"), parse_time(end, "--end"), timeframe)
        if req.data and req.symbols:
            raise ConfigError("give either --data or --symbols, not both")
        if not req.data and not req.symbols:
            raise ConfigError("give --data PATH, or --symbols with --start/--end for "
                              "warehouse bars")
        for p in req.data:
            if not Path(p).exists():
                raise DataError(f"no such file or folder: {p}")
        return req


def load_bars_for(req: BarsRequest, store: CandleStore | None,
                  home: Home) -> dict[str, pl.DataFrame]:
    """Bars per symbol from ``req``'s files or the warehouse, windowed and gap-checked."""
    if req.data:
        from trading_brain.app.research.register import load_bars

        bars = load_bars(list(req.data), req.symbol, req.timeframe)
    else:
        if store is None:
            raise not_a_home(home)
        bars = warehouse_bars(store, req.symbols, req.timeframe or "5m", req.start, req.end)
    if req.start is not None or req.end is not None:
        bars = window(bars, req.start, req.end)
    check_gaps(bars)
    return bars


def warehouse_bars(store: CandleStore, symbols: Sequence[str], timeframe: str,
                   start: datetime | None, end: datetime | None) -> dict[str, pl.DataFrame]:
    """Stored candles of ``symbols`` as bars per symbol; none at all is a DataError."""
    from trading_brain.domain.candles import BARS_COLUMNS
    from trading_brain.domain.instruments import parse_symbol
    from trading_brain.domain.timeframes import parse_timeframe

    syms = [parse_symbol(s) for s in symbols]
    df = store.read_candles(syms, parse_timeframe(timeframe), start, end)
    if df.is_empty():
        raise DataError(f"no {timeframe} candles for {', '.join(syms)} in the warehouse "
                        "for that window; run `trading-brain bootstrap` or `import-ohlcv`")
    return {s: part.sort("ts").select(BARS_COLUMNS)
            for (s,), part in df.partition_by("symbol", as_dict=True).items()}
