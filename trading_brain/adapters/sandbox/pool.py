"""The sandbox-worker service (``ports.StrategyWorkers``): one worker per strategy version.

Contract of ``SandboxWorkers(settings, max_workers=MAX_WORKERS)``:
- ``get(version_ref, source)`` returns the ``PooledWorker`` of that version, keyed by the
  source's sha256 (``version_ref``, ``"ID@V"``, only names it). A new version passes the static
  gate at once (``StrategyError``) and its worker starts booting in the background on the
  process's one long-lived spawner thread (``process.on_boot_thread``: PR_SET_PDEATHSIG follows
  the spawning thread, so no short-lived thread may start a worker); the first call waits for
  that boot and raises what it raised. Every later ``get`` of the same source returns the same
  live worker;
- at most ``max_workers`` workers run: admitting one more evicts (kills) the least recently
  used one; a ``PooledWorker`` whose worker was evicted is admitted again on its next call
  (a fresh worker), so a caller's handle never goes stale;
- thread safe: ``get`` from several threads yields one worker per version; the calls on one
  worker are serialised (one request at a time on its pipes); an eviction waits for the call in
  flight on the victim. A worker that died between calls is replaced on the next call
  (``SandboxedStrategy.start``);
- ``validate(source)`` returns a FRESH worker outside the pool, for registration: each version's
  gates (smoke run, determinism, look-ahead, warm-up) run in a worker nothing else has touched
  and whose state (module globals, the bars it holds) dies with the validation; it carries the
  validation budget (``set_deadline``), which must never bound a shared worker, and a rejected
  source never takes a pool slot. The caller closes it (``close()`` also closes any left open);
- ``close()`` kills every worker (pooled and validating); the service stays usable (a later call
  starts a fresh worker).

``analyses()`` is the sibling service of analysis modules (``analysis.SandboxedAnalysis``, keyed
by source as well, at most ``ANALYSIS_WORKERS`` live, closed with this one), so the nightly
analyses reuse warm workers across nights without evicting a strategy's; its handles answer
``PooledWorker.analyze``, which never raises (a source the gate refuses or a failed boot is an
``error`` outcome).
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

import polars as pl

from trading_brain.adapters.sandbox.analysis import (
    AnalysisOutcome,
    EncodedFrames,
    SandboxedAnalysis,
)
from trading_brain.adapters.sandbox.host import SandboxedStrategy, SandboxSettings
from trading_brain.adapters.sandbox.process import on_boot_thread
from trading_brain.adapters.sandbox.protocol import LayerReport, ReadyReply
from trading_brain.errors import StrategyError
from trading_brain.settings import SandboxSettings as DefaultSandbox
from trading_brain.settings import Settings

MAX_WORKERS = 4  # the active version + three shadow slots
ANALYSIS_WORKERS = 2  # market_analysis + trade_performance
T = TypeVar("T")
Opener = Callable[[str], SandboxedStrategy]


class _Entry:
    """One live worker of the pool; ``retired`` once evicted (set under the pool's lock)."""

    def __init__(self, worker: SandboxedStrategy) -> None:
        self.worker = worker
        self.lock = threading.Lock()
        self.retired = False
        self.boot: Future[None] | None = None


class SandboxWorkers:
    """``ports.StrategyWorkers`` over ``SandboxedStrategy`` workers (module docstring)."""

    def __init__(self, settings: Settings | None = None, *, max_workers: int = MAX_WORKERS,
                 open_worker: Opener | None = None) -> None:
        """``open_worker`` builds the worker of a source (default: ``settings.sandbox``'s)."""
        if max_workers < 1:
            raise ValueError("max_workers must be >= 1")
        sandbox: SandboxSettings = settings.sandbox if settings is not None else DefaultSandbox()
        self.max_workers, self._sandbox = max_workers, sandbox
        self._analyses: SandboxWorkers | None = None
        self.open_worker: Opener = open_worker or (
            lambda source: SandboxedStrategy.from_settings(source, sandbox))
        self._lock = threading.Lock()
        self._live: OrderedDict[str, _Entry] = OrderedDict()  # least recently used first
        self._handles: dict[str, PooledWorker] = {}
        self._validating: weakref.WeakSet[SandboxedStrategy] = weakref.WeakSet()

    # --- ports.StrategyWorkers ------------------------------------------------------------------
    def get(self, version_ref: str, source: str) -> PooledWorker:
        key = hashlib.sha256(source.encode()).hexdigest()
        with self._lock:
            handle = self._handles.get(key)
            if handle is None:
                handle = PooledWorker(self, key, version_ref, source)
                if len(self._handles) >= 16 * self.max_workers:  # forget idle handles
                    for k in [k for k in self._handles if k not in self._live][:self.max_workers]:
                        del self._handles[k]
                self._handles[key] = handle
        self._entry(handle, boot=True)
        return handle

    def validate(self, source: str) -> SandboxedStrategy:
        worker = self.open_worker(source)
        with self._lock:
            self._validating.add(worker)
        return worker

    def analyses(self) -> SandboxWorkers:
        """The sibling service of analysis workers (module docstring)."""
        with self._lock:
            if self._analyses is None:
                sandbox = self._sandbox
                self._analyses = SandboxWorkers(
                    max_workers=ANALYSIS_WORKERS,
                    open_worker=lambda source: SandboxedAnalysis.from_settings(source, sandbox))
            return self._analyses

    def close(self) -> None:
        with self._lock:
            analyses = self._analyses
            victims = list(self._live.values())
            self._live.clear()
            for entry in victims:
                entry.retired = True
            validating = list(self._validating)
        for entry in victims:
            _retire(entry)
        for worker in validating:
            worker.close()
        if analyses is not None:
            analyses.close()

    def __enter__(self) -> SandboxWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def live(self) -> list[str]:
        """The sha256 of each version with a live worker, least recently used first."""
        with self._lock:
            return list(self._live)

    # --- internals ------------------------------------------------------------------------------
    def _entry(self, handle: PooledWorker, boot: bool = False) -> _Entry:
        """The live entry of ``handle``'s version (admitted, and made most recent)."""
        with self._lock:
            entry = self._live.get(handle.key)
            if entry is None:
                entry = _Entry(self.open_worker(handle.source))  # the static gate raises here
                self._live[handle.key] = entry
            else:
                boot = False
            self._live.move_to_end(handle.key)
            victims = []
            while len(self._live) > self.max_workers:
                victim = self._live.popitem(last=False)[1]
                victim.retired = True
                victims.append(victim)
        for victim in victims:
            _retire(victim)
        if boot:
            entry.boot = on_boot_thread(lambda: _boot(entry))
        return entry

    def _discard(self, key: str) -> None:
        with self._lock:
            entry = self._live.pop(key, None)
            if entry is not None:
                entry.retired = True
        if entry is not None:
            _retire(entry)


def _boot(entry: _Entry) -> None:
    """Start the worker unless a caller holds it already (that caller starts it itself); a
    blocking wait here could deadlock with a caller waiting for the spawner thread."""
    if not entry.lock.acquire(blocking=False):
        return
    try:
        if not entry.retired:
            entry.worker.start()
    finally:
        entry.lock.release()


def _retire(entry: _Entry) -> None:
    """Kill an evicted worker once the call in flight on it (if any) has returned."""
    with entry.lock:
        entry.worker.close()


class PooledWorker:
    """A version's worker as handed out by ``SandboxWorkers.get`` (``ports.StrategyWorker``):
    every call goes to the version's live pooled worker, one call at a time."""

    def __init__(self, pool: SandboxWorkers, key: str, version_ref: str, source: str) -> None:
        self.pool, self.key, self.version_ref, self.source = pool, key, version_ref, source

    def _run(self, call: Callable[[SandboxedStrategy], T], boot_errors: bool = True) -> T:
        """``call`` on the live worker; ``boot_errors`` False leaves a failed background boot
        for ``call`` to report (an analysis worker keeps it)."""
        while True:
            entry = self.pool._entry(self)
            boot = entry.boot
            if boot is not None:
                entry.boot = None
                if boot_errors:
                    boot.result()  # re-raises what the background boot raised
                else:
                    boot.exception()  # waits for it
            with entry.lock:
                if entry.retired:  # evicted between the lookup and the lock: admit it again
                    continue
                return call(entry.worker)

    def _static(self, read: Callable[[SandboxedStrategy], T]) -> T:
        """A fact of the static gate (no worker call, no wait for the boot)."""
        worker = self.pool._entry(self).worker
        return read(worker) if worker.info is not None else self._run(read)

    @property
    def strategy_id(self) -> str:
        return self._static(lambda w: w.strategy_id)

    @property
    def version(self) -> int:
        return self._static(lambda w: w.version)

    @property
    def warmup_bars(self) -> int:
        return self._static(lambda w: w.warmup_bars)

    @property
    def layers(self) -> LayerReport:
        return self._run(lambda w: w.layers)

    def missing_layers(self) -> list[str]:
        return self._run(lambda w: w.missing_layers())

    def start(self) -> ReadyReply:
        return self._run(lambda w: w.start())

    def generate(self, bars: pl.DataFrame, params: dict | None = None) -> pl.DataFrame:
        return self._run(lambda w: w.generate(bars, params))

    def generate_many(self, frames: Mapping[str, pl.DataFrame], params: dict | None = None
                      ) -> dict[str, pl.DataFrame | StrategyError]:
        return self._run(lambda w: w.generate_many(frames, params))

    def generate_sets(self, bars: pl.DataFrame, sets: Sequence[Mapping[str, Any] | None]
                      ) -> list[pl.DataFrame | StrategyError]:
        return self._run(lambda w: w.generate_sets(bars, sets))

    def params_schema(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return self._run(lambda w: w.params_schema())

    def analyze(self, frames: Mapping[str, pl.DataFrame] | EncodedFrames,
                params: Mapping[str, Any] | None = None,
                timeout_s: float | None = None) -> AnalysisOutcome:
        """``SandboxedAnalysis.analyze`` on this analysis' pooled worker; never raises."""
        def call(worker: SandboxedStrategy) -> AnalysisOutcome:
            if not isinstance(worker, SandboxedAnalysis):
                return AnalysisOutcome("error", error=f"{self.version_ref} is not an analysis")
            return worker.analyze(frames, params, timeout_s)

        try:
            return self._run(call, boot_errors=False)
        except StrategyError as e:  # the static gate refused the source
            return AnalysisOutcome("error", error=str(e))

    def close(self) -> None:
        """Stop this version's worker (a later call starts a fresh one)."""
        self.pool._discard(self.key)
