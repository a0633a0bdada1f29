"""The night's lab: recent history and the sandboxed signals of any (version, parameter set).

``Lab.open(store, workers, symbols, end, days, costs)`` reads the closed 5m bars of
``[end - days, end)`` from the warehouse (aligned across symbols, ``evidence.align``).
``evaluate(version, sets)`` runs each set through the version's sandbox worker (the pool's
``generate_sets``: one round trip per symbol for all sets) and the fast engine
(``evidence.run_set``), caching each (source sha256, variant) run, so the advisor's search and
the cycle's gates share the work; a set the strategy refuses (or that fails) is None.
``signals(ref, source, params)`` gives one set's signals (for the exact-engine replay); the
signals of each version's defaults set evaluated tonight are kept for it.
``tried`` lists every (family, params) evaluated, in order (``variant_trials``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import polars as pl

from trading_brain.domain.candles import BARS_COLUMNS
from trading_brain.engine.evolution.context import VersionInfo
from trading_brain.engine.evolution.evidence import Costs, Run, align, run_set
from trading_brain.engine.evolution.search import Params, variant_hash
from trading_brain.engine.registry import sha256
from trading_brain.errors import DataError, StrategyError
from trading_brain.ports import CandleStore, StrategyWorkers

Frames = dict[str, pl.DataFrame]
MIN_BARS = 48  # four hours of 5m bars: less is no history to compare on


class Lab:
    """See the module docstring."""

    def __init__(self, workers: StrategyWorkers, bars: Mapping[str, pl.DataFrame],
                 costs: Costs) -> None:
        self.workers = workers
        self.bars = align(bars)
        self.costs = costs
        self.tried: list[tuple[str, Params]] = []
        self._runs: dict[tuple[str, str], Run | None] = {}
        self._signals: dict[tuple[str, str], Frames] = {}  # each version's defaults

    @classmethod
    def open(cls, store: CandleStore, workers: StrategyWorkers, symbols: Sequence[str],
             end: datetime, days: int, costs: Costs) -> Lab:
        """The lab over the warehouse's closed 5m bars of ``[end - days, end)``."""
        candles = store.read_candles(list(symbols), "5m", end - timedelta(days=days), end)
        bars = {str(s): part.sort("ts").select(BARS_COLUMNS)
                for (s,), part in candles.partition_by("symbol", as_dict=True).items()}
        if not bars or min(b.height for b in bars.values()) < MIN_BARS:
            have = ", ".join(f"{s} {b.height}" for s, b in sorted(bars.items())) or "none"
            raise DataError(f"too little recent 5m history for the search ({have} bars; "
                            f"need {MIN_BARS} per symbol)")
        return cls(workers, bars, costs)

    @property
    def span(self) -> tuple[datetime, datetime]:
        ts = next(iter(self.bars.values()))["ts"].to_list()
        return ts[0], ts[-1]

    def _generate(self, ref: str, source: str, sets: Sequence[Params]
                  ) -> list[Frames | None]:
        worker = self.workers.get(ref, source)
        out: list[Frames | None] = [{} for _ in sets]
        for sym, bars in self.bars.items():
            replies = worker.generate_sets(bars, [dict(p) for p in sets])
            for i, reply in enumerate(replies):
                got = out[i]
                if got is None:
                    continue
                if isinstance(reply, StrategyError):
                    out[i] = None
                else:
                    got[sym] = reply
        return out

    def _todo(self, version: VersionInfo, sets: Sequence[Params]) -> list[Params]:
        """The distinct sets of ``version`` not run yet (first occurrence order)."""
        sha = sha256(version.source)
        todo = [p for p in sets if (sha, variant_hash(p)) not in self._runs]
        seen: set[str] = set()
        return [p for p in todo if not (variant_hash(p) in seen or seen.add(variant_hash(p)))]

    def _run_sets(self, version: VersionInfo, todo: Sequence[Params],
                  generated: Sequence[Frames | None]) -> None:
        sha, keep = sha256(version.source), variant_hash(version.defaults)
        for params, signals in zip(todo, generated, strict=True):
            run = run_set(self.bars, signals, self.costs) if signals is not None else None
            self._runs[(sha, variant_hash(params))] = run
            if signals is not None and variant_hash(params) == keep:
                self._signals[(sha, keep)] = signals

    def evaluate(self, version: VersionInfo, sets: Sequence[Params]) -> list[Run | None]:
        """The fast-engine run of each set (None: refused or failed); cached."""
        sha = sha256(version.source)
        todo = self._todo(version, sets)
        if todo:
            self._run_sets(version, todo, self._generate(version.ref, version.source, todo))
        runs = [self._runs[(sha, variant_hash(p))] for p in sets]
        self.tried += [(version.family, dict(p)) for p, r in zip(sets, runs, strict=True)
                       if r is not None]
        return runs

    def signals(self, ref: str, source: str, params: Params) -> Frames:
        """One set's signals over the lab's bars; StrategyError when the strategy refuses it.
        A version's defaults evaluated tonight are not generated again (the sandbox is
        deterministic: registration checks it)."""
        kept = self._signals.get((sha256(source), variant_hash(params)))
        if kept is not None:
            return kept
        got = self._generate(ref, source, [params])[0]
        if got is None:
            raise StrategyError(f"{ref} refused the parameter set {params}")
        return got
