"""Wire protocol: framing and the strict parsing of untrusted replies."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from trading_brain.adapters.sandbox.protocol import (
    HEADER,
    ErrorReply,
    LayerReport,
    SignalsReply,
    frame,
    parse_reply,
)


def signals(**over) -> dict:
    cols = {
        "action": ["enter", "hold"],
        "size": [0.5, 0.0],
        "stop_loss": [0.02, None],
        "take_profit": [None, None],
        "intent": ["day", "day"],
        "confidence": [1.0, 0.0],
    }
    cols.update(over)
    return {"ok": True, "kind": "signals",
            "columns": {k: v if isinstance(v, dict) else {"values": v} for k, v in cols.items()}}


def test_frame_prefixes_big_endian_length():
    assert frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert HEADER.unpack(frame(b"x" * 300)[:4]) == (300,)


def test_valid_signals_and_error_replies_parse():
    r = parse_reply(json.dumps(signals()).encode())
    assert isinstance(r, SignalsReply) and r.columns.size.values == [0.5, 0.0]
    e = parse_reply(b'{"ok": false, "kind": "error", "error": "strategy", "message": "boom"}')
    assert isinstance(e, ErrorReply) and e.message == "boom"


@pytest.mark.parametrize(
    "payload",
    [
        json.dumps(signals(size=[float("nan"), 0.0])),  # NaN token
        json.dumps(signals(confidence=[float("inf"), 0.0])),  # Infinity token
        json.dumps(signals(extra=[1, 2])),  # unexpected column
        json.dumps({**signals(), "note": "x"}),  # unexpected top-level key
        json.dumps(signals(action=["enter" * 10, "hold"])),  # label longer than 32
        json.dumps(signals(size=[[0.5], 0.0])),  # wrong type
        json.dumps(signals(size={"values": [0.5], "lengths": [0]})),  # empty run
        json.dumps(signals(size={"values": [0.5], "lengths": [-3]})),  # negative run
        json.dumps(signals(size={"values": [0.5], "lengths": [1], "x": 1})),  # extra key
        json.dumps({"ok": True, "kind": "pickle", "data": "gASV"}),  # unknown kind
        json.dumps({"ok": True, "kind": "signals"}),  # missing columns
        json.dumps({"ok": False, "kind": "error", "error": "strategy", "message": "x" * 9000}),
        "[]",
        "not json",
        "",
    ],
)
def test_malformed_replies_are_rejected(payload):
    with pytest.raises(ValidationError):
        parse_reply(payload.encode())


def test_layer_report_requires_seccomp_and_landlock():
    base = dict(netns=True, rlimits=True, uid_drop=True, uid=65534, no_new_privs=True)
    assert LayerReport(**base, landlock_abi=7, seccomp=True).missing_required() == []
    assert LayerReport(**base, landlock_abi=0, seccomp=True).missing_required() == ["landlock"]
    assert LayerReport(**base, landlock_abi=3, seccomp=False).missing_required() == ["seccomp"]


@settings(max_examples=80, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.floats(allow_nan=True)
        | st.integers()
        | st.text(max_size=40),
        lambda kids: (
            st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=5)
        ),
        max_leaves=30,
    )
)
def test_fuzzed_replies_never_crash_the_parser(obj):
    try:
        parse_reply(json.dumps(obj).encode())
    except ValidationError:
        pass


def test_run_length_columns_expand_exactly_and_forged_lengths_are_refused():
    import numpy as np
    import polars as pl

    from trading_brain.adapters.sandbox.host import decode_columns
    from trading_brain.adapters.sandbox.output import encode_signals
    from trading_brain.errors import SandboxViolation

    n = 5000
    bars = pl.DataFrame({"ts": np.arange(n)})
    out = pl.DataFrame({
        "action": ["hold"] * 400 + ["enter"] + ["hold"] * 4599, "size": [0.1] * n,
        "stop_loss": [None] * 2500 + [0.02] * 2500, "take_profit": np.linspace(0.01, 0.5, n),
        "intent": ["swing"] * n, "confidence": [0.5] * n, "regime": ["range"] * n})
    payload = encode_signals(out, bars)
    reply = parse_reply(payload)
    assert reply.columns.action.lengths == [400, 1, 4599]  # run-length encoded
    assert reply.columns.take_profit.lengths is None  # no runs: plain values
    assert len(payload) < 150_000  # take_profit is 5000 distinct floats; the rest are runs
    back = decode_columns(reply.columns, n)
    assert back.select(out.columns).equals(out.with_columns(pl.col("regime").cast(pl.String)))
    forged = reply.columns.model_copy(update={"size": reply.columns.size.model_copy(
        update={"lengths": [10**12]})})
    with pytest.raises(SandboxViolation, match="runs do not cover exactly 5000 rows"):
        decode_columns(forged, n)
