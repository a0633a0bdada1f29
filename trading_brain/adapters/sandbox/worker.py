"""Sandbox worker bootstrap (trusted code), run as ``python -I -B worker.py`` by ``host.py``.

Order matters and is the contract:
0. arm PR_SET_PDEATHSIG(SIGKILL) and check the parent is still the host (``HOST_PID_ENV``): a
   worker never outlives its host (re-armed after the uid drop, which clears it);
1. read the init frame from stdin (JSON; see ``protocol.InitRequest``) and extend ``sys.path``;
2. ``Lockdown.early`` while still single-threaded: network namespace, no_new_privs, Landlock
   (per-thread and inherited: threads started later by numpy/polars are confined too);
3. import everything strategy code may use (``PREIMPORT``) and warm up lazy imports (time-zone
   data, pydantic JSON schema, polars rolling/ewm/group_by) — after the uid drop, root-only
   interpreter directories are unreadable, so nothing may be imported lazily later;
4. keep the protocol fd private and point fd 1 at stderr (a stray ``print`` cannot forge a reply);
5. ``Lockdown.late``: rlimits, uid drop, non-dumpable, seccomp synchronised to all threads;
6. compile and exec the untrusted module into a real module object (``sys.modules``), with pruned
   builtins and an import allowlist (cosmetic: clear errors for authors, not security);
7. serve requests until stdin closes (an ``"analysis"`` worker answers only ``analyze``, see
   ``worker_analysis``). Every failure becomes an ``ErrorReply``; the host validates all.
   (Setup helpers: ``worker_setup``.)
"""

from __future__ import annotations

import json
import os
import struct
import sys
from typing import Any

HEADER = struct.Struct(">I")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
HOST_PID_ENV = "TB_SANDBOX_HOST_PID"  # = process.HOST_PID_ENV
MODULE_NAME = "sandboxed_strategy"
CONTRACT = {"strategy": ("STRATEGY_ID", "VERSION", "WARMUP_BARS", "Params", "generate"),
            "analysis": ("ANALYSIS_ID", "VERSION", "Params", "analyze")}
PREIMPORT = (
    "math statistics numpy numpy.linalg numpy.random numpy.fft polars "
    "pydantic pydantic.json_schema dataclasses typing collections collections.abc functools "
    "itertools datetime zoneinfo io pyseccomp trading_brain.domain.strategy "
    "trading_brain.adapters.sandbox.output trading_brain.adapters.sandbox.worker_analysis "
    "trading_brain.engine.indicators"
).split()

def read_exact(fd: int, n: int) -> bytes | None:
    """Read exactly ``n`` bytes from ``fd``; None on EOF."""
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> bytes | None:
    head = read_exact(fd, 4)
    return None if head is None else read_exact(fd, HEADER.unpack(head)[0])


def write_frame(fd: int, payload: bytes) -> None:
    view = memoryview(HEADER.pack(len(payload)) + payload)
    while view:
        view = view[os.write(fd, view) :]


def _preimport() -> None:
    import importlib

    for name in PREIMPORT:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # optional (e.g. the indicator library not written yet)
    from trading_brain.adapters.sandbox.warmup import warm_up

    warm_up()


class Server:
    """Holds the loaded module and answers requests."""

    def __init__(self, init: Any, out_fd: int) -> None:
        import types

        self.init, self.out_fd = init, out_fd
        module = types.ModuleType(MODULE_NAME)
        from trading_brain.adapters.sandbox.worker_setup import safe_builtins

        module.__dict__["__builtins__"] = safe_builtins()
        module.__file__ = init.filename
        sys.modules[MODULE_NAME] = module
        exec(compile(init.source, init.filename, "exec", dont_inherit=True), module.__dict__)
        self.module = module
        kind = getattr(init, "kind", "strategy")
        for name in CONTRACT.get(kind, CONTRACT["strategy"]):
            if not hasattr(module, name):
                raise AttributeError(f"the {kind} module does not define {name}")

    def reply(self, obj: dict[str, Any]) -> None:
        write_frame(self.out_fd, json.dumps(obj, allow_nan=True).encode())

    def error(self, kind: str, message: str) -> None:
        self.reply({"ok": False, "kind": "error", "error": kind, "message": message[:7900]})

    def handle(self, req: dict[str, Any]) -> None:
        op = req.get("op")
        if getattr(self.init, "kind", "strategy") == "analysis":
            if op != "analyze":
                return self.error("protocol", f"unknown op {op!r} for an analysis worker")
            data = read_frame(0)
            if data is None:
                raise EOFError
            from trading_brain.adapters.sandbox.worker_analysis import analyze

            return write_frame(self.out_fd, analyze(self.module, self.init, req, data))
        if op in ("generate", "generate_sets"):
            data = None
            if not req.get("reuse_bars"):
                data = read_frame(0)
                if data is None:
                    raise EOFError
            if op == "generate":
                self.generate(req.get("params") or {}, data)
            else:
                self.generate_sets(req.get("sets"), data)
        elif op == "generate_many":
            data = read_frame(0)
            if data is None:
                raise EOFError
            self.generate_many(req.get("params") or {}, req.get("lengths"), data)
        elif op == "params_schema":
            p = self.module.Params
            self.reply(
                {
                    "ok": True,
                    "kind": "schema",
                    "json_schema": p.model_json_schema(),
                    "defaults": p().model_dump(mode="json"),
                }
            )
        else:
            self.error("protocol", f"unknown op {op!r}")

    def bars(self, data: bytes | None) -> Any:
        """The bars of ``data`` (kept for a later ``reuse_bars``), or the kept ones; None if
        there are none."""
        import io

        import polars as pl

        if data is None:
            return getattr(self, "last_bars", None)
        self.last_bars = pl.read_ipc_stream(io.BytesIO(data))
        return self.last_bars

    def generate(self, params: dict[str, Any], data: bytes | None) -> None:
        """Run generate; ``data`` None reuses the bars of the previous call (a parameter sweep)."""
        bars = self.bars(data)
        if bars is None:
            return self.error("protocol", "reuse_bars without earlier bars")
        self.answer(params, bars)

    def generate_sets(self, sets: Any, data: bytes | None) -> None:
        """Run generate on the same bars once per parameter set: one reply frame per set."""
        bars = self.bars(data)
        if bars is None:
            return self.error("protocol", "reuse_bars without earlier bars")
        if not isinstance(sets, list) or not all(isinstance(p, dict) for p in sets):
            return self.error("protocol", "generate_sets needs a list of parameter objects")
        for params in sets:
            self.answer(params, bars)

    def answer(self, params: dict[str, Any], bars: Any) -> None:
        """One ``generate`` reply frame: the signals, or the params/strategy error."""
        import pydantic

        from trading_brain.adapters.sandbox.output import encode_signals

        try:
            p = self.module.Params(**params)
        except (pydantic.ValidationError, TypeError) as e:
            return self.error("params", f"invalid params: {e}")
        try:
            payload = encode_signals(self.module.generate(bars, p), bars)
        except BaseException as e:  # noqa: BLE001 - untrusted code may raise anything
            from trading_brain.adapters.sandbox.worker_setup import where

            return self.error("strategy", where(e, self.init))
        if len(payload) > self.init.max_reply_bytes:
            return self.error("strategy", f"output of {len(payload)} bytes exceeds the reply cap")
        write_frame(self.out_fd, payload)

    def generate_many(self, params: dict[str, Any], lengths: Any, data: bytes) -> None:
        """Run generate on each slice of the stacked bars; one result per slice, in order."""
        import io

        import polars as pl
        import pydantic

        from trading_brain.adapters.sandbox.output import encode_columns

        bars = pl.read_ipc_stream(io.BytesIO(data))
        if (not isinstance(lengths, list) or not all(type(n) is int and n >= 0 for n in lengths)
                or sum(lengths) != bars.height):
            return self.error("protocol", "generate_many lengths do not cover the bars")
        try:
            p = self.module.Params(**params)
        except (pydantic.ValidationError, TypeError) as e:
            return self.error("params", f"invalid params: {e}")
        parts, offset = [], 0
        for n in lengths:
            part = bars.slice(offset, n)
            offset += n
            try:
                parts.append('{"columns":' + encode_columns(self.module.generate(part, p), part)
                             + "}")
            except BaseException as e:  # noqa: BLE001 - untrusted code may raise anything
                from trading_brain.adapters.sandbox.worker_setup import where

                parts.append(json.dumps({"error": where(e, self.init)[:7900]}))
        payload = ('{"ok":true,"kind":"signals_many","results":[' + ",".join(parts)
                   + "]}").encode()
        if len(payload) > self.init.max_reply_bytes:
            return self.error("strategy", f"output of {len(payload)} bytes exceeds the reply cap")
        write_frame(self.out_fd, payload)


def _host_pid() -> int | None:
    raw = os.environ.get(HOST_PID_ENV, "")
    return int(raw) if raw.isdigit() else None


def _boot(raw: bytes) -> tuple[Any, dict[str, Any], int]:
    cfg = json.loads(raw)
    sys.path[:0] = [p for p in cfg.get("sys_path", []) if p not in sys.path]
    from types import SimpleNamespace

    from trading_brain.adapters.sandbox.lockdown import Lockdown
    from trading_brain.adapters.sandbox.worker_setup import read_paths

    # The init frame comes from the trusted host (a complete ``protocol.InitRequest`` dump) before
    # any untrusted code runs; building pydantic models here would only add ~0.1 s to every boot.
    init = SimpleNamespace(**cfg)
    init.layers, init.limits = SimpleNamespace(**cfg["layers"]), SimpleNamespace(**cfg["limits"])
    try:
        import pyseccomp  # noqa: F401 - finds libseccomp by spawning ldconfig: before Landlock
    except (ImportError, OSError):
        pass  # reported as seccomp missing
    lock = Lockdown(init.layers, _host_pid())
    lock.early(read_paths(init.read_paths))  # single-threaded: netns, no_new_privs, Landlock
    _preimport()  # numpy/polars start threads here; they inherit the early layers
    out_fd = os.dup(1)
    os.dup2(2, 1)
    return init, lock.late(init.limits), out_fd


def main() -> int:
    if ROOT not in sys.path:
        sys.path.append(ROOT)  # the package itself (``-I`` adds no script directory)
    from trading_brain.adapters.sandbox.lockdown import die_with_parent

    die_with_parent(_host_pid())  # first: the host may be killed at any moment from now on
    raw = read_frame(0)
    if raw is None:
        return 2
    init, report, out_fd = _boot(raw)
    try:
        server = Server(init, out_fd)
        m, analysis = server.module, getattr(init, "kind", "strategy") == "analysis"
        ready = {
            "ok": True,
            "kind": "ready",
            "layers": report,
            "strategy_id": str(m.ANALYSIS_ID if analysis else m.STRATEGY_ID),
            "version": int(m.VERSION),
            "warmup_bars": 0 if analysis else int(m.WARMUP_BARS),
        }
    except BaseException as e:  # noqa: BLE001
        from trading_brain.adapters.sandbox.worker_setup import where

        msg = f"loading the {getattr(init, 'kind', 'strategy')} failed: " + where(e, init)
        write_frame(
            out_fd,
            json.dumps(
                {"ok": False, "kind": "error", "error": "strategy", "message": msg[:7900]}
            ).encode(),
        )
        return 1
    server.reply(ready)
    while (raw := read_frame(0)) is not None:
        try:
            server.handle(json.loads(raw))
        except EOFError:
            break
        except BaseException as e:  # noqa: BLE001
            server.error("internal", f"{type(e).__name__}: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
