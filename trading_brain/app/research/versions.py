"""Strategy versions for `trading-brain strategies list|show|run|check` (no click here).

Contract:
- ``list_versions(store)``: every shipped file of ``strategies/`` and every registered version
  (store None: files only) as ``{strategy, version, path, status, status_reason}``; a file never
  registered is ``unregistered``; files first (``find_strategies`` order), then registered
  versions without a file.
- ``show_version(settings, store, ref)``: the registry row of ``ref``, or for an unregistered
  file its warm-up, defaults, schema and hash read in a sandbox worker (closed afterwards).
- ``run_file(settings, file, bars, overrides, cuts)``: per symbol the signal counts, the
  non-hold signals, a quick look-ahead check over ``cuts`` truncated histories (0: skipped,
  with a warning) and warnings; the signals are returned whether or not the check passed.
- ``check_version(settings, home, ref, data, symbol, timeframe, cut_points)``: look-ahead and
  warm-up verdicts per symbol of the candle files ``data`` for ``ref`` (ID@V from the home's
  registry or ``strategies/``, or a FILE), and whether all passed.
Strategy code runs only in sandbox workers of ``register.open_workers`` (closed on return).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import polars as pl

from trading_brain.app.research.register import load_bars, open_workers, strategy_source
from trading_brain.engine.registry import RegistryStore
from trading_brain.settings import Home, Settings

LOOKAHEAD_SKIPPED = ("look-ahead check not run (--lookahead-cuts 0): these signals may use "
                     "future bars; run `strategies check` before trusting them")


def list_versions(store: RegistryStore | None) -> list[dict[str, Any]]:
    """Files and registered versions with their status (see the module docstring)."""
    from trading_brain.app.research.strategy_files import find_strategies

    versions = store.strategy_versions() if store else []
    reg = {(r["strategy_id"], r["version"]): r for r in versions}
    rows = [{"strategy": r.strategy_id, "version": r.version, "path": str(r.path),
             "status": reg.get((r.strategy_id, r.version), {}).get("status", "unregistered"),
             "status_reason": reg.get((r.strategy_id, r.version), {}).get("status_reason")}
            for r in find_strategies()]
    known = {(r["strategy"], r["version"]) for r in rows}
    rows += [{"strategy": s, "version": v, "path": r["path"], "status": r["status"],
              "status_reason": r.get("status_reason")}
             for (s, v), r in reg.items() if (s, v) not in known]
    return rows


SHOW_KEYS = ("strategy_id", "version", "status", "sha256", "path", "warmup_bars",
             "params_default", "param_space", "reason", "parent_version", "validation")


def show_version(settings: Settings, store: RegistryStore | None, ref: str,
                 with_source: bool = False) -> dict[str, Any]:
    """``SHOW_KEYS`` of ``ref`` (plus ``source`` when asked)."""
    from trading_brain.engine.registry import sha256

    sid, ver, source, path = strategy_source(ref, store)
    row = store.strategy_version(sid, ver) if store else None
    if row is None:
        with closing(open_workers(settings)) as workers:
            src = workers.get(f"{sid}@{ver}", source)
            schema, defaults = src.params_schema()
            row = {"strategy_id": sid, "version": ver, "warmup_bars": src.warmup_bars,
                   "params_default": defaults, "param_space": schema, "status": "unregistered",
                   "sha256": sha256(source), "path": path}
    out = {k: row.get(k) for k in SHOW_KEYS}
    if with_source:
        out["source"] = source
    return out


def run_file(settings: Settings, file: str, bars_by_symbol: Mapping[str, pl.DataFrame],
             overrides: dict[str, Any] | None, cuts: int) -> dict[str, dict[str, Any]]:
    """Signals of a module FILE per symbol with a quick look-ahead check."""
    from trading_brain.engine.lookahead import check_lookahead

    out: dict[str, dict[str, Any]] = {}
    with closing(open_workers(settings)) as workers:
        src = workers.get(file, Path(file).read_text(encoding="utf-8"))
        for sym, bars in bars_by_symbol.items():
            sig = src.generate(bars, overrides)
            acts = sig.filter(sig["action"] != "hold")
            look, warnings = None, [] if cuts else [LOOKAHEAD_SKIPPED]
            if cuts:
                look = check_lookahead(src, bars, cuts, overrides, full=sig)
                if not look.passed:
                    warnings.append(f"{look.summary()}; these signals use future bars")
            out[sym] = {"bars": sig.height, "entries": int((sig["action"] == "enter").sum()),
                        "exits": int((sig["action"] == "exit").sum()),
                        "lookahead": look.to_metadata() if look else None,
                        "warnings": warnings, "signals": acts.to_dicts()}
    return out


def check_version(settings: Settings, home: Home, ref: str, data: Sequence[str],
                  symbol: str | None, timeframe: str | None, cut_points: int
                  ) -> tuple[bool, dict[str, dict[str, Any]]]:
    """(passed, per-symbol look-ahead and warm-up metadata) of ``ref`` (ID@V or a FILE)."""
    from trading_brain.app.warehouse import home_store
    from trading_brain.engine.lookahead import check_lookahead, check_warmup

    source = (Path(ref).read_text(encoding="utf-8") if Path(ref).is_file()
              else strategy_source(ref, home_store(home))[2])
    results: dict[str, dict[str, Any]] = {}
    with closing(open_workers(settings)) as workers:
        src = workers.get(ref, source)
        for sym, bars in load_bars(list(data), symbol, timeframe).items():
            look = check_lookahead(src, bars, cut_points=cut_points)
            warm = check_warmup(src, bars, src.warmup_bars, samples=cut_points)
            results[sym] = {"lookahead": look.to_metadata(), "warmup": warm.to_metadata()}
    passed = all(r["lookahead"]["passed"] and r["warmup"]["passed"] for r in results.values())
    return passed, results
