"""The ``analyze`` op inside the sandbox worker (trusted code, imported before the lockdown).

``analyze(module, init, req, data) -> bytes`` is one reply frame's payload: ``data`` holds one
framed Arrow IPC stream per name of ``req["names"]`` (``protocol``: the ``analyze`` op); the
module's ``analyze({name: frame}, Params(**req["params"]))`` runs here, and its dict is encoded
as strict JSON (no NaN/infinity, str keys). Anything else (the module raised, returned no dict,
output that is not JSON, a report above ``init.max_reply_bytes``) is an ``ErrorReply`` of kind
``strategy`` (the untrusted module's failure, with its line); a malformed request one of kind
``protocol``. The host validates the report again (``report.check_report``).
"""

from __future__ import annotations

import io
import json
import struct
from typing import Any

HEADER = struct.Struct(">I")
MAX_MESSAGE = 7900


def _error(kind: str, message: str) -> bytes:
    return json.dumps({"ok": False, "kind": "error", "error": kind,
                       "message": message[:MAX_MESSAGE]}).encode()


def split_frames(data: bytes, count: int) -> list[bytes] | None:
    """The ``count`` length-prefixed parts of ``data``; None unless they cover it exactly."""
    parts, offset = [], 0
    for _ in range(count):
        if offset + HEADER.size > len(data):
            return None
        n = HEADER.unpack_from(data, offset)[0]
        offset += HEADER.size
        if offset + n > len(data):
            return None
        parts.append(data[offset:offset + n])
        offset += n
    return parts if offset == len(data) else None


def analyze(module: Any, init: Any, req: dict[str, Any], data: bytes) -> bytes:
    """One reply payload for an ``analyze`` request (module docstring)."""
    import polars as pl
    import pydantic

    from trading_brain.adapters.sandbox.worker_setup import where

    names, params = req.get("names"), req.get("params") or {}
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)
            and len(set(names)) == len(names) and isinstance(params, dict)):
        return _error("protocol", "analyze needs distinct frame names and a params object")
    parts = split_frames(data, len(names))
    if parts is None:
        return _error("protocol", "analyze frames do not match the names")
    try:
        frames = {n: pl.read_ipc_stream(io.BytesIO(p)) for n, p in zip(names, parts, strict=True)}
    except Exception as e:  # noqa: BLE001 - the host sent something unreadable
        return _error("protocol", f"unreadable frame: {type(e).__name__}: {e}")
    try:
        p = module.Params(**params)
    except (pydantic.ValidationError, TypeError) as e:
        return _error("params", f"invalid params: {e}")
    try:
        report = module.analyze(frames, p)
        if not isinstance(report, dict):
            return _error("strategy", f"analyze returned {type(report).__name__}, not a dict")
        payload = json.dumps({"ok": True, "kind": "report", "report": report},
                             allow_nan=False).encode()
    except BaseException as e:  # noqa: BLE001 - untrusted code may raise anything
        return _error("strategy", where(e, init))
    if len(payload) > init.max_reply_bytes:
        return _error("strategy", f"report of {len(payload)} bytes exceeds the cap of "
                      f"{init.max_reply_bytes} bytes")
    return payload
