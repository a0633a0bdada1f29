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
7. serve requests until stdin closes. Every failure becomes an ``ErrorReply``; the host validates all.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import traceback
from typing import Any

HEADER = struct.Struct(">I")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
HOST_PID_ENV = "TB_SANDBOX_HOST_PID"  # = process.HOST_PID_ENV
MODULE_NAME = "sandboxed_strategy"
PREIMPORT = (
    "math statistics numpy numpy.linalg numpy.random numpy.fft polars "
    "pydantic pydantic.json_schema dataclasses typing collections collections.abc functools "
    "itertools datetime zoneinfo io pyseccomp trading_brain.domain.strategy "
    "trading_brain.adapters.sandbox.output "
    "trading_brain.engine.indicators"
).split()
RUNTIME_DENY = frozenset(
    "os sys posix subprocess socket ctypes importlib builtins pickle marshal shutil pathlib io "
    "signal threading multiprocessing resource mmap fcntl select asyncio trading_brain".split()
)
REMOVED_BUILTINS = (
    "eval exec compile open input breakpoint globals locals vars memoryview help exit quit".split()
)


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


def _read_paths(extra: list[str]) -> list[str]:
    """Read-only Landlock grants, computed WITHOUT importing anything that starts threads:
    interpreter prefixes and stdlib, site-packages, system libraries, our package, tz data."""
    import importlib.util
    import site
    import sysconfig
    import zoneinfo

    paths = [
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        sysconfig.get_paths()["stdlib"],
        sysconfig.get_paths()["platstdlib"],
        *site.getsitepackages(),
        *zoneinfo.TZPATH,
        "/usr/share/zoneinfo",
        "/usr/lib",
        "/lib",
        "/lib64",
        "/usr/lib64",
        "/etc/ld.so.cache",
        "/sys/devices/system/cpu",
    ]
    for mod in (
        "numpy",
        "polars",
        "pydantic",
        "pydantic_core",
        "tzdata",
        "pyseccomp",
        "trading_brain",
    ):
        spec = importlib.util.find_spec(mod)
        if spec is not None and spec.origin:
            pkg = os.path.dirname(spec.origin)
            paths += [os.path.dirname(pkg)] if mod != "trading_brain" else [pkg]
    return [p for p in dict.fromkeys(paths + extra) if p and os.path.exists(p)]


def _safe_builtins() -> dict[str, Any]:
    """Builtins for strategy code: pruned, with an import allowlist. Cosmetic (clear errors for
    authors; the gate already rejected such imports statically), NOT a security layer.

    C code (numpy, polars via PyO3) importing lazily while a strategy frame is running also goes
    through this ``__import__``, so internals of allowed packages and modules that are already
    loaded pass unless their top-level name is an obvious escape hatch (``RUNTIME_DENY``).
    """
    import builtins

    from trading_brain.adapters.sandbox.gate import ALLOWED_IMPORTS, import_allowed

    real_import = builtins.__import__
    roots = {a.split(".")[0] for a in ALLOWED_IMPORTS} - {"trading_brain"}

    def guarded_import(
        name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
    ) -> Any:
        root = name.split(".")[0]
        ok = (
            import_allowed(name)
            or root in roots
            or (name in sys.modules and root not in RUNTIME_DENY)
        )
        if level or not ok:
            raise ImportError(f"import of {name!r} is not allowed in strategy code")
        return real_import(name, globals, locals, fromlist, level)

    safe = {k: v for k, v in vars(builtins).items() if k not in REMOVED_BUILTINS}
    safe["__import__"] = guarded_import
    return safe


def _where(e: BaseException, init: Any) -> str:
    """``Type: message (line N: source)`` for the innermost frame in the strategy source."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == init.filename]
    loc = ""
    if frames and frames[-1].lineno:
        lines = init.source.splitlines()
        text = lines[frames[-1].lineno - 1].strip() if frames[-1].lineno <= len(lines) else ""
        loc = f" (line {frames[-1].lineno}: {text[:120]})"
    return f"{type(e).__name__}: {e}"[:4000] + loc


class Server:
    """Holds the loaded module and answers requests."""

    def __init__(self, init: Any, out_fd: int) -> None:
        import types

        self.init, self.out_fd = init, out_fd
        module = types.ModuleType(MODULE_NAME)
        module.__dict__["__builtins__"] = _safe_builtins()
        module.__file__ = init.filename
        sys.modules[MODULE_NAME] = module
        exec(compile(init.source, init.filename, "exec", dont_inherit=True), module.__dict__)
        self.module = module
        for name in ("STRATEGY_ID", "VERSION", "WARMUP_BARS", "Params", "generate"):
            if not hasattr(module, name):
                raise AttributeError(f"the strategy module does not define {name}")

    def reply(self, obj: dict[str, Any]) -> None:
        write_frame(self.out_fd, json.dumps(obj, allow_nan=True).encode())

    def error(self, kind: str, message: str) -> None:
        self.reply({"ok": False, "kind": "error", "error": kind, "message": message[:7900]})

    def handle(self, req: dict[str, Any]) -> None:
        op = req.get("op")
        if op == "generate":
            data = None
            if not req.get("reuse_bars"):
                data = read_frame(0)
                if data is None:
                    raise EOFError
            self.generate(req.get("params") or {}, data)
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

    def generate(self, params: dict[str, Any], data: bytes | None) -> None:
        """Run generate; ``data`` None reuses the bars of the previous call (a parameter sweep)."""
        import io

        import polars as pl
        import pydantic

        from trading_brain.adapters.sandbox.output import encode_signals

        if data is None:
            bars = getattr(self, "last_bars", None)
            if bars is None:
                return self.error("protocol", "reuse_bars without earlier bars")
        else:
            bars = self.last_bars = pl.read_ipc_stream(io.BytesIO(data))
        try:
            p = self.module.Params(**params)
        except (pydantic.ValidationError, TypeError) as e:
            return self.error("params", f"invalid params: {e}")
        try:
            payload = encode_signals(self.module.generate(bars, p), bars)
        except BaseException as e:  # noqa: BLE001 - untrusted code may raise anything
            return self.error("strategy", _where(e, self.init))
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
                parts.append(json.dumps({"error": _where(e, self.init)[:7900]}))
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

    # The init frame comes from the trusted host (a complete ``protocol.InitRequest`` dump) before
    # any untrusted code runs; building pydantic models here would only add ~0.1 s to every boot.
    init = SimpleNamespace(**cfg)
    init.layers, init.limits = SimpleNamespace(**cfg["layers"]), SimpleNamespace(**cfg["limits"])
    try:
        import pyseccomp  # noqa: F401 - finds libseccomp by spawning ldconfig: before Landlock
    except (ImportError, OSError):
        pass  # reported as seccomp missing
    lock = Lockdown(init.layers, _host_pid())
    lock.early(_read_paths(init.read_paths))  # single-threaded: netns, no_new_privs, Landlock
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
        m = server.module
        ready = {
            "ok": True,
            "kind": "ready",
            "layers": report,
            "strategy_id": str(m.STRATEGY_ID),
            "version": int(m.VERSION),
            "warmup_bars": int(m.WARMUP_BARS),
        }
    except BaseException as e:  # noqa: BLE001
        msg = "loading the strategy failed: " + _where(e, init)
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
