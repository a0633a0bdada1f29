"""Readers for candle files: CSV, CSV.gz and Parquet, one file or a folder of them.

Contract:
- Accepted layouts: a header ``timestamp,open,high,low,close,volume`` (extra columns ignored;
  ``time``/``ts``/``date``/``datetime`` are accepted for ``timestamp``), or Kraken's official
  headerless OHLCVT export ``epoch,open,high,low,close,volume,trades`` (detected by a first row
  that is all numbers with 7 fields; 6 numeric fields are read the same way without ``trades``).
- ``timestamp``: ISO-8601 (``Z``, an offset, or naive = UTC), epoch seconds, or by magnitude epoch
  milliseconds / microseconds; a native Parquet datetime (naive = UTC) is kept. The ISO forms may
  be mixed in one file (``+02:00`` rows converted to UTC, naive rows taken as UTC); see
  ``adapters.replay.timestamps``.
- Symbol: the explicit ``symbol=``, else parsed from the file name (``binance_BTCUSDT_5m_…`` →
  ``BTC/USDT``, ``XBTUSD_1440`` → ``BTC/USD``; XBT→BTC, XDG→DOGE, Kraken X/Z prefixes dropped),
  else — never failing on an unusual name — the stem's letters/digits (≤10) as base and ``USD``
  as quote (``mydata.csv`` → ``MYDATA/USD``).
- Timeframe: the explicit ``timeframe=``, else a name token (``5m``/``1h``/``1d``/``1m``, or a
  Kraken minute suffix ``_1``/``_5``/``_60``/``_1440``), else the spacing of the timestamps;
  an unsupported spacing is a ``DataError``. The spacing of a file is the most common gap
  between consecutive distinct open times (the smallest on a tie): venues omit bars without
  trades, but gaps of a random-arrival series are most often one bar, so the mode is the bar
  length even for sparse Kraken exports. A timeframe (explicit or named) that differs from the
  spacing of a file with at least two open times is a ``DataError`` naming both, e.g. an hourly
  file imported as ``5m``.
- Output: a frame with the columns and types of ``domain.candles.CANDLE_SCHEMA`` in file order,
  NOT validated (unparseable cells become nulls for ``engine.candles.validate`` to quarantine).
  A missing column, an unreadable file or an unknown format raises ``DataError`` naming the file.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from trading_brain.adapters.replay.timestamps import NUMBER, parse_ts
from trading_brain.domain.candles import CANDLE_SCHEMA
from trading_brain.domain.instruments import DEFAULT_SYMBOLS, parse_symbol
from trading_brain.domain.timeframes import TIMEFRAMES, Timeframe, parse_timeframe, seconds
from trading_brain.errors import DataError

SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
TS_ALIASES = ("timestamp", "time", "ts", "date", "datetime", "open_time")
QUOTES = ("ZUSD", "ZEUR", "ZGBP", "ZJPY", "ZCAD", "USDT", "USDC", "USD", "EUR", "GBP", "JPY",
          "CAD", "CHF", "AUD", "DAI", "BTC", "XBT", "ETH", "BUSD", "FDUSD", "TUSD")
ALIASES = {"XBT": "BTC", "XXBT": "BTC", "XDG": "DOGE", "XXDG": "DOGE", "XETH": "ETH",
           "XXRP": "XRP", "XLTC": "LTC", "XXLM": "XLM", "XETC": "ETC", "XZEC": "ZEC",
           "XXMR": "XMR", "XREP": "REP", "ZUSD": "USD", "ZEUR": "EUR", "ZGBP": "GBP",
           "ZJPY": "JPY", "ZCAD": "CAD"}
KNOWN_BASES = frozenset({*(s.split("/")[0] for s in DEFAULT_SYMBOLS), "USDT", "USDC", "BNB",
                         "XLM", "ETC", "BCH", "AVAX", "MATIC", "ATOM", "TRX", "XMR", "ZEC"})
EXCHANGES = frozenset({"BINANCE", "KRAKEN", "COINBASE", "GDAX", "BITSTAMP", "BITFINEX", "GEMINI",
                       "OKX", "BYBIT", "KUCOIN", "HUOBI", "FTX"})
TF_TOKENS: dict[str, Timeframe] = {"1m": "1m", "5m": "5m", "1h": "1h", "60m": "1h", "1d": "1d",
                                   "24h": "1d", "daily": "1d", "hourly": "1h"}
KRAKEN_MINUTES: dict[str, Timeframe] = {"1": "1m", "5": "5m", "60": "1h", "1440": "1d"}


def candle_files(path: Path | str) -> list[Path]:
    """``path`` itself if it is a file, else the candle files directly inside the folder, sorted."""
    p = Path(path)
    if p.is_file():
        return [p]
    if p.is_dir():
        return sorted(f for f in p.iterdir() if f.is_file() and f.name.lower().endswith(SUFFIXES))
    raise DataError(f"candle file or folder not found: {p}")


def expand(paths: Path | str | Iterable[Path | str]) -> list[Path]:
    """Expand one path or several (files or folders) into a list of candle files."""
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    files = [f for p in items for f in candle_files(p)]
    if not files:
        raise DataError(f"no candle files ({', '.join(SUFFIXES)}) in {', '.join(map(str, items))}")
    return files


def read_candle_file(
    path: Path | str, symbol: str | None = None, timeframe: str | None = None
) -> pl.DataFrame:
    """Read one candle file into a CANDLE_SCHEMA frame (unvalidated, file order)."""
    p = Path(path)
    raw = _read_parquet(p) if p.name.lower().endswith((".parquet", ".pq")) else _read_csv(p)
    ts = parse_ts(raw.get_column("timestamp"), p)
    tf = _timeframe(p, ts, timeframe)
    sym = parse_symbol(symbol) if symbol else symbol_from_name(p)
    return pl.DataFrame({"ts": ts}).hstack(
        raw.select([pl.col(c).cast(pl.Float64, strict=False) for c in PRICE_COLUMNS])
    ).select(
        pl.lit(sym, pl.String).alias("symbol"), pl.lit(tf, pl.String).alias("timeframe"),
        pl.col("ts"), *[pl.col(c) for c in PRICE_COLUMNS],
    ).cast(pl.Schema(CANDLE_SCHEMA))


def read_candles(
    paths: Path | str | Iterable[Path | str], symbol: str | None = None,
    timeframe: str | None = None,
) -> pl.DataFrame:
    """Read every candle file under ``paths`` and concatenate them (unvalidated)."""
    return pl.concat([read_candle_file(f, symbol, timeframe) for f in expand(paths)])


# -- file formats -------------------------------------------------------------------------------
def _read_csv(p: Path) -> pl.DataFrame:
    first = _first_line(p)
    fields = [f.strip() for f in first.split(",")]
    try:
        if all(NUMBER.match(f) for f in fields):
            if len(fields) not in (6, 7):
                raise DataError(f"{p.name}: headerless file with {len(fields)} columns; expected "
                                "Kraken OHLCVT (7: epoch,open,high,low,close,volume,trades) or 6")
            names = ["timestamp", *PRICE_COLUMNS, "trades"][: len(fields)]
            return pl.read_csv(p, has_header=False, new_columns=names,
                               schema_overrides={"timestamp": pl.Float64})
        floats = {f: pl.Float64 for f in fields if f.lower() in PRICE_COLUMNS}
        df = pl.read_csv(p, schema_overrides=floats, infer_schema_length=1000)
    except DataError:
        raise
    except Exception as e:  # polars raises ComputeError, NoDataError, OSError…
        raise DataError(f"{p.name}: cannot read CSV: {e}") from e
    return _normalise_header(df, p)


def _read_parquet(p: Path) -> pl.DataFrame:
    try:
        df = pl.read_parquet(p)
    except Exception as e:
        raise DataError(f"{p.name}: cannot read Parquet: {e}") from e
    return _normalise_header(df, p)


def _first_line(p: Path) -> str:
    try:
        opener = gzip.open if _is_gzip(p) else open
        with opener(p, "rt", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.strip():
                    return line.strip().lstrip("\ufeff")
    except (OSError, EOFError) as e:
        raise DataError(f"{p.name}: cannot read file: {e}") from e
    raise DataError(f"{p.name}: file is empty")


def _is_gzip(p: Path) -> bool:
    with open(p, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _normalise_header(df: pl.DataFrame, p: Path) -> pl.DataFrame:
    df = df.rename({c: c.strip().lstrip("\ufeff").lower() for c in df.columns})
    if "timestamp" not in df.columns:
        alias = next((a for a in TS_ALIASES if a in df.columns), None)
        if alias is None:
            raise DataError(f"{p.name}: missing column 'timestamp' "
                            f"(found: {', '.join(df.columns)})")
        df = df.rename({alias: "timestamp"})
    missing = [c for c in PRICE_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{p.name}: missing column(s) {', '.join(repr(c) for c in missing)}")
    return df


# -- names --------------------------------------------------------------------------------------
def _stem(p: Path) -> str:
    name = p.name
    for suf in sorted(SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return p.stem


def _tokens(p: Path) -> list[str]:
    return [t for t in re.split(r"[^A-Za-z0-9]+", _stem(p)) if t]


def _asset(a: str) -> str:
    return ALIASES.get(a, a)


def _pairs(tokens: list[str]) -> list[tuple[str, str]]:
    """Candidate (base, quote) pairs: ``BTC_USD`` token pairs first, then ``XBTUSD`` tokens."""
    out = [(_asset(a), _asset(b)) for a, b in zip(tokens, tokens[1:], strict=False)
           if b in QUOTES and a.isalnum() and not a.isdigit() and 2 <= len(a) <= 10
           and a.lower() not in TF_TOKENS and a not in EXCHANGES]
    for t in tokens:
        out += [(_asset(t[: -len(q)]), _asset(q)) for q in QUOTES
                if t.endswith(q) and 2 <= len(t) - len(q) <= 10 and not t[: -len(q)].isdigit()]
    return out


def symbol_from_name(path: Path | str) -> str:
    """``BASE/QUOTE`` parsed from a file name; falls back to ``<STEM>/USD`` (see module doc).

    Among the candidate pairs the first whose base is a well-known asset wins, else the first.
    """
    pairs = _pairs([t.upper() for t in _tokens(Path(path))])
    known = [p for p in pairs if p[0] in KNOWN_BASES]
    if known or pairs:
        base, quote = (known or pairs)[0]
        return f"{base}/{quote}"
    base = re.sub(r"[^A-Z0-9]", "", _stem(Path(path)).upper())[:10]
    return f"{base if len(base) >= 2 else 'UNKNOWN'}/USD"


def timeframe_from_name(path: Path | str) -> Timeframe | None:
    """A timeframe named by a file-name token (``5m``, ``1h``…, Kraken ``_60``), else None."""
    tokens = [t.lower() for t in _tokens(Path(path))]
    for t in tokens:
        if t in TF_TOKENS:
            return TF_TOKENS[t]
    if len(tokens) >= 2 and tokens[-1] in KRAKEN_MINUTES:
        return KRAKEN_MINUTES[tokens[-1]]
    return None


def spacing_seconds(ts: pl.Series) -> int | None:
    """The most common gap in seconds between consecutive distinct open times (smallest on a
    tie), or None with fewer than two open times."""
    diffs = ts.drop_nulls().unique().sort().diff().drop_nulls().dt.total_seconds()
    if diffs.is_empty():
        return None
    counts = diffs.value_counts(name="n")
    return int(counts.sort(["n", diffs.name], descending=[True, False])[diffs.name][0])


def infer_timeframe(ts: pl.Series) -> Timeframe | None:
    """The timeframe whose length equals the spacing of ``ts`` (``spacing_seconds``), else None."""
    gap = spacing_seconds(ts)
    return next((tf for tf in TIMEFRAMES if gap == seconds(tf)), None)


def _timeframe(p: Path, ts: pl.Series, explicit: str | None) -> Timeframe:
    named = None if explicit else timeframe_from_name(p)
    tf = parse_timeframe(explicit) if explicit else named or infer_timeframe(ts)
    if tf is None:
        gap = spacing_seconds(ts)
        found = f"the timestamps are {_span(gap)} apart" if gap else "it has one timestamp"
        raise DataError(f"{p.name}: cannot tell the timeframe: no name token and {found}; "
                        "pass the timeframe (one of 1m, 5m, 1h, 1d)")
    gap = spacing_seconds(ts)
    if gap is not None and gap != seconds(tf):
        origin = "the timeframe asked" if explicit else "the timeframe in the file name"
        raise DataError(f"{p.name}: the candles are {_span(gap)} apart (most common gap between "
                        f"open times) but {origin} is {tf}")
    return tf


def _span(secs: int) -> str:
    """``3600`` → ``1h``, ``300`` → ``5m``, ``90`` → ``90s``."""
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= n and secs % n == 0:
            return f"{secs // n}{unit}"
    return f"{secs}s"
