"""The strategy sandbox: static gate (``gate``), OS-locked worker (``worker``/``lockdown``), host
(``host``/``batch``) and the worker service (``pool``).

Importing this package is deliberately light (no polars): the worker bootstrap imports
``lockdown`` through it before entering its network namespace. ``SandboxedStrategy`` and friends
are loaded lazily from ``host``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SandboxedStrategy", "check_source", "require_clean"]


def __getattr__(name: str) -> Any:
    if name == "SandboxedStrategy":
        from trading_brain.adapters.sandbox.host import SandboxedStrategy

        return SandboxedStrategy
    if name in ("check_source", "require_clean"):
        from trading_brain.adapters.sandbox import gate

        return getattr(gate, name)
    raise AttributeError(name)
