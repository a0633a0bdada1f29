"""Batch calls of ``host.SandboxedStrategy``: many answers from ONE worker round trip.

- ``generate_many(frames, params)``: ``generate`` for several symbols' bars (the scan's path: one
  call per slot and scan). The bars are stacked into one Arrow frame; the worker answers one
  ``SignalsManyReply``. The batch gets ``timeout_s`` per started group of ``BATCH_PER_TIMEOUT``
  symbols.
- ``generate_sets(bars, sets)``: ``generate`` for several parameter sets over the same bars (the
  optimiser's path). The bars are sent once (not at all when the worker holds that very frame);
  the worker answers one frame per set, each within ``timeout_s`` of the previous, each capped
  at the reply cap and parsed and validated exactly as a ``generate`` reply — the host
  validates set i while the worker computes set i + 1.
Per item: the validated signals (exactly what ``generate`` returns) or the ``StrategyError``
that item's call would have raised (the others are still answered; ``invalid params: …`` for a
set the strategy's ``Params`` refuse). A ``SandboxViolation`` (worker died, forged or malformed
reply) raises for the whole call, as does a timeout or an output flood (StrategyError, worker
killed). A reply that fails the host's validation for one item recycles the worker afterwards.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NoReturn

import polars as pl

from trading_brain.adapters.sandbox.decode import decode_columns
from trading_brain.adapters.sandbox.protocol import (
    MAX_SETS,
    ErrorReply,
    SignalsManyReply,
    SignalsReply,
)
from trading_brain.domain.strategy import validate_signals
from trading_brain.errors import SandboxViolation, StrategyError

BATCH_PER_TIMEOUT = 16  # generate_many: symbols per ``timeout_s`` of wall-clock budget
Outcome = pl.DataFrame | StrategyError


class BatchCalls:
    """``generate_many`` and ``generate_sets`` over the host's request primitives."""

    timeout_s: float

    # provided by ``SandboxedStrategy``
    def close(self) -> None: ...

    def _fail(self, message: str) -> NoReturn: ...

    def _call(self, header: dict[str, Any], payload: bytes | None,
              timeout: float | None = None) -> object: ...

    def _stream(self, header: dict[str, Any], payload: bytes | None, count: int,
                timeout: float | None = None) -> Iterator[object]: ...

    def _bars_request(self, header: dict[str, Any], bars: pl.DataFrame
                      ) -> tuple[dict[str, Any], bytes | None]: ...

    def generate_many(self, frames: Mapping[str, pl.DataFrame], params: dict | None = None
                      ) -> dict[str, Outcome]:
        """``generate`` for every symbol's bars in ONE worker round trip (module docstring)."""
        symbols = list(frames)
        if not symbols:
            return {}
        bad = [s for s in symbols if not isinstance(frames[s], pl.DataFrame)]
        if bad:
            raise StrategyError(f"bars of {bad[0]} must be a polars DataFrame, "
                                f"got {type(frames[bad[0]]).__name__}")
        try:
            stacked = pl.concat([frames[s] for s in symbols], how="vertical", rechunk=False)
        except pl.exceptions.PolarsError as e:
            raise StrategyError(f"the symbols' bars do not share one schema: {e}") from None
        buf = io.BytesIO()
        stacked.write_ipc_stream(buf)
        header = {"op": "generate_many", "params": params or {},
                  "lengths": [frames[s].height for s in symbols]}
        groups = -(-len(symbols) // BATCH_PER_TIMEOUT)
        reply = self._call(header, buf.getvalue(), self.timeout_s * groups)
        if not isinstance(reply, SignalsManyReply):
            self._fail("unexpected reply kind " + getattr(reply, "kind", "?"))
        if len(reply.results) != len(symbols) or any(
                (r.columns is None) == (r.error is None) for r in reply.results):
            self._fail("malformed generate_many reply: one result with columns or error "
                       "expected per symbol")
        out: dict[str, Outcome] = {}
        recycle = False
        for sym, res in zip(symbols, reply.results, strict=True):
            if res.columns is None:
                out[sym] = StrategyError(res.error or "")
                continue
            out[sym], bad_reply = self._checked(res.columns, frames[sym])
            recycle = recycle or bad_reply
        if recycle:
            self.close()
        return out

    def generate_sets(self, bars: pl.DataFrame, sets: Sequence[Mapping[str, Any] | None]
                      ) -> list[Outcome]:
        """``generate`` over ``bars`` for every parameter set, in ONE worker round trip per
        ``MAX_SETS`` sets (module docstring); one outcome per set, in order."""
        if not isinstance(bars, pl.DataFrame):
            raise StrategyError(f"bars must be a polars DataFrame, got {type(bars).__name__}")
        out: list[Outcome] = []
        recycle = False
        for lo in range(0, len(sets), MAX_SETS):
            chunk = [dict(p or {}) for p in sets[lo:lo + MAX_SETS]]
            header, payload = self._bars_request({"op": "generate_sets", "sets": chunk}, bars)
            for reply in self._stream(header, payload, len(chunk)):
                if isinstance(reply, ErrorReply):  # that set's clean strategy/params error
                    out.append(StrategyError(reply.message))
                    continue
                if not isinstance(reply, SignalsReply):
                    self._fail("unexpected reply kind " + getattr(reply, "kind", "?"))
                got, bad_reply = self._checked(reply.columns, bars)
                out.append(got)
                recycle = recycle or bad_reply
        if recycle:
            self.close()
        return out

    def _checked(self, columns: Any, bars: pl.DataFrame) -> tuple[Outcome, bool]:
        """(validated signals or the StrategyError of a reply the host refuses, refused)."""
        try:
            return validate_signals(decode_columns(columns, bars.height), bars), False
        except SandboxViolation:  # (a StrategyError subclass: caught first)
            self.close()
            raise
        except StrategyError as e:
            return e, True
        except Exception as e:
            self.close()
            raise SandboxViolation(f"invalid signal reply from the sandbox: {e}") from e
