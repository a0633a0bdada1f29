"""Sandbox host: one strategy version in a persistent, OS-locked worker (``ports.SignalSource``).

Contract of ``SandboxedStrategy``:
- the source passes the static gate first (``gate.require_clean``; StrategyError listing findings);
- the worker is spawned lazily (``process.launch``: ``python -I -B worker.py``, minimal env, empty
  temp cwd, close_fds, new session, pipes only) and kept for many calls; it is killed (``killpg``
  SIGKILL) on timeout, any protocol violation, an oversize or invalid reply (one the host
  rejects), and respawned on the next call. A clean error reply (generate raised, bad params)
  keeps the worker. It is also recycled after ``max_calls`` calls or half of its CPU-seconds
  rlimit, and replaced when it died between two calls (``start`` checks it is still alive);
- the worker's layer report is checked: unless ``allow_weak_isolation``, a worker without seccomp
  AND Landlock is refused with ``SandboxViolation`` (fail closed);
- ``generate(bars, params)`` sends Arrow IPC (not again when the same frame object was the last
  one sent to the same worker), receives size-capped JSON, parses it with the strict models of
  ``protocol`` and returns ``domain.strategy.validate_signals`` output (ts + SIGNAL_SCHEMA).
  Strategy failures raise StrategyError with the author-facing message; isolation/protocol
  failures raise SandboxViolation;
- ``generate_many(frames, params)`` (several symbols) and ``generate_sets(bars, sets)`` (several
  parameter sets over the same bars) answer in one round trip with per-item strategy errors
  (``batch``);
- ``set_deadline(t)`` (a ``time.monotonic()`` value, None to clear) bounds every later call,
  the boot included, by that overall deadline (the registry's validation budget): a call gets
  ``min(timeout, time left)``; past the deadline it raises StrategyError naming the budget;
- a call whose prints exceed ``max_output_bytes`` (stdout/stderr) kills the worker: StrategyError.
One caller at a time: ``pool.SandboxWorkers`` serialises the callers of a shared worker.
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, NoReturn, Protocol

import polars as pl
import pydantic

from trading_brain.adapters.sandbox import gate
from trading_brain.adapters.sandbox.batch import BatchCalls
from trading_brain.adapters.sandbox.decode import decode_columns
from trading_brain.adapters.sandbox.process import (
    MAX_OUTPUT_BYTES,
    WorkerChatty,
    WorkerDied,
    WorkerProcess,
    WorkerTimeout,
    import_paths,
    launch,
)
from trading_brain.adapters.sandbox.protocol import (
    MAX_REPLY_BYTES,
    ErrorReply,
    InitRequest,
    LayerReport,
    Layers,
    Limits,
    ReadyReply,
    SchemaReply,
    SignalsReply,
)
from trading_brain.domain.strategy import validate_signals
from trading_brain.errors import SandboxViolation, StrategyError

Reply = object  # one parsed reply model of ``protocol`` (checked with isinstance by the caller)


class SandboxSettings(Protocol):
    """The ``settings.sandbox`` fields the host reads."""

    allow_weak_isolation: bool
    call_timeout_s: float
    validation_budget_s: float


class SandboxedStrategy(BatchCalls):
    """A strategy version run only inside the sandbox worker (implements ``ports.SignalSource``).

    One caller at a time (not thread-safe); use one instance per strategy version and job.
    ``KIND`` is the module contract the gate and the worker check (``analysis.SandboxedAnalysis``
    runs analysis modules on the same machinery).
    """

    KIND: Literal["strategy", "analysis"] = "strategy"

    def __init__(
        self,
        source: str | None = None,
        *,
        path: str | Path | None = None,
        allow_weak_isolation: bool = False,
        timeout_s: float = 10.0,
        boot_timeout_s: float = 60.0,
        max_reply_bytes: int = MAX_REPLY_BYTES,
        max_calls: int = 10_000,
        limits: Limits | None = None,
        python: str | None = None,
        static_gate: bool = True,
        layers: Layers | None = None,
        max_output_bytes: int = MAX_OUTPUT_BYTES,
        validation_budget_s: float = 120.0,
    ) -> None:
        """``static_gate``/``layers`` switch layers off and exist for tests (ablation) only."""
        if (source is None) == (path is None):
            raise StrategyError("give exactly one of source or path")
        try:
            self.source = Path(path).read_text() if path is not None else str(source)
        except (OSError, UnicodeDecodeError) as e:
            raise StrategyError(f"cannot read strategy source {path}: {e}") from e
        self.filename = str(path) if path is not None else "<strategy>"
        self.info = gate.require_clean(self.source, self.KIND) if static_gate else None
        self.allow_weak_isolation = allow_weak_isolation
        self.timeout_s, self.boot_timeout_s = timeout_s, boot_timeout_s
        self.max_reply_bytes, self.max_calls = max_reply_bytes, max_calls
        self.max_output_bytes = max_output_bytes
        self.validation_budget_s = validation_budget_s
        self._deadline: float | None = None
        self.limits, self.layers_requested = limits or Limits(), layers or Layers()
        self.python = python or sys.executable
        self._proc: WorkerProcess | None = None
        self._ready: ReadyReply | None = None
        self._calls = 0
        self._sent_bars: pl.DataFrame | None = None  # the frame the running worker holds

    @classmethod
    def from_settings(cls, source: str, sandbox: SandboxSettings) -> SandboxedStrategy:
        """Build from ``settings.sandbox`` (``allow_weak_isolation``, ``call_timeout_s``,
        ``validation_budget_s``)."""
        return cls(
            source,
            allow_weak_isolation=sandbox.allow_weak_isolation,
            timeout_s=sandbox.call_timeout_s,
            validation_budget_s=sandbox.validation_budget_s,
        )

    def set_deadline(self, deadline: float | None) -> None:
        """Bound every later call by ``deadline`` (``time.monotonic()``); None clears it."""
        self._deadline = deadline

    # --- SignalSource -------------------------------------------------------------------------
    @property
    def strategy_id(self) -> str:
        return self.info.strategy_id if self.info else self.start().strategy_id

    @property
    def version(self) -> int:
        return self.info.version if self.info else self.start().version

    @property
    def warmup_bars(self) -> int:
        return self.info.warmup_bars if self.info else self.start().warmup_bars

    @property
    def layers(self) -> LayerReport:
        """The layer report of the running worker (starts it if needed)."""
        return self.start().layers

    def missing_layers(self) -> list[str]:
        """Required layers (seccomp, Landlock) the running worker does not enforce."""
        return self.layers.missing_required()

    def generate(self, bars: pl.DataFrame, params: dict | None = None) -> pl.DataFrame:
        """Run ``generate`` in the worker; return validated signals (ts + SIGNAL_SCHEMA)."""
        if not isinstance(bars, pl.DataFrame):
            raise StrategyError(f"bars must be a polars DataFrame, got {type(bars).__name__}")
        header, payload = self._bars_request({"op": "generate", "params": params or {}}, bars)
        reply = self._call(header, payload)
        if not isinstance(reply, SignalsReply):
            self._fail("unexpected reply kind " + getattr(reply, "kind", "?"))
        return self._signals(reply, bars)

    def params_schema(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The JSON schema and default values of the strategy's ``Params``, from the worker."""
        reply = self._call({"op": "params_schema"}, None)
        if not isinstance(reply, SchemaReply):
            self._fail("unexpected reply kind " + getattr(reply, "kind", "?"))
        return reply.json_schema, reply.defaults

    def close(self) -> None:
        """Kill the worker (it is respawned by the next call)."""
        if self._proc is not None:
            self._proc.kill()
        self._proc, self._ready, self._calls, self._sent_bars = None, None, 0, None

    def __enter__(self) -> SandboxedStrategy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # --- worker lifecycle ---------------------------------------------------------------------
    def start(self) -> ReadyReply:
        """Spawn and lock down the worker if not running; return its ready reply."""
        if self._proc is not None and self._ready is not None:
            if (self._calls < self.max_calls and self._proc.alive()
                    and not self._proc.cpu_exhausted(self.limits.cpu_s / 2)):
                return self._ready
            self.close()  # recycled, or dead since the last call: a fresh worker
        init = InitRequest(kind=self.KIND, source=self.source, filename=self.filename,
                           sys_path=import_paths(),
                           layers=self.layers_requested, limits=self.limits,
                           max_reply_bytes=self.max_reply_bytes)
        try:
            self._proc = launch(self.python, self.max_reply_bytes, self.max_output_bytes)
        except OSError as e:
            raise SandboxViolation(f"cannot start the sandbox worker: {e}") from e
        (reply,) = self._replies(init.model_dump_json().encode(), None, self.boot_timeout_s,
                                 "boot", 1)
        if isinstance(reply, ErrorReply):  # the module failed to load: the worker exits
            self.close()
            raise StrategyError(reply.message)
        if not isinstance(reply, ReadyReply):
            self._fail("unexpected reply kind " + getattr(reply, "kind", "?"))
        self._check_layers(reply.layers)
        self._ready = reply
        return reply

    def _check_layers(self, report: LayerReport) -> None:
        missing = report.missing_required()
        if missing and not self.allow_weak_isolation:
            self.close()
            raise SandboxViolation(
                f"sandbox isolation incomplete: {', '.join(missing)} not active "
                f"({report.errors or 'unsupported by this kernel'}); refusing to run strategy "
                "code. Set sandbox.allow_weak_isolation only on developer machines."
            )

    # --- requests (also used by ``batch``) ----------------------------------------------------
    def _bars_request(self, header: dict[str, Any], bars: pl.DataFrame
                      ) -> tuple[dict[str, Any], bytes | None]:
        """(header, payload) sending ``bars``, or reusing them when the running worker holds
        that very frame; starts the worker (which may recycle it and forget the bars)."""
        self.start()
        if self._sent_bars is bars:
            return {**header, "reuse_bars": True}, None
        buf = io.BytesIO()
        bars.write_ipc_stream(buf)
        self._sent_bars = bars  # reset by close() should the request fail
        return header, buf.getvalue()

    def _signals(self, reply: SignalsReply, bars: pl.DataFrame) -> pl.DataFrame:
        """The validated signals of one reply; an invalid one recycles the worker."""
        try:
            return validate_signals(decode_columns(reply.columns, bars.height), bars)
        except StrategyError:
            self.close()
            raise
        except Exception as e:
            self.close()
            raise SandboxViolation(f"invalid signal reply from the sandbox: {e}") from e

    def _call(self, header: dict[str, Any], payload: bytes | None,
              timeout: float | None = None) -> Reply:
        """One request, one reply; a clean strategy/params error reply raises StrategyError."""
        (reply,) = self._stream(header, payload, 1, timeout)
        if isinstance(reply, ErrorReply):
            raise StrategyError(reply.message)
        return reply

    def _stream(self, header: dict[str, Any], payload: bytes | None, count: int,
                timeout: float | None = None) -> Iterator[Reply]:
        """One request, ``count`` replies, each due within ``timeout`` (default ``timeout_s``)
        of the previous; clean strategy/params ``ErrorReply`` frames are yielded as such."""
        self.start()
        self._calls += 1
        try:
            head = json.dumps(header, allow_nan=False).encode()
        except (TypeError, ValueError) as e:
            raise StrategyError(f"params must be JSON-serialisable finite values: {e}") from e
        return self._replies(head, payload, timeout or self.timeout_s, header["op"], count)

    def _replies(self, head: bytes, payload: bytes | None, timeout: float, op: str,
                 count: int) -> Iterator[Reply]:
        proc = self._proc
        assert proc is not None
        if self._deadline is not None and self._deadline <= time.monotonic():
            self.close()
            raise StrategyError(f"the time budget ran out before the strategy {op}")
        with self._failures(op, timeout):
            for reply in proc.replies(head, payload, timeout, count, self._deadline):
                if isinstance(reply, ErrorReply) and reply.error not in ("strategy", "params"):
                    self._fail(f"sandbox worker reported a {reply.error} error: {reply.message}")
                yield reply

    @contextmanager
    def _failures(self, op: str, timeout: float) -> Iterator[None]:
        """Kill the worker on any failure of the exchange and raise it as the caller's error."""
        try:
            yield
        except WorkerTimeout:
            self.close()
            if self._deadline is not None and time.monotonic() >= self._deadline - 1e-3:
                raise StrategyError(
                    f"the time budget ran out during the strategy {op}; worker killed"
                ) from None
            raise StrategyError(
                f"strategy {op} timed out after {timeout:g} s; worker killed") from None
        except WorkerChatty as e:
            self.close()
            raise StrategyError(f"strategy {op}: {e}; worker killed (remove the prints: "
                                "the output of strategy code is discarded)") from None
        except WorkerDied as e:
            self.close()
            raise SandboxViolation(f"sandbox worker failed during {op}: {e}") from None
        except pydantic.ValidationError as e:
            self.close()
            raise SandboxViolation(
                f"malformed reply from the sandbox worker during {op}: "
                f"{e.error_count()} error(s), first: {e.errors()[0]['msg']} "
                f"at {e.errors()[0]['loc']}"
            ) from None

    def _fail(self, message: str) -> NoReturn:
        self.close()
        raise SandboxViolation(message)

