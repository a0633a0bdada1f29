"""The analysis modules of a cycle, run in the sandbox worker (DESIGN §8, ``analyses/README.md``).

- ``active_analysis(store, analysis_id, root=ANALYSES_ROOT)``: the version the cycle runs, the
  highest ``VERSION`` among the shipped files ``analyses/<id>/v<N>.py`` and the advisor-written
  versions stored by ``analysis_update`` (stored only once they passed their gates; a shipped
  file wins a tie); None when there is none. Released versions never change: a stored version is
  run from its stored source;
- ``run_analyses(store, now, since, cycle_id, *, workers=None, ...)``: the host reads the
  README's frames once (one short read-only connection) and passes them to each active module
  in its sandbox worker (``SandboxWorkers.analyses()`` of ``workers``, the runtime's service,
  else of this process's fallback service: workers stay warm across nights). The
  modules run at the same time (one worker each), each bounded by ``timeout_s``. A gate refusal,
  a crash, a malformed report or a timeout is recorded as that report's ``status`` (``error`` /
  ``timeout``) with its message and never fails the cycle: ``run_analyses`` never raises for
  what an analysis does. Every outcome is stored in ``analysis_reports``; the result maps each id
  to its report, or to ``{status: message, "version": N}``;
- ``prewarm(store, workers)``: start booting the active modules' workers in the background
  (e.g. when a simulation starts: the first night then does not wait ~1 s per boot); never
  raises;
- ``trial_run(workers, source, frames, timeout_s)``: a new (advisor-written) source run once in
  a FRESH worker outside the pool (``validate``), for ``analysis_update``'s gate.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from trading_brain.adapters.duckdb import Store
from trading_brain.adapters.duckdb.analysis_frames import analysis_frames
from trading_brain.adapters.duckdb.reflection_tables import analysis_versions
from trading_brain.adapters.sandbox.analysis import (
    ANALYSIS_TIMEOUT_S,
    AnalysisOutcome,
    EncodedFrames,
    SandboxedAnalysis,
    encode_frames,
)
from trading_brain.adapters.sandbox.pool import PooledWorker, SandboxWorkers
from trading_brain.app.research.strategy_files import STRATEGIES_ROOT
from trading_brain.ports import StrategyWorkers
from trading_brain.settings import Settings

ANALYSES_ROOT = STRATEGIES_ROOT.parent / "analyses"
ANALYSIS_IDS = ("market_analysis", "trade_performance")


@dataclass(frozen=True)
class AnalysisModule:
    """One runnable analysis version: ``origin`` is ``shipped`` or ``stored``."""

    analysis_id: str
    version: int
    source: str
    filename: str
    origin: str

    @property
    def ref(self) -> str:
        return f"{self.analysis_id}@{self.version}"


def shipped_versions(analysis_id: str, root: Path = ANALYSES_ROOT) -> dict[int, Path]:
    return {int(p.stem[1:]): p for p in (root / analysis_id).glob("v*.py")
            if p.stem[1:].isdigit()}


def active_analysis(store: Store, analysis_id: str, root: Path = ANALYSES_ROOT, *,
                    rows: list[dict[str, Any]] | None = None) -> AnalysisModule | None:
    """The version of ``analysis_id`` the cycle runs (module docstring); ``rows``: the stored
    ``analysis_versions`` already read (any ids)."""
    shipped = shipped_versions(analysis_id, root)
    rows = analysis_versions(store, analysis_id) if rows is None else rows
    stored = {int(r["version"]): r for r in rows if r["analysis_id"] == analysis_id}
    if not shipped and not stored:
        return None
    version = max([*shipped, *stored])
    if version in shipped:
        path = shipped[version]
        return AnalysisModule(analysis_id, version, path.read_text(encoding="utf-8"), str(path),
                              "shipped")
    row = stored[version]
    return AnalysisModule(analysis_id, version, str(row["source"]), str(row["path"]), "stored")


_shared: list[SandboxWorkers] = []  # the process's fallback service (no runtime's given)
_shared_lock = threading.Lock()


def analysis_service(workers: StrategyWorkers | None, settings: Settings | None
                     ) -> SandboxWorkers:
    """The analysis workers of ``workers`` (the runtime's service), else of this process's
    fallback service (created with ``settings`` on first use, closed at exit); both keep their
    workers warm from one cycle to the next."""
    if isinstance(workers, SandboxWorkers):
        return workers.analyses()
    with _shared_lock:
        if not _shared:
            _shared.append(SandboxWorkers(settings))
            atexit.register(_shared[0].close)
        return _shared[0].analyses()


def read_frames(store: Store, since: datetime, now: datetime) -> dict[str, pl.DataFrame]:
    with store.connect(read_only=True) as con:
        return dict(analysis_frames(con, since, now))


def _failed(status: str, error: str) -> AnalysisOutcome:
    return AnalysisOutcome("error" if status == "error" else "timeout", error=error[:2000])


Handle = PooledWorker | AnalysisOutcome  # a module's pooled worker, or why it cannot run


def _handles(store: Store, service: SandboxWorkers, ids: tuple[str, ...], root: Path
             ) -> tuple[dict[str, AnalysisModule | None], dict[str, Handle]]:
    """Each id's active module and its worker (its boot starts in the background now)."""
    modules: dict[str, AnalysisModule | None] = dict.fromkeys(ids)
    try:
        rows = analysis_versions(store)
    except Exception as e:  # noqa: BLE001 - recorded in each report
        return modules, {aid: _failed("error", f"reading analysis_versions failed: {e}")
                         for aid in ids}
    handles: dict[str, Handle] = {}
    for aid in ids:
        try:
            modules[aid] = module = active_analysis(store, aid, root, rows=rows)
            handles[aid] = (service.get(module.ref, module.source) if module is not None else
                            _failed("error", f"no version of {aid} under {root} or stored"))
        except Exception as e:  # noqa: BLE001 - e.g. the gate refused it: its report says so
            handles[aid] = _failed("error", f"{type(e).__name__}: {e}")
    return modules, handles


def prewarm(store: Store, workers: StrategyWorkers | None, settings: Settings | None = None, *,
            root: Path = ANALYSES_ROOT, ids: tuple[str, ...] = ANALYSIS_IDS) -> None:
    """Boot the active modules' workers in the background (module docstring)."""
    _handles(store, analysis_service(workers, settings), ids, root)


def _outcome(handle: Handle, frames: EncodedFrames | None, failure: str,
             timeout_s: float) -> AnalysisOutcome:
    if isinstance(handle, AnalysisOutcome):
        return handle
    if frames is None:
        return _failed("error", failure)
    try:
        return handle.analyze(frames, None, timeout_s)
    except Exception as e:  # noqa: BLE001 - never fails the cycle
        return _failed("error", f"{type(e).__name__}: {e}")


def run_analyses(store: Store, now: datetime, since: datetime, cycle_id: str, *,
                 workers: StrategyWorkers | None = None, settings: Settings | None = None,
                 root: Path = ANALYSES_ROOT, timeout_s: float = ANALYSIS_TIMEOUT_S,
                 ids: tuple[str, ...] = ANALYSIS_IDS) -> dict[str, Any]:
    """Each analysis' report (or ``{status: message, "version": N}``), all stored; never raises
    for what an analysis does (module docstring)."""
    modules, handles = _handles(store, analysis_service(workers, settings), ids, root)
    frames: EncodedFrames | None = None
    failure = ""
    try:  # read and encoded once for every module
        frames = encode_frames(read_frames(store, since, now))
    except Exception as e:  # noqa: BLE001 - the reports record it, the cycle goes on
        failure = f"reading the frames failed: {type(e).__name__}: {e}"
    with ThreadPoolExecutor(max(1, len(ids)), thread_name_prefix="analysis") as pool:
        outcomes = list(pool.map(lambda aid: _outcome(handles[aid], frames, failure, timeout_s),
                                 ids))
    out: dict[str, Any] = {}
    for aid, o in zip(ids, outcomes, strict=True):
        module = modules[aid]
        version = module.version if module is not None else 0
        store.save_evolution_row("analysis_reports", {
            "analysis_id": aid, "version": version, "as_of": now, "cycle_id": cycle_id,
            "status": o.status, "report": o.report, "error": o.error, "duration_ms": o.ms,
            "created_at": now})
        out[aid] = o.report if o.status == "ok" else {o.status: o.error, "version": version}
    return out


def trial_run(workers: StrategyWorkers | None, settings: Settings | None, source: str,
              frames: Mapping[str, pl.DataFrame], timeout_s: float = ANALYSIS_TIMEOUT_S,
              filename: str = "<analysis>") -> AnalysisOutcome:
    """``source`` run once over ``frames`` in a fresh worker (module docstring); never raises."""
    try:
        worker = analysis_service(workers, settings).validate(source)
    except Exception as e:  # noqa: BLE001 - the gate refused it
        return _failed("error", f"{type(e).__name__}: {e}")
    try:
        if not isinstance(worker, SandboxedAnalysis):
            return _failed("error", "the analysis service gave a strategy worker")
        worker.filename = filename
        return worker.analyze(frames, None, timeout_s)
    finally:
        worker.close()
