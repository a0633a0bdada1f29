"""Real Kraken payloads for the fake server, loaded from ``<repo>/../shared/data/kraken_api``.

Contract:
- ``DATA_DIR`` is the payload folder (CI has ``shared/`` beside the checkout); ``available()``
  says whether it exists, so fixtures can ``pytest.skip`` with a clear reason. Nothing is copied
  into the repository.
- ``load_rest(name)`` returns the ``result`` of ``rest/<name>.json``; ``load_docs(path)`` the JSON
  body of a ``docs_examples`` file (after its method/path/auth header lines); ``load_ws(name)``
  the message in ``ws/<name>.json``.
- ``default_market()`` assembles the fake's starting market from the real payloads:
  AssetPairs = ``XBTUSDT`` (capture) + ``XXBTZUSD``/``XETHXXBT`` (Kraken docs examples); Ticker =
  ``XBTUSDT`` (capture) + ``XXBTZUSD`` (docs); OHLC = the captured 721-row XBTUSDT 1m series (last
  row still forming), also served for ``XXBTZUSD`` (same BTC price level; the docs example has only
  4 rows), and ``aggregate(rows, minutes)`` derives the 5/15/30/60/240/1440-minute series.
- ``synthetic_ohlc(forming_open, minutes, n)``: a deterministic series longer than the venue's
  720-row window (for backfill tests; install it with ``KrakenState.set_ohlc``).
"""

from __future__ import annotations

import copy
import json
import math
import random
from functools import cache
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "kraken_api"


def available() -> bool:
    return (DATA_DIR / "rest" / "http_ohlc.json").is_file()


@cache
def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def load_rest(name: str) -> Any:
    return copy.deepcopy(_read(DATA_DIR / "rest" / f"{name}.json")["result"])


def load_ws(name: str) -> dict[str, Any]:
    return copy.deepcopy(_read(DATA_DIR / "ws" / f"{name}.json"))


def load_docs(rel: str) -> Any:
    text = (DATA_DIR / "docs_examples" / rel).read_text(encoding="utf-8")
    body = text.split("\n", 3)[3]
    return json.loads(body)["result"]


def aggregate(rows: list[list[Any]], minutes: int) -> list[list[Any]]:
    """Aggregate 1m OHLC rows into ``minutes`` bars (Kraken row format, decimal strings)."""
    if minutes == 1:
        return copy.deepcopy(rows)
    step = minutes * 60
    out: list[list[Any]] = []
    for r in rows:
        t = r[0] - r[0] % step
        o, h, lo, c, vol, n = r[1], float(r[2]), float(r[3]), r[4], float(r[6]), int(r[7])
        if out and out[-1][0] == t:
            b = out[-1]
            b[2] = max(float(b[2]), h)
            b[3] = min(float(b[3]), lo)
            b[4] = c
            b[6] = float(b[6]) + vol
            b[7] += n
        else:
            out.append([t, o, h, lo, c, "0.0", vol, n])
    for b in out:
        b[2], b[3], b[6] = f"{b[2]:.1f}", f"{b[3]:.1f}", f"{b[6]:.8f}"
        b[5] = b[4]
    return out


def default_market() -> dict[str, Any]:
    """Pairs, tickers and 1m OHLC rows keyed by pair key, from the real payloads."""
    pairs = load_rest("http_asset_pairs")
    pairs.update(load_docs("rest/ExchangeData/GetSymbols.txt"))
    tickers = load_rest("http_ticker")
    tickers.update(load_docs("rest/ExchangeData/GetTicker.txt"))
    ohlc = load_rest("http_ohlc")
    rows = ohlc["XBTUSDT"]
    return {
        "pairs": pairs,
        "tickers": tickers,
        "ohlc_1m": {"XBTUSDT": rows, "XXBTZUSD": copy.deepcopy(rows)},
        "server_time": load_rest("http_server_time")["unixtime"],
        "status": load_rest("http_system_status")["status"],
        "ws_ticker": load_ws("ws_ticker_snapshot"),
        "ws_ohlc": load_ws("ws_ohlc_update"),
        "ws_ack": load_ws("ws_subscribe_response"),
    }


def synthetic_ohlc(forming_open: int, minutes: int, n: int, price: float = 60_000.0,
                   seed: int = 0) -> list[list[Any]]:
    """``n`` deterministic Kraken OHLC rows at ``minutes`` spacing, oldest first, whose last row
    (the forming candle) opens at ``forming_open``: a gentle random walk (±0.2% per bar), so a
    series can be longer than the 720 rows the venue serves."""
    rng = random.Random(f"{seed}:{minutes}:{forming_open}")
    step = minutes * 60
    first = forming_open - (n - 1) * step
    rows: list[list[Any]] = []
    close = price
    digits = max(1, 5 - math.floor(math.log10(price)))  # ~6 significant digits, like Kraken
    for i in range(n):
        o = close
        close = o * (1 + rng.uniform(-0.002, 0.002))
        hi = max(o, close) * (1 + rng.uniform(0, 0.001))
        lo = min(o, close) * (1 - rng.uniform(0, 0.001))
        vol = rng.uniform(0.5, 5.0)
        px = [f"{x:.{digits}f}" for x in (o, hi, lo, close, (o + close) / 2)]
        rows.append([first + i * step, *px, f"{vol:.8f}", rng.randint(1, 50)])
    return rows
