"""Sandbox host of an analysis module (``analyses/README.md``): ``SandboxedAnalysis``.

Contract:
- the same machinery as ``host.SandboxedStrategy`` (one persistent OS-locked worker, the
  fail-closed layer check, recycling, ``killpg`` on any failure), with ``KIND = "analysis"``:
  the static gate checks the analysis contract (``gate.check_source(kind="analysis")``, same
  forbidden imports and escapes as strategies) and the worker loads ``ANALYSIS_ID``/``VERSION``/
  ``Params``/``analyze``; replies are capped at ``report.MAX_REPORT_BYTES``;
- ``analyze(frames, params=None, timeout_s=None) -> AnalysisOutcome`` sends the frames (one
  Arrow IPC stream each, in one request; ``encode_frames`` encodes them once for several
  modules) and NEVER raises for anything the module or its worker
  does: ``status`` is ``ok`` (``report`` = the reply checked and cleaned by
  ``report.check_report``), ``timeout`` (no reply within ``timeout_s``, default the instance's
  ``timeout_s``, or a boot past its time limit: the worker is killed) or ``error`` (``error`` =
  one message: the gate's findings, a load failure, the module's exception with its line, a
  dead worker, a malformed or oversize report, missing isolation layers). A clean error reply
  keeps the worker; every other failure kills it (the next call starts a fresh one). A boot
  that failed (in the background of ``pool.SandboxWorkers``) is reported by the next
  ``analyze`` without booting again.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl
import pydantic

from trading_brain.adapters.sandbox.host import SandboxedStrategy, SandboxSettings
from trading_brain.adapters.sandbox.process import WorkerChatty, WorkerDied, WorkerTimeout
from trading_brain.adapters.sandbox.protocol import ErrorReply, ReadyReply, ReportReply, frame
from trading_brain.adapters.sandbox.report import MAX_REPORT_BYTES, JsonValue, check_report
from trading_brain.errors import StrategyError

ANALYSIS_TIMEOUT_S = 60.0
Status = Literal["ok", "error", "timeout"]


@dataclass(frozen=True)
class AnalysisOutcome:
    """What one analysis run gave: the report, or why there is none; ``ms`` its wall time."""

    status: Status
    report: dict[str, JsonValue] | None = None
    error: str | None = None
    ms: float = 0.0


@dataclass(frozen=True)
class EncodedFrames:
    """Frames encoded once for several ``analyze`` calls: the names and the one binary frame of
    an ``analyze`` request (``protocol``)."""

    names: tuple[str, ...]
    payload: bytes


def encode_frames(frames: Mapping[str, pl.DataFrame]) -> EncodedFrames:
    """Each frame as an Arrow IPC stream, length-prefixed, in one payload."""
    names, parts = [], []
    for name, df in frames.items():
        buf = io.BytesIO()
        df.write_ipc_stream(buf)
        names.append(name)
        parts.append(frame(buf.getvalue()))
    return EncodedFrames(tuple(names), b"".join(parts))


class SandboxedAnalysis(SandboxedStrategy):
    """An analysis module run only inside the sandbox worker (module docstring)."""

    KIND = "analysis"

    def __init__(self, source: str, *, timeout_s: float = ANALYSIS_TIMEOUT_S,
                 max_reply_bytes: int = MAX_REPORT_BYTES, **kw: Any) -> None:
        """``kw``: the other options of ``SandboxedStrategy`` (``filename`` names the module
        in error messages)."""
        filename = kw.pop("filename", "<analysis>")
        super().__init__(source, timeout_s=timeout_s, max_reply_bytes=max_reply_bytes, **kw)
        self.filename = filename
        self.timed_out = False  # the last exchange ended at a deadline
        self._boot_failure: AnalysisOutcome | None = None

    @classmethod
    def from_settings(cls, source: str, sandbox: SandboxSettings) -> SandboxedAnalysis:
        """Build from ``settings.sandbox`` (only ``allow_weak_isolation``: an analysis has its
        own time limit, given per call)."""
        return cls(source, allow_weak_isolation=sandbox.allow_weak_isolation)

    def start(self) -> ReadyReply:
        """Boot as a strategy worker does; a failure is also kept for the next ``analyze``."""
        try:
            self._boot_failure = None
            return super().start()
        except StrategyError as e:
            status: Status = "timeout" if self.timed_out else "error"
            self._boot_failure = AnalysisOutcome(status, error=f"{self.KIND} boot: {e}")
            raise

    @contextmanager
    def _failures(self, op: str, timeout: float) -> Iterator[None]:
        self.timed_out = False
        with super()._failures(op, timeout):
            try:
                yield
            except WorkerTimeout:
                self.timed_out = True
                raise

    def analyze(self, frames: Mapping[str, pl.DataFrame] | EncodedFrames,
                params: Mapping[str, Any] | None = None,
                timeout_s: float | None = None) -> AnalysisOutcome:
        """Run the module's ``analyze`` over ``frames`` (module docstring; ``EncodedFrames``
        when several modules get the same frames); never raises."""
        t0 = time.perf_counter()

        def done(status: Status, error: str | None = None,
                 report: dict[str, JsonValue] | None = None) -> AnalysisOutcome:
            return AnalysisOutcome(status, report, error, (time.perf_counter() - t0) * 1000)

        timeout = timeout_s or self.timeout_s
        try:
            enc = frames if isinstance(frames, EncodedFrames) else encode_frames(frames)
            head = json.dumps({"op": "analyze", "params": dict(params or {}),
                               "names": list(enc.names)}, allow_nan=False).encode()
        except (TypeError, ValueError, pl.exceptions.PolarsError) as e:
            return done("error", f"cannot send the frames/params: {type(e).__name__}: {e}")
        failed = self._boot_failure if self._proc is None else None
        if failed is not None:  # the background boot failed: report it, do not boot again
            self._boot_failure = None
            return done(failed.status, failed.error)
        try:
            self.start()
        except StrategyError:
            failed, self._boot_failure = self._boot_failure, None
            return done(failed.status if failed else "error", failed.error if failed else None)
        proc = self._proc
        assert proc is not None
        self._calls += 1
        try:
            reply = proc.request(head, enc.payload, timeout)
        except WorkerTimeout:
            self.close()
            return done("timeout", f"no report within {timeout:g} s; worker killed")
        except (WorkerChatty, WorkerDied) as e:
            self.close()
            return done("error", f"sandbox worker failed: {e}; worker killed")
        except pydantic.ValidationError as e:
            self.close()
            return done("error", f"malformed reply from the sandbox worker: {e.error_count()} "
                                 f"error(s), first: {e.errors()[0]['msg']}")
        if isinstance(reply, ErrorReply):
            if reply.error not in ("strategy", "params"):
                self.close()
            return done("error", reply.message)
        if not isinstance(reply, ReportReply):
            self.close()
            return done("error", f"unexpected reply kind {getattr(reply, 'kind', '?')!r}")
        try:
            return done("ok", report=check_report(reply.report))
        except ValueError as e:
            self.close()
            return done("error", f"invalid report: {e}")
