"""Setup helpers of the sandbox worker (trusted code, imported by ``worker.py`` in the worker).

- ``read_paths(extra)``: the read-only Landlock grants, computed without importing anything that
  starts threads (it runs before ``Lockdown.early``, while the worker is single-threaded);
- ``safe_builtins()``: pruned builtins with an import allowlist for strategy code (cosmetic);
- ``where(e, init)``: ``Type: message (line N: source)`` of a strategy failure, for its author.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

RUNTIME_DENY = frozenset(
    "os sys posix subprocess socket ctypes importlib builtins pickle marshal shutil pathlib io "
    "signal threading multiprocessing resource mmap fcntl select asyncio trading_brain".split()
)
REMOVED_BUILTINS = (
    "eval exec compile open input breakpoint globals locals vars memoryview help exit quit".split()
)


def read_paths(extra: list[str]) -> list[str]:
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
        # the worker's own memory map (the rule binds /proc/<worker pid>/maps, nothing else of
        # /proc): read once when the allocator and thread pools start; denied, every later
        # allocation went through mmap/mprotect/munmap and polars code ran 2-3x slower
        "/proc/self/maps",
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


def safe_builtins() -> dict[str, Any]:
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


def where(e: BaseException, init: Any) -> str:
    """``Type: message (line N: source)`` for the innermost frame in the strategy source."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == init.filename]
    loc = ""
    if frames and frames[-1].lineno:
        lines = init.source.splitlines()
        text = lines[frames[-1].lineno - 1].strip() if frames[-1].lineno <= len(lines) else ""
        loc = f" (line {frames[-1].lineno}: {text[:120]})"
    return f"{type(e).__name__}: {e}"[:4000] + loc
