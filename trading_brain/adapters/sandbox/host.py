"""Sandbox host: runs one strategy version in a persistent, OS-locked worker (``ports.SignalSource``).

Contract of ``SandboxedStrategy``:
- the source passes the static gate first (``gate.require_clean``; StrategyError listing findings);
- the worker is spawned lazily (``python -I -B worker.py``, minimal env, empty temp cwd, close_fds,
  new session, pipes only) and kept for many calls; it is killed (``killpg`` SIGKILL) on timeout, any
  protocol violation, an oversize or invalid reply (one the host rejects), and respawned on the next
  call. A clean error reply (generate raised, bad params) keeps the worker. It is also recycled
  after ``max_calls`` calls or half of its CPU-seconds rlimit;
- the worker's layer report is checked: unless ``allow_weak_isolation``, a worker without seccomp AND
  Landlock is refused with ``SandboxViolation`` (fail closed);
- ``generate_many(frames, params)`` does the same for several symbols in one round trip (the
  scan's path: one call per slot and scan), with per-symbol strategy errors;
- ``set_deadline(t)`` (a ``time.monotonic()`` value, None to clear) bounds every later call,
  the boot included, by that overall deadline (the registry's validation budget): a call gets
  ``min(timeout, time left)``; past the deadline it raises StrategyError naming the budget;
- a call whose prints exceed ``max_output_bytes`` (stdout/stderr) kills the worker: StrategyError;
- ``generate(bars, params)`` sends Arrow IPC, receives size-capped JSON, parses it with the strict
  models of ``protocol`` and returns ``domain.strategy.validate_signals`` output (ts + SIGNAL_SCHEMA).
  Strategy failures raise StrategyError with the author-facing message; isolation/protocol failures
  raise SandboxViolation.
"""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
import pydantic

from trading_brain.adapters.sandbox import gate
from trading_brain.adapters.sandbox.decode import decode_columns
from trading_brain.adapters.sandbox.process import (
    MAX_OUTPUT_BYTES,
    WorkerChatty,
    WorkerDied,
    WorkerProcess,
    WorkerTimeout,
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
    SignalsManyReply,
    SignalsReply,
)
from trading_brain.domain.strategy import validate_signals
from trading_brain.errors import SandboxViolation, StrategyError

WORKER = Path(__file__).with_name("worker.py")
BATCH_PER_TIMEOUT = 16  # generate_many: symbols per ``timeout_s`` of wall-clock budget


def _import_paths() -> list[str]:
    """Project root plus the directories holding the worker's dependencies."""
    root = str(Path(__file__).resolve().parents[3])
    dirs = [root]
    for mod in ("numpy", "polars", "pydantic", "pydantic_core", "pyseccomp"):
        spec = importlib.util.find_spec(mod)
        if spec and spec.origin:
            origin = Path(spec.origin)
            dirs.append(
                str(origin.parent.parent if origin.name == "__init__.py" else origin.parent)
            )
    return list(dict.fromkeys(dirs))


class SandboxedStrategy:
    """A strategy version run only inside the sandbox worker (implements ``ports.SignalSource``).

    One caller at a time (not thread-safe); use one instance per strategy version and job.
    """

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
        self.info = gate.require_clean(self.source) if static_gate else None
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
    def from_settings(cls, source: str, sandbox: Any) -> SandboxedStrategy:
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

    def generate(self, bars: pl.DataFrame, params: dict | None = None) -> pl.DataFrame:
        """Run ``generate`` in the worker; return validated signals (ts + SIGNAL_SCHEMA)."""
        if not isinstance(bars, pl.DataFrame):
            raise StrategyError(f"bars must be a polars DataFrame, got {type(bars).__name__}")
        self.start()  # may recycle the worker, which forgets the bars it held
        if self._sent_bars is bars:  # the same frame object in the same worker: do not resend
            reply = self._call({"op": "generate", "params": params or {}, "reuse_bars": True}, None)
        else:
            buf = io.BytesIO()
            bars.write_ipc_stream(buf)
            reply = self._call({"op": "generate", "params": params or {}}, buf.getvalue())
            self._sent_bars = bars
        if not isinstance(reply, SignalsReply):
            self._fail("unexpected reply kind " + reply.kind)
        try:
            df = decode_columns(reply.columns, bars.height)
            return validate_signals(df, bars)
        except StrategyError:
            self.close()
            raise
        except Exception as e:
            self.close()
            raise SandboxViolation(f"invalid signal reply from the sandbox: {e}") from e

    def generate_many(self, frames: Mapping[str, pl.DataFrame], params: dict | None = None
                      ) -> dict[str, pl.DataFrame | StrategyError]:
        """``generate`` for every symbol's bars in ONE worker round trip.

        Per symbol: the validated signals (exactly what ``generate`` returns) or the
        ``StrategyError`` that symbol's call raised (the others are still answered). A
        ``SandboxViolation`` (worker died, forged or malformed reply) raises for the whole call, as
        does a timeout: the batch gets ``timeout_s`` per started group of ``BATCH_PER_TIMEOUT``
        symbols. A reply that fails the host's validation for one symbol recycles the worker.
        """
        symbols = list(frames)
        if not symbols:
            return {}
        bad = [s for s in symbols if not isinstance(frames[s], pl.DataFrame)]
        if bad:
            raise StrategyError(f"bars of {bad[0]} must be a polars DataFrame, "
                                f"got {type(frames[bad[0]]).__name__}")
        try:
            stacked = pl.concat([frames[s] for s in symbols], how="vertical",
                                rechunk=False)
        except pl.exceptions.PolarsError as e:
            raise StrategyError(f"the symbols' bars do not share one schema: {e}") from None
        buf = io.BytesIO()
        stacked.write_ipc_stream(buf)
        header = {"op": "generate_many", "params": params or {},
                  "lengths": [frames[s].height for s in symbols]}
        groups = -(-len(symbols) // BATCH_PER_TIMEOUT)
        reply = self._call(header, buf.getvalue(), self.timeout_s * groups)
        if not isinstance(reply, SignalsManyReply):
            self._fail("unexpected reply kind " + reply.kind)
        if len(reply.results) != len(symbols) or any(
                (r.columns is None) == (r.error is None) for r in reply.results):
            self._fail("malformed generate_many reply: one result with columns or error "
                       "expected per symbol")
        out: dict[str, pl.DataFrame | StrategyError] = {}
        recycle = False
        for sym, res in zip(symbols, reply.results, strict=True):
            if res.error is not None:
                out[sym] = StrategyError(res.error)
                continue
            try:
                out[sym] = validate_signals(decode_columns(res.columns, frames[sym].height),
                                            frames[sym])
            except SandboxViolation:  # (a StrategyError subclass: caught first)
                self.close()
                raise
            except StrategyError as e:
                out[sym], recycle = e, True
            except Exception as e:
                self.close()
                raise SandboxViolation(f"invalid signal reply from the sandbox: {e}") from e
        if recycle:
            self.close()
        return out

    def params_schema(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The JSON schema and default values of the strategy's ``Params``, from the worker."""
        reply = self._call({"op": "params_schema"}, None)
        if not isinstance(reply, SchemaReply):
            self._fail("unexpected reply kind " + reply.kind)
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
            if self._calls < self.max_calls and not self._proc.cpu_exhausted(self.limits.cpu_s / 2):
                return self._ready
            self.close()
        init = InitRequest(
            source=self.source,
            filename=self.filename,
            sys_path=_import_paths(),
            layers=self.layers_requested,
            limits=self.limits,
            max_reply_bytes=self.max_reply_bytes,
        )
        cwd = tempfile.mkdtemp(prefix="tb-sandbox-")
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": cwd,
            "TMPDIR": cwd,
            "POLARS_MAX_THREADS": "2",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        try:
            self._proc = WorkerProcess(
                [self.python, "-I", "-B", str(WORKER)], env, cwd, self.max_reply_bytes,
                self.max_output_bytes,
            )
        except OSError as e:
            shutil.rmtree(cwd, ignore_errors=True)
            raise SandboxViolation(f"cannot start the sandbox worker: {e}") from e
        self._proc.on_close = lambda: shutil.rmtree(cwd, ignore_errors=True)
        reply = self._exchange(init.model_dump_json().encode(), None, self.boot_timeout_s, "boot")
        if not isinstance(reply, ReadyReply):
            self._fail("unexpected reply kind " + reply.kind)
        self._check_layers(reply.layers)
        self._ready = reply
        return reply

    def _check_layers(self, report: LayerReport) -> None:
        missing = report.missing_required()
        if missing and not self.allow_weak_isolation:
            self.close()
            raise SandboxViolation(
                f"sandbox isolation incomplete: {', '.join(missing)} not active "
                f"({report.errors or 'unsupported by this kernel'}); refusing to run strategy code. "
                "Set sandbox.allow_weak_isolation only on developer machines."
            )

    def _call(self, header: dict[str, Any], payload: bytes | None,
              timeout: float | None = None) -> Any:
        self.start()
        self._calls += 1
        try:
            head = json.dumps(header, allow_nan=False).encode()
        except (TypeError, ValueError) as e:
            raise StrategyError(f"params must be JSON-serialisable finite values: {e}") from e
        return self._exchange(head, payload, timeout or self.timeout_s, header["op"])

    def _exchange(self, head: bytes, payload: bytes | None, timeout: float, op: str) -> Any:
        proc = self._proc
        assert proc is not None
        cut = self._deadline is not None and self._deadline - time.monotonic() < timeout
        if cut:
            timeout = self._deadline - time.monotonic()  # type: ignore[operator]
            if timeout <= 0:
                self.close()
                raise StrategyError(f"the time budget ran out before the strategy {op}")
        try:
            reply = proc.request(head, payload, timeout)
        except WorkerTimeout:
            self.close()
            if cut:
                raise StrategyError(
                    f"the time budget ran out during the strategy {op}; worker killed"
                ) from None
            raise StrategyError(
                f"strategy {op} timed out after {timeout:g} s; worker killed"
            ) from None
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
        if isinstance(reply, ErrorReply):
            if reply.error in ("strategy", "params"):  # a clean reply: the worker stays usable
                raise StrategyError(reply.message)
            self.close()
            raise SandboxViolation(
                f"sandbox worker reported a {reply.error} error: {reply.message}"
            )
        return reply

    def _fail(self, message: str) -> None:
        self.close()
        raise SandboxViolation(message)
